"""Pool structures shared by the representative and diverse strategies, cached in ``state``.

Two structures, each built once and updated incrementally when new rows arrive:

* :func:`pool_graph` — a sparse symmetric kNN graph (``knn`` neighbours per row,
  Gaussian kernel weights) over the *universe* ``candidates ∪ labeled_rows``, or a
  uniform sample of it of at most ``max_rows`` rows (labeled rows always kept) when
  the pool is larger. Exact FAISS ``IndexFlatL2`` search: O(u²·d) once for u rows,
  O(u·knn) memory; never an n×n dense matrix. New rows join it (:func:`join_graph`):
  the sample stays uniform (reservoir), the rows drawn in are searched among the
  graph, and old rows' lists take the new rows closer than their entries.
* :func:`pool_clusters` — k-means centroids (``faiss.Kmeans`` on a sample of at most
  64 rows per centroid) and the cluster of every row seen, assigned by streaming the
  vectors in chunks: O(n·K·d) time once, O(n) memory; new rows cost O(new·K·d), K and
  the centroids kept.

Both live in ``state["longtail.strategies"]`` beside ``built_on``, the record of the
pool they were built on (vector-set name, dim, row count, the caller's fingerprint and
a digest of a fixed sample of rows). Each call checks it once (:func:`check_pool`):
unchanged -> reuse, rows only appended -> update incrementally, anything else ->
rebuild; the call's :class:`~longtail.strategies._base.IndexLog` says which and why.

An update becomes a rebuild in two cases, each with its reason in the log:

* **drift** (:func:`drift_measure`): more than ``DRIFT_SHARE`` (20%) of the rows added
  since the build lie farther than the build's 95th percentile of the same distance
  (to the nearest centroid; to the nearest graph row), where about 5% would without
  drift. Each update's record carries the measure (``"drift"``).
* **growth** (:func:`growth_reason`): the pool is more than ``GROWTH_REBUILD`` (16)
  times the rows the index was built on. Growth alone does not force a rebuild
  sooner: rows from the pool's distribution are represented by the old centroids and
  graph as well as by new ones, and updates cost O(new rows); the 16-fold bound keeps
  the total rebuild cost within a constant factor of one build at the final size.

:mod:`longtail.strategies.state` turns the whole state into arrays (no pickle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field

import faiss
import numpy as np
import scipy.sparse as sp

from longtail.strategies._base import Context, VectorReader

CACHE_KEY = "longtail.strategies"
DEFAULT_GRAPH_ROWS = 40_000
DEFAULT_KNN = 30
_CHUNK = 65536


# Field metadata of what is derived or per-process (a kernel cache, the seconds a saved
# index took to read, until its first use): longtail.strategies.state does not save it.
NOT_SAVED = {"saved": False}
POOL_KEY = "longtail.pool"  # the caller's description of the pool: see state.set_pool
SAMPLE_ROWS = 64

# When a saved index is rebuilt rather than updated (see the module doc).
GROWTH_REBUILD = 16.0  # pool this many times the rows the index was built on
DRIFT_QUANTILE = 0.95  # reference: this quantile of the built rows' distances...
DRIFT_SHARE = 0.2  # ...exceeded by more than this share of the rows added since (0.05
DRIFT_MIN_ROWS = 10  # expected without drift), and by at least this many rows
SPARE_SHARE = 0.5  # spare neighbours kept per row beyond knn, as a share of knn


def drift_measure(added: int, beyond: int, measure: str) -> dict:
    """The drift of an updated index, for its log record: ``added`` rows joined since
    the build, ``beyond`` of them farther (by ``measure``) than the build's
    ``DRIFT_QUANTILE`` quantile of the same distance over the built rows. Without drift
    about 5% are beyond; ``drifted`` when more than ``DRIFT_SHARE`` (and at least
    ``DRIFT_MIN_ROWS``) are. Cumulative since the build, so many small drifted batches
    add up. O(1)."""
    share = beyond / added if added else 0.0
    return {"measure": measure, "rows_added": int(added), "beyond_p95": int(beyond),
            "share": round(share, 4), "expected": round(1.0 - DRIFT_QUANTILE, 4),
            "threshold": DRIFT_SHARE,
            "drifted": bool(beyond >= DRIFT_MIN_ROWS and share > DRIFT_SHARE)}


def drift_reason(drift: dict) -> str:
    """Why a drift measure forced a rebuild, in words."""
    return (f"drift: {drift['share']:.0%} of the {drift['rows_added']} rows added since the "
            f"build lie beyond the build's {DRIFT_QUANTILE:.0%} quantile of the "
            f"{drift['measure']} (rebuild above {DRIFT_SHARE:.0%}; "
            f"{drift['expected']:.0%} expected without drift)")


def growth_reason(built_rows: int, now_rows: int) -> str | None:
    """Why growth forces a rebuild, or None: the pool is more than ``GROWTH_REBUILD``
    times the rows the index was built on. Rebuilds then come at geometric pool sizes,
    so their total cost stays within a constant factor of one build at the final size,
    and the accumulated approximations of updates (stale centroids, a kernel bandwidth
    from a sparser pool) are bounded. Growth from one distribution alone never forces
    one sooner: the drift measure decides that."""
    if built_rows > 0 and now_rows > GROWTH_REBUILD * built_rows:
        return (f"the pool grew {now_rows / built_rows:.1f}x since the build ({built_rows} -> "
                f"{now_rows} rows; rebuilt past {GROWTH_REBUILD:g}x)")
    return None


def sample_rows(n_rows: int) -> np.ndarray:
    """The fixed rows whose vectors fingerprint a pool of ``n_rows``: up to
    ``SAMPLE_ROWS`` evenly spaced from the first to the last. O(1)."""
    if n_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n_rows - 1, min(SAMPLE_ROWS, n_rows)).astype(np.int64))


def rows_digest(reader: VectorReader, rows: np.ndarray) -> str:
    """Hex digest of the float32 vectors of ``rows``: O(len(rows)·d)."""
    vecs = np.ascontiguousarray(reader.read(rows), dtype=np.float32)
    return hashlib.blake2b(vecs.tobytes(), digest_size=16).hexdigest()


def check_pool(built_on: dict | None, now: dict, reader: VectorReader) -> dict:
    """Decide what the cached indexes may do on the pool ``now``.

    ``built_on``: the record saved with the indexes (None when there is none); ``now``:
    ``{"name", "fingerprint", "dim", "n_rows"}`` of the pool this call sees. Returns
    ``{"verdict": "reuse" | "update" | "rebuild", "reason": str}``: rebuild when the
    vector set, its dimension or the caller's fingerprint differ, rows were removed or
    the sampled rows' vectors changed (rows replaced); update when rows were only
    appended; else reuse. O(SAMPLE_ROWS·d): it reads the sampled rows again.
    """
    if not built_on:
        return {"verdict": "rebuild", "reason": "no index saved yet"}
    for key, what in (("name", "vector set"), ("dim", "dimension"),
                      ("fingerprint", "pool fingerprint")):
        if built_on.get(key) != now.get(key):
            return {"verdict": "rebuild", "reason": f"{what} changed "
                    f"({built_on.get(key)!r} -> {now.get(key)!r})"}
    n0, n1 = int(built_on.get("n_rows", -1)), int(now["n_rows"])
    if n1 < n0:
        return {"verdict": "rebuild", "reason": f"rows removed ({n0} -> {n1} rows)"}
    rows = np.asarray(built_on.get("sample_rows", []), dtype=np.int64)
    if len(rows) and rows_digest(reader, rows) != built_on.get("sample_digest"):
        return {"verdict": "rebuild", "reason": f"rows replaced (the vectors of {len(rows)} "
                "sampled rows changed)"}
    if n1 > n0:
        return {"verdict": "update", "reason": f"{n1 - n0} rows appended ({n0} -> {n1})"}
    return {"verdict": "reuse", "reason": f"pool unchanged ({n1} rows, {len(rows)} sampled "
            "rows' vectors equal)"}


def pool_cache(ctx: Context) -> dict:
    """The caller's index cache, checked against the pool once per call (a rebuild
    verdict empties it). ``{}`` (not kept) without state."""
    if ctx.state is None:
        return {}
    cache = ctx.state.setdefault(CACHE_KEY, {})
    if ctx.indexes.pool_check is not None or ctx.vectors is None:
        return cache
    pool = ctx.state.get(POOL_KEY) or {}
    now = {"name": pool.get("name"), "fingerprint": pool.get("fingerprint"),
           "dim": int(ctx.vectors.dim), "n_rows": int(ctx.vectors.n_rows)}
    check = check_pool(cache.get("built_on"), now, ctx.vectors)
    ctx.indexes.pool_check = check
    if check["verdict"] == "rebuild":
        cache.clear()
    if check["verdict"] != "reuse":
        rows = sample_rows(now["n_rows"])
        cache["built_on"] = {**now, "sample_rows": rows,
                             "sample_digest": rows_digest(ctx.vectors, rows)}
    return cache


def _why_built(ctx: Context, name: str) -> str:
    """Why index ``name`` is built from scratch in this call, for the log."""
    if ctx.state is None:
        return "no state kept between calls (state=None)"
    check = ctx.indexes.pool_check or {}
    if check.get("verdict") == "rebuild" and check.get("reason") != "no index saved yet":
        return f"rebuilt: {check['reason']}"
    return f"{name} not in the state yet"


def _note_cached(ctx: Context, name: str, obj, t0: float, action: str | None = None,
                 reason: str | None = None, drift: dict | None = None) -> None:
    """Log the use of a cached index: loaded (first use after a load), reused, or
    ``action`` (updated) with its seconds."""
    loaded = obj.load_seconds
    obj.load_seconds = None  # the next call in this process reuses it from memory
    if action is None:
        action = "loaded" if loaded is not None else "reused"
        reason = ((ctx.indexes.pool_check or {}).get("reason", "") if loaded is not None
                  else "kept in memory from an earlier call")
        seconds = 0.0
    else:
        seconds = time.perf_counter() - t0
    ctx.indexes.note(name, action, seconds, reason or "", load_seconds=loaded, drift=drift)


def seed_from(rng: np.random.Generator) -> int:
    """A 31-bit seed for FAISS drawn from ``rng`` (keeps results deterministic per seed)."""
    return int(rng.integers(0, 2**31 - 1))


def sorted_unique(*parts: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 values of the ``parts`` together, by one sort: O(n log n).
    (numpy's own ``unique``/``union1d``/``intersect1d`` hash, which is ~100x slower on
    a million distinct row numbers.)"""
    x = np.concatenate([np.asarray(p, dtype=np.int64).ravel() for p in parts]) if parts \
        else np.zeros(0, dtype=np.int64)
    x.sort(kind="stable")
    if len(x) < 2:
        return x
    return x[np.concatenate([[True], x[1:] != x[:-1]])]


def sorted_intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of ``a`` that are in ``b``: O((|a| + |b|) log)."""
    a = np.asarray(a, dtype=np.int64)
    return sorted_unique(a[np.isin(a, b)])


def universe(ctx: Context) -> np.ndarray:
    """Sorted unique rows of ``candidates ∪ labeled_rows``: O((n+L) log(n+L))."""
    if ctx.labeled_rows is None or len(ctx.labeled_rows) == 0:
        return np.sort(ctx.candidates)
    lab = ctx.labeled_rows
    if ctx.vectors is not None:
        lab = lab[(lab >= 0) & (lab < ctx.vectors.n_rows)]
    return sorted_unique(ctx.candidates, lab)


def read_rows(reader: VectorReader, rows: np.ndarray) -> np.ndarray:
    """float32 vectors of ``rows`` in that order, read in chunks: O(len(rows)·d) memory."""
    out = np.empty((len(rows), reader.dim), dtype=np.float32)
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        out[start : start + len(part)] = reader.read(part)
    return out


@dataclass
class Graph:
    """A kNN graph over ``rows`` (sorted int64, the sample of the universe).

    ``nbr`` (u, knn) int64 positions into ``rows`` (-1 = none), ``d2`` (u, knn) float32
    squared L2 distances, ``sigma2`` the kernel bandwidth (median squared distance to
    the ``knn``-th neighbour, so it adapts to the data's scale).
    """

    rows: np.ndarray
    nbr: np.ndarray
    d2: np.ndarray
    sigma2: float
    seen: np.ndarray | None = None  # every universe row considered (rows is a sample of it)
    built_rows: int | None = None  # rows seen at the build (the growth rule)
    added: int = 0  # rows joined since the build...
    beyond: int = 0  # ...and how many of them were unusually far from the graph's rows
    # the next-nearest neighbours after the knn of ``nbr`` (u, spare): they take the
    # place of neighbours that leave the sample, so lists stay exact across updates
    spare_nbr: np.ndarray | None = None
    spare_d2: np.ndarray | None = None
    _kernels: dict = field(default_factory=dict, repr=False, metadata=NOT_SAVED)
    load_seconds: float | None = field(default=None, repr=False, compare=False,
                                       metadata=NOT_SAVED)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Positions of ``rows`` in the graph; -1 for rows not in it. O(m log u)."""
        pos = np.searchsorted(self.rows, rows)
        pos = np.minimum(pos, len(self.rows) - 1)
        ok = self.rows[pos] == rows
        return np.where(ok, pos, -1)

    def kernel(self, sigma_scale: float = 1.0) -> sp.csc_matrix:
        """Symmetric sparse kernel ``K[i, j] = exp(-d²/σ²)`` on kNN pairs, unit diagonal.

        O(u·knn) time and memory.
        """
        key = float(sigma_scale)
        if key in self._kernels:
            return self._kernels[key]
        u, knn = self.nbr.shape
        ii = np.repeat(np.arange(u), knn)
        jj = self.nbr.ravel()
        w = np.exp(-self.d2.ravel().astype(np.float64) / max(self.sigma2 * sigma_scale, 1e-12))
        ok = (jj >= 0) & (jj != ii)
        A = sp.csr_matrix((w[ok], (ii[ok], jj[ok])), shape=(u, u))
        A = (A.maximum(A.T) + sp.identity(u, format="csr")).tocsc()
        self._kernels = {key: A}  # keep one: the graph lives in the caller's state
        return A

    def typicality(self, knn: int | None = None) -> np.ndarray:
        """``1 / mean distance to the knn nearest neighbours`` (TypiClust): (u,). O(u·knn)."""
        kk = self.nbr.shape[1] if knn is None else min(knn, self.nbr.shape[1])
        d = np.sqrt(np.maximum(self.d2[:, :kk].astype(np.float64), 0.0))
        d = np.where(self.nbr[:, :kk] >= 0, d, np.nan)
        mean = np.nanmean(np.where(np.isnan(d).all(axis=1, keepdims=True), 1.0, d), axis=1)
        return 1.0 / (mean + 1e-12)


def candidate_positions(ctx: Context, g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the graph, positions in ctx.candidates) of the candidates that are
    in the graph (all of them unless the graph is a sample). O(n log u)."""
    gpos = g.positions(ctx.candidates)
    in_graph = np.flatnonzero(gpos >= 0)
    return gpos[in_graph], in_graph


def knn_search(index_vecs: np.ndarray, query_vecs: np.ndarray, knn: int,
               exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact FAISS kNN of ``query_vecs`` (q, d) among ``index_vecs`` (u, d), float32.

    Returns (nbr (q, knn) int64 positions into ``index_vecs``, -1 = none; d2 (q, knn)
    float32 squared L2, inf where none). ``exclude_self``: the queries are the index
    rows themselves and each row's own match is dropped. O(q·u·d) time, O(q·knn) memory.
    """
    index = faiss.IndexFlatL2(index_vecs.shape[1])
    index.add(index_vecs)
    kk = min(knn + (1 if exclude_self else 0), index_vecs.shape[0])
    d2_all = np.empty((len(query_vecs), kk), dtype=np.float32)
    nbr_all = np.empty((len(query_vecs), kk), dtype=np.int64)
    for start in range(0, len(query_vecs), 8192):
        d2, nbr = index.search(query_vecs[start : start + 8192], kk)
        d2_all[start : start + len(d2)] = d2
        nbr_all[start : start + len(d2)] = nbr
    if exclude_self:
        # Drop the self match wherever it appears (duplicates may push it off position 0).
        own = np.arange(len(query_vecs))[:, None]
        is_self = nbr_all == own
        no_self = ~is_self.any(axis=1)
        is_self[no_self, -1] = True
        keep = ~is_self
        nbr_all = nbr_all[keep].reshape(len(query_vecs), kk - 1)
        d2_all = d2_all[keep].reshape(len(query_vecs), kk - 1)
    if nbr_all.shape[1] < knn:
        pad = knn - nbr_all.shape[1]
        nbr_all = np.pad(nbr_all, ((0, 0), (0, pad)), constant_values=-1)
        d2_all = np.pad(d2_all, ((0, 0), (0, pad)), constant_values=np.inf)
    return nbr_all, np.maximum(d2_all, 0.0)


def _sigma2(nbr: np.ndarray, d2: np.ndarray) -> float:
    last = d2[:, -1][nbr[:, -1] >= 0] if nbr.shape[1] else np.zeros(0)
    last = last[np.isfinite(last)]
    if last.size == 0 or float(np.median(last)) <= 0:
        return 1.0
    return float(np.median(last))


def pool_graph(ctx: Context, knn: int | None = None, max_rows: int | None = None) -> Graph:
    """The kNN graph over the universe (sampled to ``max_rows``), from the cache if fresh.

    First call: O(u²·d) exact search (u ≤ ``max_rows``, default 40k), O(u·(d+knn)) memory.
    Later calls with new rows join them (:func:`join_graph`): O(m·u·d) for the m new
    rows drawn into the sample, never a search of the old rows against each other.
    Rebuilt only on drift (:func:`drift_measure`) or growth past ``GROWTH_REBUILD``
    times the pool it was built on; the log says which and why.
    """
    assert ctx.vectors is not None
    knn = DEFAULT_KNN if knn is None else int(knn)
    max_rows = int(ctx.params.get("graph_rows", DEFAULT_GRAPH_ROWS) if max_rows is None
                   else max_rows)
    t0 = time.perf_counter()
    cache = pool_cache(ctx)
    uni = universe(ctx)
    g: Graph | None = cache.get("graph")
    why = _why_built(ctx, "graph")
    drift = loaded = None
    if g is not None and g.nbr.shape[1] != knn:
        why = f"knn changed ({g.nbr.shape[1]} -> {knn})"
    elif g is not None:
        seen = g.rows if g.seen is None else g.seen
        new = np.setdiff1d(uni, seen, assume_unique=True)
        if len(new) == 0:
            _note_cached(ctx, "graph", g, t0)
            return g
        grown = growth_reason(g.built_rows or len(seen), len(seen) + len(new))
        if grown:
            why = f"rebuilt: {grown}"
        else:
            joined, note, drift = join_graph(ctx, g, new, knn, max_rows)
            if not drift["drifted"]:
                cache["graph"] = joined
                _note_cached(ctx, "graph", g, t0, "updated", note, drift=drift)
                return joined
            why = f"rebuilt: {drift_reason(drift)}"
        loaded = g.load_seconds
    g = _build_graph(ctx, uni, knn, max_rows)
    if ctx.state is not None:
        cache["graph"] = g
    ctx.indexes.note("graph", "built", time.perf_counter() - t0, why, load_seconds=loaded,
                     drift=drift)
    return g


def _build_graph(ctx: Context, uni: np.ndarray, knn: int, max_rows: int) -> Graph:
    """The exact kNN graph of ``uni`` or of a uniform sample of ``max_rows`` of it
    (labeled rows always kept): O(u²·d)."""
    rows = uni
    if len(rows) > max_rows:
        lab = (sorted_intersect(ctx.labeled_rows, uni) if ctx.labeled_rows is not None
               else np.zeros(0, dtype=np.int64))
        rest = np.setdiff1d(uni, lab, assume_unique=True)
        take = ctx.rng.choice(len(rest), size=max(max_rows - len(lab), 0), replace=False)
        rows = np.sort(np.concatenate([lab, rest[take]]))
    vecs = read_rows(ctx.vectors, rows)
    spare = _n_spare(knn)
    nbr, d2 = knn_search(vecs, vecs, knn + spare, exclude_self=True)
    return Graph(rows=rows, nbr=nbr[:, :knn].copy(), d2=d2[:, :knn].copy(),
                 sigma2=_sigma2(nbr[:, :knn], d2[:, :knn]), seen=uni, built_rows=int(len(uni)),
                 spare_nbr=nbr[:, knn:].copy(), spare_d2=d2[:, knn:].copy())


def _n_spare(knn: int) -> int:
    return int(np.ceil(SPARE_SHARE * knn))


def join_graph(ctx: Context, g: Graph, new: np.ndarray, knn: int, max_rows: int
               ) -> tuple[Graph, str, dict]:
    """Join the rows ``new`` (not seen by ``g``) to the graph ``g``.

    The sample stays a uniform draw of ``max_rows`` of every row seen (reservoir
    sampling in one batch: a hypergeometric share of the new rows comes in, as many
    random unlabeled old rows leave). The m rows that come in are searched exactly
    among the u kept rows and among themselves, and the kept rows among the new ones
    (O(m·(u+m)·d), never a search of old rows among old rows); each kept row's list
    takes its nearest new rows where they are closer than its entries and drops the
    rows that left, its spare neighbours moving up. Lists stay exact while a row's
    spare lasts (a row that lost more than its spare keeps holes, filled by later
    new rows or the next rebuild).
    Returns ``(graph, what was done, drift measure)``; ``g`` is left as it was.
    """
    seen_old = g.rows if g.seen is None else g.seen
    seen = sorted_unique(seen_old, new)
    u, m0 = len(g.rows), len(new)
    lab = (np.asarray(ctx.labeled_rows, dtype=np.int64) if ctx.labeled_rows is not None
           else np.zeros(0, dtype=np.int64))
    evict = np.zeros(0, dtype=np.int64)
    take = new
    if u + m0 > max_rows:
        # how many of a uniform max_rows-draw of seen ∪ new are new rows
        h = int(ctx.rng.hypergeometric(m0, len(seen_old), max_rows))
        take = new[np.sort(ctx.rng.choice(m0, size=h, replace=False))]
        take = sorted_unique(take, new[np.isin(new, lab)])  # labeled rows always in
        evictable = np.flatnonzero(~np.isin(g.rows, lab))
        n_evict = min(max(u + len(take) - max_rows, 0), len(evictable))
        evict = np.sort(ctx.rng.choice(evictable, size=n_evict, replace=False))
    measure = "squared distance to the nearest row already in the graph"
    if len(take) == 0:
        drift = drift_measure(g.added, g.beyond, measure)
        out = dataclasses.replace(g, seen=seen)
        out.load_seconds = None
        return out, f"{m0} new rows seen, none drawn into the graph sample", drift
    keep = np.ones(u, dtype=bool)
    keep[evict] = False
    kept = np.flatnonzero(keep)
    nk, m = len(kept), len(take)
    new_vecs = read_rows(ctx.vectors, take)
    # lists are kept knn + spare wide (the spare fills the places of rows that leave)
    spare = 0 if g.spare_nbr is None else g.spare_nbr.shape[1]
    full_nbr = g.nbr if not spare else np.concatenate([g.nbr, g.spare_nbr], axis=1)
    full_d2 = g.d2 if not spare else np.concatenate([g.d2, g.spare_d2], axis=1)
    knn_all = knn + spare
    # new rows' nearest kept rows, and kept rows' nearest new rows: two exact searches
    # of the same m x u pairs, so a kept row never misses a new neighbour that did not
    # find it in return (kNN is not symmetric)
    if nk:
        old_vecs = read_rows(ctx.vectors, g.rows[kept])
        nbr_o, d2_o = knn_search(old_vecs, new_vecs, knn_all, exclude_self=False)
        rev_n, rev_d2 = knn_search(new_vecs, old_vecs, knn_all, exclude_self=False)
        del old_vecs
    else:
        nbr_o = np.full((m, knn_all), -1, dtype=np.int64)
        d2_o = np.full((m, knn_all), np.inf, dtype=np.float32)
        rev_n = np.zeros((0, knn_all), dtype=np.int64)
        rev_d2 = np.zeros((0, knn_all), dtype=np.float32)
    nbr_n, d2_n = knn_search(new_vecs, new_vecs, knn_all, exclude_self=True)
    # the new rows' lists: the nearest of their kept-row and new-row neighbours
    cand = np.concatenate([nbr_o, np.where(nbr_n >= 0, nk + nbr_n, -1)], axis=1)
    cd2 = np.where(cand >= 0, np.concatenate([d2_o, d2_n], axis=1), np.inf)
    top = np.argsort(cd2, axis=1, kind="stable")[:, :knn_all]
    new_nbr = np.take_along_axis(cand, top, axis=1)
    new_d2 = np.take_along_axis(cd2, top, axis=1).astype(np.float32)
    # the kept rows' lists: rows that left become holes (the spare moves up), new rows
    # closer than a list's last entry are merged in (nearest first, knn + spare at most)
    remap = np.full(u, -1, dtype=np.int64)
    remap[kept] = np.arange(nk)
    onbr = np.where(full_nbr >= 0, remap[np.maximum(full_nbr, 0)], -1)[kept]
    od2 = np.where(onbr >= 0, full_d2[kept], np.inf).astype(np.float32)
    # drift reference: the kept rows' distances to their nearest kept row (the same
    # measure the new rows get, at the same sample density)
    nearest = od2.min(axis=1) if od2.shape[1] else np.zeros(0, dtype=np.float32)
    nearest = nearest[np.isfinite(nearest)]
    ref = float(np.quantile(nearest, DRIFT_QUANTILE)) if nearest.size else np.inf
    # one row-wise merge: each kept row's entries and its nearest new rows, nearest first
    before = onbr[:, :knn].copy()
    cand = np.concatenate([onbr, np.where(rev_n >= 0, nk + rev_n, -1)], axis=1)
    cd2 = np.concatenate([od2, np.where(rev_n >= 0, rev_d2, np.inf)], axis=1)
    top = np.argsort(cd2, axis=1, kind="stable")[:, :knn_all]
    od2 = np.take_along_axis(cd2, top, axis=1).astype(np.float32)
    onbr = np.where(np.isfinite(od2), np.take_along_axis(cand, top, axis=1), -1)
    changed = int((onbr[:, :knn] != before).any(axis=1).sum())
    rows = np.concatenate([g.rows[kept], take])
    nbr = np.concatenate([onbr, new_nbr])
    d2 = np.concatenate([od2, new_d2])
    order = np.argsort(rows, kind="stable")
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    nbr = np.where(nbr >= 0, inv[np.maximum(nbr, 0)], -1)[order]
    d2 = d2[order]
    nearest_old = np.where(nbr_o[:, 0] >= 0, d2_o[:, 0], np.inf)
    beyond = int(np.count_nonzero(nearest_old > ref))
    drift = drift_measure(g.added + m, g.beyond + beyond, measure)
    out = Graph(rows=rows[order], nbr=nbr[:, :knn].copy(), d2=d2[:, :knn].copy(),
                sigma2=_sigma2(nbr[:, :knn], d2[:, :knn]), seen=seen,
                built_rows=int(g.built_rows or len(seen_old)),
                added=int(g.added + m), beyond=int(g.beyond + beyond),
                spare_nbr=nbr[:, knn:].copy() if spare else None,
                spare_d2=d2[:, knn:].copy() if spare else None)
    note = (f"{m0} new rows joined ({m} into the graph, {len(evict)} left the sample to "
            f"keep it uniform, {changed} rows' neighbour lists changed)")
    return out, note, drift


@dataclass
class Clusters:
    """k-means over the pool: ``centroids`` (K, d) float32; ``rows`` (sorted int64) with
    their cluster ``labels`` (int64) and squared distance ``d2`` to their centroid."""

    centroids: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    d2: np.ndarray
    built_rows: int | None = None  # rows at the build (the growth rule)
    d2_p95: float | None = None  # built rows' DRIFT_QUANTILE of d2 to their centroid
    added: int = 0  # rows assigned since the build...
    beyond: int = 0  # ...and how many of them were farther than d2_p95 from every centroid
    load_seconds: float | None = field(default=None, repr=False, compare=False,
                                       metadata=NOT_SAVED)

    def lookup(self, rows: np.ndarray) -> np.ndarray:
        """Cluster of each of ``rows`` (all must have been assigned). O(m log n)."""
        pos = np.searchsorted(self.rows, rows)
        return self.labels[pos]


def _assign(reader: VectorReader, rows: np.ndarray, centroids: np.ndarray):
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    labels = np.empty(len(rows), dtype=np.int64)
    d2 = np.empty(len(rows), dtype=np.float32)
    pos = 0
    for chunk_rows, vecs in reader.iter_chunks(rows, chunk_rows=_CHUNK):
        dist, lab = index.search(np.ascontiguousarray(vecs, dtype=np.float32), 1)
        labels[pos : pos + len(chunk_rows)] = lab[:, 0]
        d2[pos : pos + len(chunk_rows)] = dist[:, 0]
        pos += len(chunk_rows)
    return labels, d2


def kmeans(vecs: np.ndarray, n_clusters: int, seed: int, niter: int = 20) -> np.ndarray:
    """faiss k-means centroids ``(n_clusters, d)``; O(nredo·niter·s·K·d), s ≤ 64·K
    samples, nredo = 5 restarts on small problems and 1 on large ones."""
    n_clusters = max(1, min(n_clusters, len(vecs)))
    # Several restarts (faiss keeps the best objective) when they are cheap: random
    # init alone too often lands two centroids in one blob on small pools.
    work = len(vecs) * n_clusters * vecs.shape[1] * niter
    nredo = 5 if work < 2e9 else 1
    km = faiss.Kmeans(vecs.shape[1], n_clusters, niter=niter, seed=seed, verbose=False,
                      nredo=nredo, max_points_per_centroid=64, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(vecs, dtype=np.float32))
    return np.asarray(km.centroids, dtype=np.float32)


def pool_clusters(ctx: Context, n_clusters: int, name: str = "clusters") -> Clusters:
    """k-means with ``n_clusters`` over the universe, cached under ``name``.

    Trains on a sample of at most 64·K rows, then assigns every universe row by
    streaming (O(n·K·d) time, O(n) memory). Rows that arrive later are assigned to
    the existing centroids, K and centroids kept (O(new·K·d)); the centroids are
    retrained only when K changes, on drift (:func:`drift_measure` of the new rows'
    distance to their centroid) or growth past ``GROWTH_REBUILD`` times the build's
    rows. A clustering named ``family_K`` replaces the ``family_K'`` of another K in
    the state (the state keeps one clustering per family).
    """
    assert ctx.vectors is not None
    t0 = time.perf_counter()
    cache = pool_cache(ctx)
    uni = universe(ctx)
    cl: Clusters | None = cache.get(name)
    kk = _effective_k(n_clusters, len(uni))
    why = _why_built(ctx, name)
    drift = loaded = None
    siblings = _siblings(cache, name)
    if cl is None and siblings and ctx.state is not None:
        old = cache[siblings[0]]
        why = (f"replaces {siblings[0]}: K {len(old.centroids)} -> {kk} for "
               f"{len(uni)} rows (built on {old.built_rows or len(old.rows)})")
    if cl is not None and len(cl.centroids) != kk:
        why = f"K changed ({len(cl.centroids)} -> {kk})"
    elif cl is not None:
        new = np.setdiff1d(uni, cl.rows, assume_unique=True)
        if len(new) == 0:
            _note_cached(ctx, name, cl, t0)
            return cl
        grown = growth_reason(cl.built_rows or len(cl.rows), len(cl.rows) + len(new))
        if grown:
            why = f"rebuilt: {grown}"
        else:
            labels, d2 = _assign(ctx.vectors, new, cl.centroids)
            ref = cl.d2_p95 if cl.d2_p95 is not None else (
                float(np.quantile(cl.d2, DRIFT_QUANTILE)) if len(cl.d2) else np.inf)
            beyond = int(np.count_nonzero(d2 > ref))
            drift = drift_measure(cl.added + len(new), cl.beyond + beyond,
                                  "squared distance to the nearest centroid")
            if not drift["drifted"]:
                rows = np.concatenate([cl.rows, new])
                order = np.argsort(rows, kind="stable")
                old = cl
                cl = Clusters(cl.centroids, rows[order],
                              np.concatenate([cl.labels, labels])[order],
                              np.concatenate([cl.d2, d2])[order],
                              built_rows=int(cl.built_rows or len(cl.rows)), d2_p95=float(ref),
                              added=int(drift["rows_added"]), beyond=int(drift["beyond_p95"]))
                cache[name] = cl
                _note_cached(ctx, name, old, t0, "updated",
                             f"{len(new)} new rows assigned to the {kk} centroids (kept)",
                             drift=drift)
                return cl
            why = f"rebuilt: {drift_reason(drift)}"
        loaded = cl.load_seconds
    # 64 rows per centroid are plenty to place centroids; assignment sees every row
    n_train = min(len(uni), 64 * kk)
    train_rows = uni if n_train == len(uni) else np.sort(
        ctx.rng.choice(uni, size=n_train, replace=False))
    centroids = kmeans(read_rows(ctx.vectors, train_rows), kk, seed_from(ctx.rng))
    labels, d2 = _assign(ctx.vectors, uni, centroids)
    cl = Clusters(centroids, uni, labels, d2, built_rows=int(len(uni)),
                  d2_p95=_held_out_quantile(uni, labels, d2, train_rows, kk))
    if ctx.state is not None:
        cache[name] = cl
        for sib in siblings:
            del cache[sib]
    ctx.indexes.note(name, "built", time.perf_counter() - t0, why, load_seconds=loaded,
                     drift=drift)
    return cl


def _held_out_quantile(rows: np.ndarray, labels: np.ndarray, d2: np.ndarray,
                       train_rows: np.ndarray, n_clusters: int) -> float | None:
    """``DRIFT_QUANTILE`` of the rows' squared distance to their centroid as rows the
    centroids were not trained on would see it: a training row's distance is taken to
    its cluster's mean without itself, ``d2·(n_c/(n_c-1))²`` (n_c training rows in
    its cluster), since in-sample distances are shorter than a new row's. O(n)."""
    if len(d2) == 0:
        return None
    trained = np.isin(rows, train_rows, assume_unique=True)
    n_c = np.bincount(labels[trained], minlength=n_clusters).astype(np.float64)
    scale = np.where(n_c > 1, n_c / np.maximum(n_c - 1, 1), 1.0) ** 2
    loo = np.where(trained, d2 * scale[labels], d2)
    return float(np.quantile(loo, DRIFT_QUANTILE))


def _siblings(cache: dict, name: str) -> list[str]:
    """Other clusterings of ``name``'s family in the cache: ``pool_632`` for
    ``pool_894`` (names ``family_K``); none for a name without a ``_K`` suffix."""
    family, _, k = name.rpartition("_")
    if not family or not k.isdigit():
        return []
    return [n for n in cache if n != name and isinstance(cache[n], Clusters)
            and n.rpartition("_")[0] == family and n.rpartition("_")[2].isdigit()]


def _effective_k(n_clusters: int, n: int) -> int:
    return int(max(1, min(n_clusters, n)))
