"""Pool structures shared by the representative and diverse strategies, cached in ``state``.

Two structures, each built once and updated incrementally when new rows arrive:

* :func:`pool_graph` — a sparse symmetric kNN graph (``knn`` neighbours per row,
  Gaussian kernel weights) over the *universe* ``candidates ∪ labeled_rows``, or a
  uniform sample of it of at most ``max_rows`` rows (labeled rows always kept) when
  the pool is larger. Exact FAISS ``IndexFlatL2`` search: O(u²·d) once for u rows,
  O(u·knn) memory; never an n×n dense matrix.
* :func:`pool_clusters` — k-means centroids (``faiss.Kmeans`` on a sample of at most
  64 rows per centroid) and the cluster of every row seen, assigned by streaming the
  vectors in chunks: O(n·K·d) time once, O(n) memory; new rows cost O(new·K·d).

Both live in ``state["longtail.strategies"]`` beside ``built_on``, the record of the
pool they were built on (vector-set name, dim, row count, the caller's fingerprint and
a digest of a fixed sample of rows). Each call checks it once (:func:`check_pool`):
unchanged -> reuse, rows only appended -> update incrementally, anything else ->
rebuild; the call's :class:`~longtail.strategies._base.IndexLog` says which and why.
:mod:`longtail.strategies.state` turns the whole state into arrays (no pickle).
"""

from __future__ import annotations

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
                 reason: str | None = None) -> None:
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
    ctx.indexes.note(name, action, seconds, reason or "", load_seconds=loaded)


def seed_from(rng: np.random.Generator) -> int:
    """A 31-bit seed for FAISS drawn from ``rng`` (keeps results deterministic per seed)."""
    return int(rng.integers(0, 2**31 - 1))


def universe(ctx: Context) -> np.ndarray:
    """Sorted unique rows of ``candidates ∪ labeled_rows``: O((n+L) log(n+L))."""
    if ctx.labeled_rows is None or len(ctx.labeled_rows) == 0:
        return np.sort(ctx.candidates)
    lab = ctx.labeled_rows
    if ctx.vectors is not None:
        lab = lab[(lab >= 0) & (lab < ctx.vectors.n_rows)]
    return np.union1d(ctx.candidates, lab).astype(np.int64)


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
    Later calls with new rows: those rows' neighbours are searched against the cached
    rows and appended (O(new·u·d)); a universe that grew by more than 25% is rebuilt.
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
    if g is not None and g.nbr.shape[1] != knn:
        why = f"knn changed ({g.nbr.shape[1]} -> {knn})"
    elif g is not None:
        seen = g.rows if g.seen is None else g.seen
        new = np.setdiff1d(uni, seen, assume_unique=True)
        if len(new) == 0:
            _note_cached(ctx, "graph", g, t0)
            return g
        if len(new) <= 0.25 * len(seen):
            n_new = len(new)
            seen = np.union1d(seen, new)
            if len(g.rows) >= max_rows:
                # Keep the sample's rate for the newcomers.
                rate = max_rows / max(len(uni), 1)
                take = ctx.rng.random(len(new)) < rate
                new = new[take]
                if len(new) == 0:
                    g.seen = seen
                    _note_cached(ctx, "graph", g, t0, "updated",
                                 f"{n_new} new rows seen, none drawn into the graph sample")
                    return g
            old_vecs = read_rows(ctx.vectors, g.rows)
            new_vecs = read_rows(ctx.vectors, new)
            all_vecs = np.concatenate([old_vecs, new_vecs])
            nbr_new, d2_new = knn_search(all_vecs, new_vecs, knn, exclude_self=False)
            # the query rows are at positions len(g.rows)+i in all_vecs; drop self hits
            own = len(g.rows) + np.arange(len(new))[:, None]
            d2_new = np.where(nbr_new == own, np.inf, d2_new)
            nbr_new = np.where(nbr_new == own, -1, nbr_new)
            rows = np.concatenate([g.rows, new])
            nbr = np.concatenate([g.nbr, nbr_new])
            d2 = np.concatenate([g.d2, d2_new])
            order = np.argsort(rows, kind="stable")
            inv = np.empty_like(order)
            inv[order] = np.arange(len(order))
            nbr = np.where(nbr >= 0, inv[np.maximum(nbr, 0)], -1)[order]
            old = g
            g = Graph(rows=rows[order], nbr=nbr, d2=d2[order], sigma2=g.sigma2, seen=seen)
            cache["graph"] = g
            _note_cached(ctx, "graph", old, t0, "updated",
                         f"{n_new} new rows joined ({len(new)} into the graph)")
            return g
        why = f"universe grew by {len(new)} rows (> 25% of {len(seen)})"
    rows = uni
    if len(rows) > max_rows:
        lab = (np.intersect1d(ctx.labeled_rows, uni) if ctx.labeled_rows is not None
               else np.zeros(0, dtype=np.int64))
        rest = np.setdiff1d(uni, lab, assume_unique=True)
        take = ctx.rng.choice(len(rest), size=max(max_rows - len(lab), 0), replace=False)
        rows = np.sort(np.concatenate([lab, rest[take]]))
    vecs = read_rows(ctx.vectors, rows)
    nbr, d2 = knn_search(vecs, vecs, knn, exclude_self=True)
    g = Graph(rows=rows, nbr=nbr, d2=d2, sigma2=_sigma2(nbr, d2), seen=uni)
    if ctx.state is not None:
        cache["graph"] = g
    ctx.indexes.note("graph", "built", time.perf_counter() - t0, why)
    return g


@dataclass
class Clusters:
    """k-means over the pool: ``centroids`` (K, d) float32; ``rows`` (sorted int64) with
    their cluster ``labels`` (int64) and squared distance ``d2`` to their centroid."""

    centroids: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    d2: np.ndarray
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
    the existing centroids (O(new·K·d)); the centroids are retrained only when the
    requested K changes or the pool more than doubled.
    """
    assert ctx.vectors is not None
    t0 = time.perf_counter()
    cache = pool_cache(ctx)
    uni = universe(ctx)
    cl: Clusters | None = cache.get(name)
    kk = _effective_k(n_clusters, len(uni))
    why = _why_built(ctx, name)
    if cl is not None and len(cl.centroids) != kk:
        why = f"K changed ({len(cl.centroids)} -> {kk})"
    elif cl is not None:
        new = np.setdiff1d(uni, cl.rows, assume_unique=True)
        if len(new) == 0:
            _note_cached(ctx, name, cl, t0)
            return cl
        if len(new) <= len(cl.rows):
            labels, d2 = _assign(ctx.vectors, new, cl.centroids)
            rows = np.concatenate([cl.rows, new])
            order = np.argsort(rows, kind="stable")
            old = cl
            cl = Clusters(cl.centroids, rows[order], np.concatenate([cl.labels, labels])[order],
                          np.concatenate([cl.d2, d2])[order])
            cache[name] = cl
            _note_cached(ctx, name, old, t0, "updated",
                         f"{len(new)} new rows assigned to the {kk} centroids")
            return cl
        why = f"pool more than doubled ({len(cl.rows)} -> {len(cl.rows) + len(new)} rows)"
    # 64 rows per centroid are plenty to place centroids; assignment sees every row
    n_train = min(len(uni), 64 * kk)
    train_rows = uni if n_train == len(uni) else np.sort(
        ctx.rng.choice(uni, size=n_train, replace=False))
    centroids = kmeans(read_rows(ctx.vectors, train_rows), kk, seed_from(ctx.rng))
    labels, d2 = _assign(ctx.vectors, uni, centroids)
    cl = Clusters(centroids, uni, labels, d2)
    if ctx.state is not None:
        cache[name] = cl
    ctx.indexes.note(name, "built", time.perf_counter() - t0, why)
    return cl


def _effective_k(n_clusters: int, n: int) -> int:
    return int(max(1, min(n_clusters, n)))
