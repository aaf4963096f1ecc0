"""Perceptual near-duplicates of images: 64-bit difference hashes (``dhash``, kept as
metadata at ingest) within a few bits of each other, without comparing every pair.

Two hashes within `bits` bits agree exactly on at least one of `bits + 1` disjoint bands
of their 64 bits (pigeonhole). Each band sorts the distinct hashes once by that band's
value; only hashes in the same bucket are compared (XOR, popcount) and the pairs within
`bits` are kept. Identical hashes are collapsed first, so a clump of copies costs one
entry. Cost: O(b · u log u) for the sorts plus the pairs inside buckets, u distinct
hashes and b = bits + 1 bands; memory O(u) plus the pairs kept. With hashes spread over
their 2^64 values a band of 64/b bits splits u into 2^(64/b) buckets (9 bands of 7 bits
at the default 8: 128 buckets), so the work inside buckets is about b · u² / 2^(64/b)
comparisons done in vectorised steps, never an n × n matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MAX_BITS = 16  # beyond, two unrelated small images can agree (and the buckets get coarse)
DEFAULT_BITS = 8  # a resized or re-encoded copy differs in <= 8 of 64 bits (tested)


def hash_words(hexes: Iterable[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(positions, uint64 words) of the valid 16-hex-digit hashes in `hexes`."""
    pos, words = [], []
    for i, h in enumerate(hexes):
        if isinstance(h, str) and len(h) == 16:
            try:
                words.append(int(h, 16))
            except ValueError:
                continue
            pos.append(i)
    return np.asarray(pos, np.int64), np.asarray(words, np.uint64)


def _bands(bits: int) -> list[tuple[int, int]]:
    """(shift, width) of `bits + 1` disjoint bands covering the 64 bits."""
    b = bits + 1
    widths = [64 // b + (1 if i < 64 % b else 0) for i in range(b)]
    out, shift = [], 0
    for w in widths:
        out.append((shift, w))
        shift += w
    return out


def close_pairs(hashes: np.ndarray, bits: int) -> np.ndarray:
    """(m, 2) index pairs (i < j) of `hashes` (uint64) at Hamming distance <= `bits`.
    A pair may be listed more than once (it agrees on several bands)."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 0..{MAX_BITS}, got {bits}")
    hashes = np.asarray(hashes, np.uint64)
    uniq, inv = np.unique(hashes, return_inverse=True)
    inv = inv.ravel()
    found: list[np.ndarray] = []
    # Identical hashes: each joined to the first index holding its value.
    order = np.argsort(inv, kind="stable")
    first = order[np.searchsorted(inv[order], inv)]
    same = first != np.arange(len(hashes))
    if same.any():
        found.append(np.stack([first[same], np.flatnonzero(same)], 1))
    near_u: list[np.ndarray] = []
    for shift, width in _bands(bits) if bits else ():
        key = (uniq >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        o = np.argsort(key, kind="stable")
        k = key[o]
        # Walk the sorted keys by offset d: positions whose bucket continues d steps on.
        idx = np.flatnonzero(k[:-1] == k[1:])
        d = 1
        while len(idx):
            a, b = o[idx], o[idx + d]
            dist = np.bitwise_count(uniq[a] ^ uniq[b])
            keep = dist <= bits
            if keep.any():
                near_u.append(np.stack([a[keep], b[keep]], 1))
            d += 1
            idx = idx[idx + d < len(k)]
            idx = idx[k[idx] == k[idx + d]]
    if near_u:
        pu = np.concatenate(near_u)
        # Back from distinct values to indices: each value's first index (its copies are
        # joined to that one above).
        rep = np.empty(len(uniq), np.int64)
        rep[inv[::-1]] = np.arange(len(hashes))[::-1]  # the first index of each value
        pairs = np.sort(rep[pu], axis=1)
        found.append(pairs)
    if not found:
        return np.zeros((0, 2), np.int64)
    return np.concatenate(found).astype(np.int64)


CONFIRM = 0.99  # correlation of two images' vectors that makes a hash pair a copy (below)
QUERY_BITS = 4  # `query`'s hash distance: copies differ in 0-1 bits (tests), and pairs
# of unrelated small images grow fast with it (5,000 Fashion-MNIST: 42k pairs at 4, 665k at 8)


def confirmed(pairs: np.ndarray, vectors: np.ndarray, at: float = CONFIRM) -> np.ndarray:
    """The `pairs` (m, 2) of positions into `vectors` whose rows correlate at >= `at`
    (Pearson: each row centred, then cosine). A 64-bit dHash alone is not a copy
    detector on small, uniform images: in 5,000 Fashion-MNIST images 318 pairs of
    different garments share a hash and 665k are within 8 bits, while resized and
    re-encoded copies correlate at >= 0.9995 on pixels, >= 0.993 on the pixels PCA
    (tests/images), and different garments within 8 bits at 0.79 (median), 0.97 (99.9th
    percentile). O(m·d) in chunks."""
    if not len(pairs):
        return pairs
    v = np.asarray(vectors, np.float32)
    v = v - v.mean(axis=1, keepdims=True)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    keep = np.empty(len(pairs), bool)
    for s in range(0, len(pairs), 8192):
        a, b = pairs[s:s + 8192, 0], pairs[s:s + 8192, 1]
        keep[s:s + 8192] = np.einsum("ij,ij->i", v[a], v[b]) >= at
    return pairs[keep]


def one_per_group(candidates: np.ndarray, pairs: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Mask over `candidates`: False for the images a batch should not offer, given
    near-copy `pairs` (m, 2) of rows: a candidate paired with a `held` row (labeled or
    queued), and a candidate paired with a lower candidate that is kept (greedy in row
    order, pair by pair, not through chains of pairs: a chain of small steps can reach
    a different image). So no two offered images are a pair. O(candidates + m log m)."""
    candidates = np.asarray(candidates, np.int64)
    pairs = np.sort(np.asarray(pairs, np.int64).reshape(-1, 2), axis=1)
    if not len(pairs) or not len(candidates):
        return np.ones(len(candidates), bool)
    offered = np.isin(pairs, candidates)
    is_held = np.isin(pairs, held)
    dropped = set(pairs[:, 1][offered[:, 1] & is_held[:, 0]].tolist())
    dropped |= set(pairs[:, 0][offered[:, 0] & is_held[:, 1]].tolist())
    both = pairs[offered.all(axis=1)]
    for a, b in both[np.argsort(both[:, 1], kind="stable")].tolist():
        # every pair ending at a was seen before this one: a's fate is settled
        if a not in dropped:
            dropped.add(b)
    return ~np.isin(candidates, np.fromiter(dropped, np.int64, len(dropped)))
