"""Representative strategies: pick rows that stand for many others.

* ``coverage`` (kernel herding / MaxHerding, Bae et al. 2024) lives in
  :mod:`longtail.strategies.coverage`, below the cold start that uses it.
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

import numpy as np
import scipy.sparse as sp

from longtail.strategies import scores as S
from longtail.strategies._base import (
    Context,
    Selection,
    apply_costs,
    fill_random,
    minmax,
    no_vectors,
    round_robin,
    topk_desc,
)
from longtail.strategies._pool import (
    Graph,
    candidate_positions,
    knn_search,
    pool_clusters,
    pool_graph,
)
from longtail.strategies.cold import fallback
from longtail.strategies.coverage import greedy_coverage, labeled_cover

TYPICALITY_KNN = 20


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
        return no_vectors(ctx, "typiclust")
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
    chosen = round_robin(ctx, cand_cluster, typ, covered, size, len(cl.centroids))
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


def select_probcover(ctx: Context) -> Selection:
    """ProbCover: greedy maximum coverage of δ-balls on the kNN graph.

    δ = the largest radius keeping ≥ 95% of balls pure w.r.t. k-means pseudo-labels
    with K = number of classes when known (from ``classes`` or ``labeled_y``; else
    ``k``), as in the paper;
    ``params["delta"]`` overrides. Labeled rows' balls count as covered. Time: graph
    and clustering once (cached), then O(k·deg·log u); memory O(u·knn).
    """
    if ctx.vectors is None:
        return no_vectors(ctx, "probcover")
    g = pool_graph(ctx)
    if "delta" in ctx.params:
        delta = float(ctx.params["delta"])
    else:
        # Fewer than two known classes give no partition to be pure about: use k then.
        n_known = ctx.n_classes
        n_pseudo = n_known if n_known > 1 else max(2, min(ctx.k, 500))
        cl = pool_clusters(ctx, n_pseudo, name=f"pseudo_{n_pseudo}")
        pseudo = cl.lookup(g.rows)
        delta = purity_delta(g, pseudo)
    u, knn = g.nbr.shape
    ii = np.repeat(np.arange(u), knn)
    jj = g.nbr.ravel()
    ok = (jj >= 0) & (jj != ii) & (np.sqrt(g.d2.ravel()) <= delta)
    B = sp.csr_matrix((np.ones(int(ok.sum())), (ii[ok], jj[ok])), shape=(u, u))
    B = (B.maximum(B.T) + sp.identity(u, format="csr")).tocsc()
    cover = labeled_cover(ctx, g, B)
    gpos, cpos = candidate_positions(ctx, g)
    if ctx.costs is not None:
        inv = np.ones(u)
        inv[gpos] = 1.0 / ctx.costs[cpos]
        B = (B @ sp.diags(inv)).tocsc()
    picked, gains = greedy_coverage(B, cover, gpos, ctx.k, ctx.rng)
    picked = [p for p, gn in zip(picked, gains, strict=True) if gn > 0]
    to_cand = np.full(u, -1, dtype=np.int64)
    to_cand[gpos] = cpos
    chosen = [int(to_cand[p]) for p in picked]
    pos = fill_random(ctx, chosen)
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
    if ctx.probs is None:
        return fallback(ctx, "density")
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
    V = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if V.ndim != 2:
        raise ValueError(f"vectors must be (n, d), got {V.shape}")
    if len(V) < 2:
        return np.ones(len(V))
    nbr, d2 = knn_search(V, V, min(knn, len(V) - 1), exclude_self=True)
    return Graph(rows=np.arange(len(V)), nbr=nbr, d2=d2, sigma2=1.0).typicality()
