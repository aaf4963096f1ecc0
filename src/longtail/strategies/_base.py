"""Shared pieces of the strategies: the result type, the vector protocol, input checks,
and the small picking helpers every family uses (top-k, random top-up, round-robin).

Everything here is pure numpy; nothing reads or writes the store.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from longtail.errors import EmptyPoolError, InputError
from longtail.pages import is_mapped, release

NEEDS = frozenset({"probs", "vectors", "committee", "costs"})


@runtime_checkable
class VectorReader(Protocol):
    """What a strategy needs from a vector store (duck-typed; the store implements it).

    ``read(rows)`` returns float32 ``(len(rows), dim)`` in the order of ``rows``;
    ``iter_chunks(rows, chunk_rows)`` yields ``(row_numbers, float32 vectors)``.
    """

    n_rows: int
    dim: int

    def read(self, rows: np.ndarray) -> np.ndarray: ...

    def iter_chunks(
        self, rows: np.ndarray | None = None, chunk_rows: int = 65536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class ArrayVectors:
    """Wrap an in-memory 2-D array ``(n_rows, dim)`` as a :class:`VectorReader`.

    Row number ``i`` is ``X[i]``. No copy is made unless ``X`` is not float32, in
    which case chunks are converted as they are read (O(chunk·dim) extra memory).
    """

    def __init__(self, X: np.ndarray) -> None:
        X = np.asarray(X)
        if X.ndim != 2:
            raise InputError(f"vectors must be a 2-D array (rows, dim), got shape {X.shape}")
        self._X = X
        self.n_rows = int(X.shape[0])
        self.dim = int(X.shape[1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of ``rows`` as float32 ``(len(rows), dim)``; O(len(rows)·dim)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) < 256 or not is_mapped(self._X):
            return np.ascontiguousarray(self._X[rows], dtype=np.float32)
        # Scattered reads of a memory-mapped pool fault in whole read-ahead windows: a
        # 64k-row sample of 1M rows would map nearly all of it. Read in row order, a
        # 65,536-row span at a time, giving each span's pages back before the next.
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        cuts = np.flatnonzero(np.diff(srt // 65_536)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(srt)], strict=True):
            out[order[a:b]] = self._X[srt[a:b]]
            release(self._X[int(srt[a]) : int(srt[b - 1]) + 1])
        return out

    def iter_chunks(
        self, rows: np.ndarray | None = None, chunk_rows: int = 65536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(row_numbers, float32 vectors)`` in chunks of at most ``chunk_rows``."""
        if rows is None:
            for start in range(0, self.n_rows, chunk_rows):
                stop = min(start + chunk_rows, self.n_rows)
                yield (
                    np.arange(start, stop, dtype=np.int64),
                    np.ascontiguousarray(self._X[start:stop], dtype=np.float32),
                )
                release(self._X[start:stop])  # a memory-mapped pool stays O(chunk) resident
        else:
            rows = np.asarray(rows, dtype=np.int64)
            for start in range(0, len(rows), chunk_rows):
                part = rows[start : start + chunk_rows]
                yield part, self.read(part)


def as_reader(vectors: Any) -> VectorReader | None:
    """``None`` stays ``None``; an ndarray is wrapped in :class:`ArrayVectors`."""
    if vectors is None:
        return None
    if isinstance(vectors, np.ndarray):
        return ArrayVectors(vectors)
    for attr in ("n_rows", "dim", "read", "iter_chunks"):
        if not hasattr(vectors, attr):
            raise InputError(
                f"vectors must be a 2-D numpy array or a vector reader; {type(vectors).__name__} "
                f"has no attribute {attr!r}"
            )
    return vectors


@dataclass
class Selection:
    """The outcome of one selection.

    rows: int64 ``(m,)`` unique row numbers, a subset of the candidates, in pick order.
    log: JSON-serialisable dict of what was decided and why.
    scores: optional float ``(m,)`` aligned with ``rows`` (higher = picked for more reason).
    """

    rows: np.ndarray
    log: dict = field(default_factory=dict)
    scores: np.ndarray | None = None


ACTIONS = ("reused", "loaded", "updated", "built")  # in rising order of what they cost


@dataclass
class IndexLog:
    """What the pool indexes (kNN graph, clusterings) cost in one :func:`select` call.

    ``records``: index name -> ``{"action", "seconds", "reason"}`` (+ ``"load_seconds"``
    for an index read from a saved state, ``"drift"`` for one that new rows joined),
    where action is ``built`` (from scratch), ``updated`` (new rows joined), ``loaded``
    (read from a saved state, used as is) or ``reused`` (kept in memory from an
    earlier call); ``seconds`` is the build or
    update time spent in this call. ``pool_check`` is the verdict of the pool check
    (:func:`longtail.strategies._pool.check_pool`), made once per call.
    """

    records: dict[str, dict] = field(default_factory=dict)
    pool_check: dict | None = None

    def note(self, name: str, action: str, seconds: float, reason: str,
             load_seconds: float | None = None, drift: dict | None = None) -> None:
        """Record one use of index ``name``; a second use in the same call adds its
        seconds and keeps the costlier action (a build after a load says built).
        ``drift``: the drift measure of an update (or of the update that forced a
        rebuild), see :func:`longtail.strategies._pool.drift_measure`."""
        rec = self.records.get(name)
        if rec is None:
            rec = self.records[name] = {"action": action, "seconds": 0.0, "reason": reason}
        elif ACTIONS.index(action) > ACTIONS.index(rec["action"]):
            rec["action"], rec["reason"] = action, reason
        rec["seconds"] = round(rec["seconds"] + float(seconds), 6)
        if load_seconds is not None:
            rec["load_seconds"] = round(float(load_seconds), 6)
        if drift is not None:
            rec["drift"] = drift

    def built(self) -> list[str]:
        """Names of the indexes built from scratch in this call."""
        return [n for n, r in self.records.items() if r["action"] == "built"]


@dataclass
class Context:
    """Validated inputs of one :func:`select` call, handed to a strategy function.

    Shapes: ``candidates`` (n,) int64; ``probs`` (n, C) float64 or None; ``classes`` (C,);
    ``committee_probs`` (m, n, C) or None; ``costs`` (n,) float64 or None.
    """

    k: int
    candidates: np.ndarray
    rng: np.random.Generator
    vectors: VectorReader | None = None
    probs: np.ndarray | None = None
    classes: np.ndarray | None = None
    labeled_rows: np.ndarray | None = None
    labeled_y: np.ndarray | None = None
    committee_probs: np.ndarray | None = None
    costs: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    state: dict | None = None
    history: list[dict] | None = None
    indexes: IndexLog = field(default_factory=IndexLog)

    @property
    def n(self) -> int:
        return int(len(self.candidates))

    @property
    def n_labeled(self) -> int:
        return 0 if self.labeled_rows is None else int(len(self.labeled_rows))

    @property
    def n_classes(self) -> int:
        """Number of classes known: ``len(classes)`` or the distinct ``labeled_y`` seen,
        whichever is larger; 0 when neither is given. O(L log L)."""
        n = len(self.classes) if self.classes is not None else 0
        if self.labeled_y is not None and len(self.labeled_y):
            n = max(n, len(np.unique(self.labeled_y)))
        return int(n)


@dataclass(frozen=True)
class Strategy:
    """A registry entry: ``fn(ctx) -> Selection``, what the caller must compute (``needs``)
    and a one-line ``doc``. ``needs_for(params)`` refines ``needs`` for strategies whose
    inputs depend on their parameters (the combinator's terms)."""

    name: str
    fn: Callable[[Context], Selection]
    needs: frozenset
    doc: str
    refine: Callable[[dict], frozenset] | None = None

    def needs_for(self, params: dict | None = None) -> frozenset:
        """What the caller must compute for this strategy with these ``params``."""
        if self.refine is None:
            return self.needs
        return self.refine(params or {})


def check_k(k: Any) -> int:
    """Validate the batch size: a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k <= 0:
        raise InputError(f"k must be a positive integer, got {k}")
    return int(k)


def check_candidates(candidates: Any) -> np.ndarray:
    """Validate candidate rows: 1-D, integer, unique, non-negative; empty -> EmptyPoolError.

    O(n) when sorted, O(n log n) otherwise."""
    cand = np.asarray(candidates)
    if cand.ndim != 1:
        raise InputError(f"candidates must be a 1-D array of row numbers, got shape {cand.shape}")
    if cand.size == 0:
        raise EmptyPoolError("there are no candidate rows to select from")
    if not np.issubdtype(cand.dtype, np.integer):
        raise InputError(f"candidates must be integer row numbers, got dtype {cand.dtype}")
    cand = cand.astype(np.int64, copy=False)
    if cand.min() < 0:
        raise InputError(f"candidates must be non-negative row numbers, got {int(cand.min())}")
    # O(n) when already sorted (the usual case), else one O(n log n) sort; no hashing
    steps = np.diff(cand)
    if not np.all(steps > 0):
        srt = np.sort(cand)
        dup = np.flatnonzero(np.diff(srt) == 0)
        if len(dup):
            raise InputError(f"candidates contain duplicate row number {int(srt[dup[0]])}")
    return cand


def check_probs(probs: Any, n: int, name: str = "probs") -> np.ndarray:
    """Validate predicted probabilities ``(n, C)`` (float32 or float64, no copy when
    already in [0, 1]); O(n·C) time, O(1) extra memory in the common case."""
    p = np.asarray(probs)
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] != n:
        raise InputError(f"{name} must have shape (len(candidates)={n}, C), got {p.shape}")
    if p.shape[1] == 0:
        raise InputError(f"{name} has no class columns")
    lo, hi = float(p.min()), float(p.max())  # NaN propagates into lo/hi
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{name} contains NaN or infinite values")
    if lo < 0.0 or hi > 1.0:
        p = np.clip(p, 0.0, 1.0)  # copy only when needed: (n, C) can be large
    return p


def topk_desc(values: np.ndarray, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Positions of the ``k`` largest ``values`` (ties broken by a random jitter when ``rng``).

    O(n) time with ``np.argpartition`` plus O(k log k) to order the winners; O(n) memory.
    """
    n = len(values)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if rng is not None:
        # A tiny jitter below any real score difference so equal scores are not
        # resolved by position (which would favour early rows).
        # Only finite scores get it: -inf marks rows never to pick, and inf + (-inf)
        # would make them NaN (and warn) for no change in the order.
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.where(np.isfinite(v), np.finfo(np.float64).eps * 64 * (1.0 + np.abs(v)), 0.0)
        v = v + rng.random(n) * scale
    if k < n:
        part = np.argpartition(-v, k - 1)[:k]
    else:
        part = np.arange(n)
    order = np.argsort(-v[part], kind="stable")
    return part[order].astype(np.int64)


def no_vectors(ctx: Context, name: str) -> Selection:
    """Without vectors there is nothing to be representative of: a uniform draw, logged.
    O(n)."""
    pos = ctx.rng.choice(ctx.n, size=min(ctx.k, ctx.n), replace=False)
    return Selection(
        rows=ctx.candidates[np.asarray(pos, dtype=np.int64)],
        log={"strategy": name, "fallback": "random (no vectors given)"},
    )


def fill_random(ctx: Context, chosen: list[int]) -> np.ndarray:
    """Top up ``chosen`` (candidate positions) at random to min(k, n) positions (e.g. when
    the graph is a sample of a huge pool or everything is covered). O(n)."""
    want = min(ctx.k, ctx.n)
    if len(chosen) >= want:
        return np.asarray(chosen[:want], dtype=np.int64)
    taken = np.zeros(ctx.n, dtype=bool)
    taken[np.asarray(chosen, dtype=np.int64)] = True
    rest = np.flatnonzero(~taken)
    extra = ctx.rng.choice(rest, size=want - len(chosen), replace=False)
    return np.concatenate([np.asarray(chosen, dtype=np.int64), np.sort(extra)])


def round_robin(
    ctx: Context,
    cand_cluster: np.ndarray,
    value: np.ndarray,
    covered: np.ndarray,
    size: np.ndarray,
    n_clusters: int,
) -> list[int]:
    """Visit clusters by (covered asc, size desc); take each one's best remaining
    candidate by ``value``; repeat until min(k, n) picks. Returns candidate positions.

    cand_cluster, value: (n,) per candidate; covered, size: (n_clusters,) per cluster
    (pass ``-size`` to visit the smallest first). O(n log n + k log K)."""
    order = np.lexsort((-value, cand_cluster))
    cl_sorted = cand_cluster[order]
    starts = np.searchsorted(cl_sorted, np.arange(n_clusters))
    ends = np.searchsorted(cl_sorted, np.arange(n_clusters), side="right")
    nxt = starts.copy()
    tie = ctx.rng.random(n_clusters)
    heap = [(int(covered[c]), -int(size[c]), float(tie[c]), int(c))
            for c in range(n_clusters) if ends[c] > starts[c]]
    heapq.heapify(heap)
    want = min(ctx.k, ctx.n)
    chosen: list[int] = []
    while heap and len(chosen) < want:
        cov, neg_size, t, c = heapq.heappop(heap)
        chosen.append(int(order[nxt[c]]))
        nxt[c] += 1
        if nxt[c] < ends[c]:
            heapq.heappush(heap, (cov + 1, neg_size, t, c))
    return chosen


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; constant input gives zeros. O(n)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    lo, hi = float(np.min(x)), float(np.max(x))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo <= 0:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def apply_costs(values: np.ndarray, costs: np.ndarray | None) -> np.ndarray:
    """Value per unit cost: ``values / costs`` when costs are given (scores shifted to be
    positive first, so a lower cost always helps). O(n)."""
    if costs is None:
        return values
    v = np.asarray(values, dtype=np.float64)
    v = v - min(0.0, float(v.min())) + 1e-12
    return v / costs


def jsonable(x: Any) -> Any:
    """Convert numpy scalars/arrays inside dicts/lists to plain Python for JSON logs."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
