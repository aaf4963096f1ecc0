"""Representative strategies: pick rows that stand for many others.

* ``coverage`` (kernel herding / MaxHerding, Bae et al. 2024): greedy maximisation of
  ``sum_i max_{s in labeled ∪ S} K(x_i, x_s)`` with a Gaussian kernel on a sparse kNN
  graph. The default cold start.
* ``typiclust`` (Hacohen et al. 2022): k-means with ``|labeled| + k`` clusters, then
  the most typical row (highest inverse mean kNN distance) of the largest clusters
  that hold no labeled row yet.
* ``probcover`` (Yehuda et al. 2022): greedy max coverage of δ-balls, δ chosen from
  the data as the largest radius whose balls stay ≥ 95% pure w.r.t. k-means
  pseudo-labels (the paper's rule).
* ``density``: informativeness × density (Settles & Craven 2008).

All graph work uses :func:`longtail.strategies._pool.pool_graph` (sparse, cached).
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

from longtail.strategies import scores as S
from longtail.strategies._base import Context, Selection, apply_costs, minmax, topk_desc
from longtail.strategies._pool import Graph, pool_clusters, pool_graph

# Chosen on Banking77/MiniLM at 100-400 labels (a broad optimum: knn 30-50, scale 0.5-0.6).
COVERAGE_KNN = 30
COVERAGE_SIGMA_SCALE = 0.6
TYPICALITY_KNN = 20


def _no_vectors(ctx: Context, name: str) -> Selection:
    """Without vectors there is nothing to be representative of: uniform draw, logged."""
    pos = ctx.rng.choice(ctx.n, size=min(ctx.k, ctx.n), replace=False)
    return Selection(
        rows=ctx.candidates[np.asarray(pos, dtype=np.int64)],
        log={"strategy": name, "fallback": "random (no vectors given)"},
    )


def _candidate_positions(ctx: Context, g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the graph, positions in ctx.candidates) of candidates in the graph."""
    gpos = g.positions(ctx.candidates)
    in_graph = np.flatnonzero(gpos >= 0)
    return gpos[in_graph], in_graph


def _fill(ctx: Context, chosen: list[int], name: str) -> np.ndarray:
    """Top up ``chosen`` (candidate positions) at random to min(k, n) (e.g. when the
    graph is a sample of a huge pool or everything is covered)."""
    want = min(ctx.k, ctx.n)
    if len(chosen) >= want:
        return np.asarray(chosen[:want], dtype=np.int64)
    taken = np.zeros(ctx.n, dtype=bool)
    taken[np.asarray(chosen, dtype=np.int64)] = True
    rest = np.flatnonzero(~taken)
    extra = ctx.rng.choice(rest, size=want - len(chosen), replace=False)
    return np.concatenate([np.asarray(chosen, dtype=np.int64), np.sort(extra)])


def coverage_pick(ctx: Context, g: Graph, K: sp.csc_matrix, cover: np.ndarray,
                  gpos: np.ndarray, cpos: np.ndarray, weights: np.ndarray | None
                  ) -> tuple[list[int], np.ndarray]:
    """Greedy coverage over the graph's candidates, as value per unit cost when costs
    are known (each candidate's column scaled by 1/cost); returns candidate positions
    and their gains."""
    if ctx.costs is not None:
        inv = np.ones(len(g.rows))
        inv[gpos] = 1.0 / ctx.costs[cpos]
        K = (K @ sp.diags(inv)).tocsc()
    picked, gains = greedy_coverage(K, cover, gpos, ctx.k, ctx.rng, weights)
    to_cand = np.full(len(g.rows), -1, dtype=np.int64)
    to_cand[gpos] = cpos
    return [int(to_cand[p]) for p in picked], gains


def greedy_coverage(
    K: sp.csc_matrix,
    cover: np.ndarray,
    eligible: np.ndarray,
    k: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> tuple[list[int], list[float]]:
    """Lazy-greedy maximisation of ``sum_i w_i max(cover_i, max_{s∈S} K[i, s])``.

    K: (u, u) sparse symmetric kernel (CSC); cover: (u,) current coverage (modified in
    place); eligible: graph positions that may be picked; returns (picked positions,
    their marginal gains). Submodular, so lazy evaluation is exact: O(k·deg·log u)
    typical time, O(u) memory beyond K.
    """
    indptr, indices, data = K.indptr, K.indices, K.data
    w = np.ones(K.shape[0]) if weights is None else weights

    def gain(c: int) -> float:
        lo, hi = indptr[c], indptr[c + 1]
        idx = indices[lo:hi]
        return float(np.sum(w[idx] * np.maximum(data[lo:hi] - cover[idx], 0.0)))

    # initial gains, vectorised over all columns
    col = np.repeat(np.arange(K.shape[0]), np.diff(indptr))
    contrib = w[indices] * np.maximum(data - cover[indices], 0.0)
    g0 = np.bincount(col, weights=contrib, minlength=K.shape[0])
    tie = rng.random(len(eligible))
    heap = [(-g0[c], t, int(c)) for c, t in zip(eligible, tie, strict=True)]
    heapq.heapify(heap)
    picked: list[int] = []
    gains: list[float] = []
    while heap and len(picked) < k:
        neg, t, c = heapq.heappop(heap)
        fresh = gain(c)
        if heap and fresh < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-fresh, t, c))
            continue
        picked.append(c)
        gains.append(fresh)
        lo, hi = indptr[c], indptr[c + 1]
        idx = indices[lo:hi]
        cover[idx] = np.maximum(cover[idx], data[lo:hi])
    return picked, gains


def select_coverage(ctx: Context) -> Selection:
    """Kernel-herding coverage (MaxHerding-style): representative *and* diverse.

    Greedily adds the candidate that most increases ``sum_i max_{s} K(x_i, x_s)`` over
    the universe (labeled rows count as already chosen), with ``K`` a Gaussian kernel on
    the kNN graph (bandwidth from the data). Costs divide the marginal gain.
    Time: graph once O(u²·d) (cached), then O(k·deg·log u); memory O(u·knn).
    """
    if ctx.vectors is None:
        return _no_vectors(ctx, "coverage")
    g = pool_graph(ctx, knn=int(ctx.params.get("knn", COVERAGE_KNN)))
    K = g.kernel(float(ctx.params.get("sigma_scale", COVERAGE_SIGMA_SCALE)))
    cover = np.zeros(len(g.rows))
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = g.positions(ctx.labeled_rows)
        lab = lab[lab >= 0]
        if len(lab):
            cover = np.asarray(K[:, lab].max(axis=1).todense()).ravel()
    gpos, cpos = _candidate_positions(ctx, g)
    weights = None
    chosen, gains = coverage_pick(ctx, g, K, cover, gpos, cpos, weights)
    pos = _fill(ctx, chosen, "coverage")
    sc = np.zeros(len(pos))
    sc[: len(gains)] = gains[: len(pos)]
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "coverage",
            "reason": "greedy kernel coverage of the pool (kNN graph, Gaussian kernel)",
            "graph_rows": len(g.rows),
            "knn": int(g.nbr.shape[1]),
            "sigma2": g.sigma2,
            "coverage_gain_first": float(gains[0]) if gains else 0.0,
            "coverage_gain_last": float(gains[-1]) if gains else 0.0,
        },
        scores=sc,
    )


def candidate_typicality(ctx: Context) -> np.ndarray:
    """Typicality of every candidate: ``1 / mean distance to its knn neighbours`` (n,).

    Candidates outside the graph sample (huge pools) get the median. O(n log u) given
    the cached graph.
    """
    g = pool_graph(ctx)
    typ = g.typicality(TYPICALITY_KNN)
    gpos = g.positions(ctx.candidates)
    out = np.full(ctx.n, float(np.median(typ)))
    out[gpos >= 0] = typ[gpos[gpos >= 0]]
    return out


def select_typiclust(ctx: Context) -> Selection:
    """TypiClust: most typical row of each of the largest uncovered k-means clusters.

    Clusters: k-means with ``min(|labeled| + k, max_clusters)`` centroids over the
    universe (cached per K). Clusters are visited by (labeled rows in it ascending,
    size descending); each visit takes its most typical unpicked candidate (typicality
    per unit cost when costs are given). Time O(n·K·d) for the clustering,
    O(n log n) for the picks; memory O(n).
    """
    if ctx.vectors is None:
        return _no_vectors(ctx, "typiclust")
    max_clusters = int(ctx.params.get("max_clusters", 5000))
    n_clusters = min(ctx.n_labeled + ctx.k, max_clusters)
    cl = pool_clusters(ctx, n_clusters, name="typiclust")
    lab_cluster = cl.labels
    size = np.bincount(lab_cluster, minlength=len(cl.centroids)).astype(np.int64)
    covered = np.zeros(len(cl.centroids), dtype=np.int64)
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = ctx.labeled_rows[np.isin(ctx.labeled_rows, cl.rows)]
        np.add.at(covered, cl.lookup(lab), 1)
    typ = candidate_typicality(ctx)
    typ = apply_costs(typ, ctx.costs)
    cand_cluster = cl.lookup(ctx.candidates)
    chosen = _round_robin(ctx, cand_cluster, typ, covered, size, len(cl.centroids))
    pos = np.asarray(chosen, dtype=np.int64)
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "typiclust",
            "reason": "most typical row of the largest clusters without labels",
            "n_clusters": int(len(cl.centroids)),
        },
        scores=typ[pos],
    )


def _round_robin(
    ctx: Context,
    cand_cluster: np.ndarray,
    value: np.ndarray,
    covered: np.ndarray,
    size: np.ndarray,
    n_clusters: int,
) -> list[int]:
    """Visit clusters by (covered asc, size desc); take each one's best remaining
    candidate by ``value``; repeat until k. O(n log n + k log K)."""
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


def purity_delta(g: Graph, pseudo: np.ndarray, alpha: float = 0.95) -> float:
    """ProbCover's δ: the largest kNN-distance quantile whose δ-balls are ≥ ``alpha`` pure.

    A ball around i is pure when every graph neighbour within δ shares i's k-means
    pseudo-label. Balls are truncated at the graph's knn neighbours (sparse
    approximation). O(u·knn·Q) for Q candidate radii.
    """
    d = np.sqrt(np.where(g.nbr >= 0, g.d2, np.inf))
    same = np.where(g.nbr >= 0, pseudo[np.maximum(g.nbr, 0)] == pseudo[:, None], True)
    finite = d[np.isfinite(d)]
    if finite.size == 0:
        return 0.0
    best = float(np.quantile(finite, 0.01))
    for q in np.linspace(0.02, 1.0, 50):
        delta = float(np.quantile(finite, q))
        pure = np.all(same | (d > delta), axis=1).mean()
        if pure >= alpha:
            best = delta
        else:
            break
    return best


def _n_classes(ctx: Context) -> int:
    """Number of classes known from ``classes`` or the labels seen (0 when < 2)."""
    n = len(ctx.classes) if ctx.classes is not None else 0
    if ctx.labeled_y is not None and len(ctx.labeled_y):
        n = max(n, len(np.unique(ctx.labeled_y)))
    return n if n > 1 else 0


def select_probcover(ctx: Context) -> Selection:
    """ProbCover: greedy maximum coverage of δ-balls on the kNN graph.

    δ = the largest radius keeping ≥ 95% of balls pure w.r.t. k-means pseudo-labels
    with K = number of classes when known (from ``classes`` or ``labeled_y``; else
    ``k``), as in the paper;
    ``params["delta"]`` overrides. Labeled rows' balls count as covered. Time: graph
    and clustering once (cached), then O(k·deg·log u); memory O(u·knn).
    """
    if ctx.vectors is None:
        return _no_vectors(ctx, "probcover")
    g = pool_graph(ctx)
    if "delta" in ctx.params:
        delta = float(ctx.params["delta"])
    else:
        n_pseudo = _n_classes(ctx) or max(2, min(ctx.k, 500))
        cl = pool_clusters(ctx, n_pseudo, name=f"pseudo_{n_pseudo}")
        pseudo = cl.lookup(g.rows)
        delta = purity_delta(g, pseudo)
    u, knn = g.nbr.shape
    ii = np.repeat(np.arange(u), knn)
    jj = g.nbr.ravel()
    ok = (jj >= 0) & (jj != ii) & (np.sqrt(g.d2.ravel()) <= delta)
    B = sp.csr_matrix((np.ones(int(ok.sum())), (ii[ok], jj[ok])), shape=(u, u))
    B = (B.maximum(B.T) + sp.identity(u, format="csr")).tocsc()
    cover = np.zeros(u)
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = g.positions(ctx.labeled_rows)
        lab = lab[lab >= 0]
        if len(lab):
            cover = np.asarray(B[:, lab].max(axis=1).todense()).ravel()
    gpos, cpos = _candidate_positions(ctx, g)
    if ctx.costs is not None:
        inv = np.ones(u)
        inv[gpos] = 1.0 / ctx.costs[cpos]
        B = (B @ sp.diags(inv)).tocsc()
    picked, gains = greedy_coverage(B, cover, gpos, ctx.k, ctx.rng)
    picked = [p for p, gn in zip(picked, gains, strict=True) if gn > 0]
    to_cand = np.full(u, -1, dtype=np.int64)
    to_cand[gpos] = cpos
    chosen = [int(to_cand[p]) for p in picked]
    pos = _fill(ctx, chosen, "probcover")
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "probcover",
            "reason": "greedy max coverage of delta-balls; the rest at random once all "
            "balls are covered" if len(chosen) < len(pos) else
            "greedy max coverage of delta-balls",
            "delta": delta,
            "covered_fraction": float((cover > 0).mean()),
        },
    )


def select_density(ctx: Context) -> Selection:
    """Information density: ``uncertainty × typicality^beta`` (beta = 1 by default).

    Uncertainty is ``params["score"]`` (default "margin"); without probs it is the cold
    start. O(n·C) plus the cached graph lookups.
    """
    from longtail.strategies.cold import cold_start

    if ctx.probs is None:
        sel = cold_start(ctx)
        sel.log = {"strategy": "density", "fallback": "cold_start (no probs yet)", **sel.log}
        return sel
    fn = {"margin": S.margin, "entropy": S.entropy,
          "least_confidence": S.least_confidence}[ctx.params.get("score", "margin")]
    info = fn(ctx.probs)
    if ctx.vectors is None:
        dens = np.ones(ctx.n)
    else:
        dens = minmax(candidate_typicality(ctx)) + 1e-3
    value = info * dens ** float(ctx.params.get("beta", 1.0))
    pos = topk_desc(apply_costs(value, ctx.costs), ctx.k, ctx.rng)
    return Selection(
        rows=ctx.candidates[pos],
        log={"strategy": "density", "reason": "uncertainty weighted by typicality"},
        scores=value[pos],
    )


def typicality(vectors: np.ndarray, knn: int = TYPICALITY_KNN) -> np.ndarray:
    """Typicality of each row of ``vectors`` (n, d): ``1 / mean L2 distance to its knn
    nearest other rows`` -> (n,); higher = denser region (TypiClust's measure).

    Exact FAISS search: O(n²·d) time, O(n·knn) memory (no n×n matrix). For pools too
    large for that, use a strategy with ``state`` (it samples and caches the graph).
    """
    from longtail.strategies._pool import _knn

    V = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if V.ndim != 2:
        raise ValueError(f"vectors must be (n, d), got {V.shape}")
    if len(V) < 2:
        return np.ones(len(V))
    nbr, d2 = _knn(V, V, min(knn, len(V) - 1), exclude_self=True)
    return Graph(rows=np.arange(len(V)), nbr=nbr, d2=d2, sigma2=1.0).typicality()
