"""Vectorised 64-bit hashes for ingest: strings and vectors, whole batches at a time.

Ingest hashes every row twice (its content, to tell a changed re-ingest from an
unchanged one, and its id, for the eval split). Per-row ``hashlib`` calls cost about
a microsecond each in Python, which was a third of the ingest time; these run in
numpy over the Arrow buffers instead, O(total bytes) with no Python loop per row.

The hashes are for change detection and uniform draws, not for security: strings
get a polynomial hash modulo 2**64 over a random byte table, mixed with their length
and the seed by the splitmix64 finaliser; vectors a sum of their float bits times
fixed odd multipliers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["hash_strings", "hash_vectors", "mix64", "to_hex", "uniform_from_hashes"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC908)
_MIX = np.random.default_rng(20261125).integers(1, 2**63, size=4096, dtype=np.uint64) | np.uint64(1)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (a new array; overflow wraps)."""
    x = np.array(x, dtype=np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


_P = 0x100000001B3 * 2 + 1  # odd, so it has an inverse modulo 2**64
_P_INV = pow(_P, -1, 2**64)
_TABLE = np.random.default_rng(20261126).integers(1, 2**63, size=256, dtype=np.uint64) | np.uint64(1)
_SLICE_BYTES = 1 << 20
_powers: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**j and P**-j modulo 2**64 for j < n, cached (n is bounded by the slice size)."""
    if len(_powers[0]) < n:
        size = max(n, _SLICE_BYTES + 1)
        # cumprod gives P**(j+1); a leading 1 makes entry j P**j.
        with np.errstate(over="ignore"):
            _powers[0] = np.concatenate([[np.uint64(1)], np.cumprod(np.full(size - 1, _P, np.uint64),
                                                                     dtype=np.uint64)])
            _powers[1] = np.concatenate([[np.uint64(1)], np.cumprod(np.full(size - 1, _P_INV, np.uint64),
                                                                     dtype=np.uint64)])
    return _powers[0], _powers[1]


def hash_strings(values: pa.Array | Sequence[str | None], seed: int = 0) -> np.ndarray:
    """(n,) uint64 hash of each string; None hashes to a fixed value apart from "".

    A polynomial hash modulo 2**64 over a random byte table, read off one running sum
    per slice: row i's hash is (S[end_i] - S[start_i]) · P**-start_i, then mixed with
    its length and the seed. values: a pyarrow string array or a sequence of str/None.
    Time O(total bytes) in three numpy passes; memory O(1 MiB slice) of uint64."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    n = len(arr)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None
            else np.zeros(0, dtype=np.uint8))
    # Slices of whole rows holding about _SLICE_BYTES bytes each (one row may be longer).
    cuts = [0]
    while cuts[-1] < n:
        a = cuts[-1]
        b = int(np.searchsorted(offsets, offsets[a] + _SLICE_BYTES, side="right")) - 1
        cuts.append(min(n, max(b, a + 1)))
    seed_term = np.uint64((int(seed) * int(_GOLDEN)) & 0xFFFFFFFFFFFFFFFF)
    for a, b in zip(cuts[:-1], cuts[1:], strict=False):
        lo, hi = int(offsets[a]), int(offsets[b])
        rel = offsets[a : b + 1] - lo
        pw, inv = _power_tables(hi - lo + 1)
        with np.errstate(over="ignore"):
            terms = _TABLE[data[lo:hi]]
            terms *= pw[: hi - lo]
            cum = np.zeros(hi - lo + 1, dtype=np.uint64)
            np.cumsum(terms, dtype=np.uint64, out=cum[1:])
            h = (cum[rel[1:]] - cum[rel[:-1]]) * inv[rel[:-1]]
            h += np.diff(rel).astype(np.uint64) * _M2 + seed_term + _GOLDEN
        out[a:b] = mix64(h)
    if arr.null_count:
        out[np.asarray(arr.is_null())] = _NULL
    return out


def hash_vectors(vecs: np.ndarray) -> np.ndarray:
    """(n,) uint64 digest per row of a float32 array: the float bits times fixed odd
    multipliers, summed modulo 2**64 (one integer matrix-vector product, which wraps the
    same way; no temporaries beyond the result)."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    n = len(vecs)
    if vecs.shape[1] % 2:  # pad to an even width so rows view as whole uint64 words
        vecs = np.concatenate([vecs, np.zeros((n, 1), np.float32)], axis=1)
    mix = np.resize(_MIX, vecs.shape[1] // 2)
    return vecs.view(np.uint64) @ mix


def to_hex(h: np.ndarray) -> list[str]:
    """Each uint64 as 16 lowercase hex digits."""
    text = h.astype(">u8").tobytes().hex()
    return [text[i:i + 16] for i in range(0, len(text), 16)]


def uniform_from_hashes(h: np.ndarray) -> np.ndarray:
    """uint64 hashes to float64 uniforms in [0, 1) (the top 53 bits)."""
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
