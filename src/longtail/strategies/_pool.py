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

Both live in ``state["longtail.strategies"]``, a plain dict of numpy arrays (picklable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import numpy as np
import scipy.sparse as sp

from longtail.strategies._base import Context, VectorReader

CACHE_KEY = "longtail.strategies"
DEFAULT_GRAPH_ROWS = 40_000
DEFAULT_KNN = 30
_CHUNK = 65536


def _cache(ctx: Context) -> dict:
    if ctx.state is None:
        return {}
    cache = ctx.state.setdefault(CACHE_KEY, {})
    sig = (int(ctx.vectors.n_rows) if ctx.vectors is not None else -1,
           int(ctx.vectors.dim) if ctx.vectors is not None else -1)
    # A different vector store (or a different dimension) invalidates everything; a
    # store that only grew keeps the cache (rows are append-only).
    if cache.get("dim") != sig[1] or cache.get("n_rows", 0) > sig[0]:
        cache.clear()
        cache["dim"] = sig[1]
    cache["n_rows"] = sig[0]
    return cache


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
    _kernels: dict = field(default_factory=dict, repr=False)

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
    cache = _cache(ctx)
    uni = universe(ctx)
    g: Graph | None = cache.get("graph")
    if g is not None and g.nbr.shape[1] == knn:
        seen = g.rows if g.seen is None else g.seen
        new = np.setdiff1d(uni, seen, assume_unique=True)
        if len(new) == 0:
            return g
        if len(new) <= 0.25 * len(seen):
            seen = np.union1d(seen, new)
            if len(g.rows) >= max_rows:
                # Keep the sample's rate for the newcomers.
                rate = max_rows / max(len(uni), 1)
                take = ctx.rng.random(len(new)) < rate
                new = new[take]
                if len(new) == 0:
                    g.seen = seen
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
            g = Graph(rows=rows[order], nbr=nbr, d2=d2[order], sigma2=g.sigma2, seen=seen)
            cache["graph"] = g
            return g
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
    return g


@dataclass
class Clusters:
    """k-means over the pool: ``centroids`` (K, d) float32; ``rows`` (sorted int64) with
    their cluster ``labels`` (int64) and squared distance ``d2`` to their centroid."""

    centroids: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    d2: np.ndarray

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
    cache = _cache(ctx)
    uni = universe(ctx)
    cl: Clusters | None = cache.get(name)
    if cl is not None and len(cl.centroids) == _effective_k(n_clusters, len(uni)):
        new = np.setdiff1d(uni, cl.rows, assume_unique=True)
        if len(new) == 0:
            return cl
        if len(new) <= len(cl.rows):
            labels, d2 = _assign(ctx.vectors, new, cl.centroids)
            rows = np.concatenate([cl.rows, new])
            order = np.argsort(rows, kind="stable")
            cl = Clusters(cl.centroids, rows[order], np.concatenate([cl.labels, labels])[order],
                          np.concatenate([cl.d2, d2])[order])
            cache[name] = cl
            return cl
    kk = _effective_k(n_clusters, len(uni))
    # 64 rows per centroid are plenty to place centroids; assignment sees every row
    n_train = min(len(uni), 64 * kk)
    train_rows = uni if n_train == len(uni) else np.sort(
        ctx.rng.choice(uni, size=n_train, replace=False))
    centroids = kmeans(read_rows(ctx.vectors, train_rows), kk, seed_from(ctx.rng))
    labels, d2 = _assign(ctx.vectors, uni, centroids)
    cl = Clusters(centroids, uni, labels, d2)
    if ctx.state is not None:
        cache[name] = cl
    return cl


def _effective_k(n_clusters: int, n: int) -> int:
    return int(max(1, min(n_clusters, n)))
