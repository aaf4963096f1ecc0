"""Diverse strategies: batches that do not repeat themselves.

* ``coreset`` — k-center greedy (Sener & Savarese 2018) from the labeled rows.
* ``cluster_margin`` — Citovsky et al. 2021: the ``beta·k`` lowest-margin candidates,
  spread round-robin over pool clusters, smallest cluster first.
* ``badge`` — Ash et al. 2020: k-means++ seeding on gradient embeddings
  ``g_i = (p_i - e_ŷi) ⊗ x_i`` computed in factorised form, never the n×C×d array.
* ``margin_coverage`` — kernel coverage of the pool weighted by margin: covers the
  uncertain regions, one pick per region (representative, informative and diverse).

Without probs every informative one falls back to the cold start.
"""

from __future__ import annotations

import faiss
import numpy as np

from longtail.strategies import scores as S
from longtail.strategies._base import (
    Context,
    Selection,
    apply_costs,
    fill_random,
    no_vectors,
    round_robin,
    topk_desc,
)
from longtail.strategies._pool import (
    GROWTH_REBUILD,
    candidate_positions,
    pool_cache,
    pool_clusters,
    pool_graph,
    read_rows,
)
from longtail.strategies.cold import fallback
from longtail.strategies.coverage import (
    COVERAGE_KNN,
    COVERAGE_SIGMA_SCALE,
    coverage_pick,
    labeled_cover,
)

DEFAULT_MAX_CANDIDATES = 100_000


def _subsample(ctx: Context, limit: int) -> np.ndarray:
    """Candidate positions to work on: all, or a uniform sample of ``limit`` of them."""
    if ctx.n <= limit:
        return np.arange(ctx.n)
    return np.sort(ctx.rng.choice(ctx.n, size=limit, replace=False))


def select_coreset(ctx: Context) -> Selection:
    """k-center greedy: repeatedly take the candidate farthest from labeled ∪ picked.

    Works on at most ``params["max_candidates"]`` (default 100k) candidates, a uniform
    sample beyond that. Time O(L·n·d) for the first distances (FAISS) + O(k·n·d) for
    the picks; memory O(n·d) for the candidates' vectors.
    """
    if ctx.vectors is None:
        return no_vectors(ctx, "coreset")
    work = _subsample(ctx, int(ctx.params.get("max_candidates", DEFAULT_MAX_CANDIDATES)))
    V = read_rows(ctx.vectors, ctx.candidates[work])
    sq = np.einsum("ij,ij->i", V, V, dtype=np.float64)
    mind = np.full(len(work), np.inf)
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = ctx.labeled_rows[ctx.labeled_rows < ctx.vectors.n_rows]
        index = faiss.IndexFlatL2(ctx.vectors.dim)
        for start in range(0, len(lab), 65536):
            index.add(read_rows(ctx.vectors, lab[start : start + 65536]))
        for start in range(0, len(work), 8192):
            d2, _ = index.search(V[start : start + 8192], 1)
            mind[start : start + len(d2)] = d2[:, 0]
    want = min(ctx.k, ctx.n)
    picked: list[int] = []
    radius: list[float] = []
    if not np.isfinite(mind).any():
        first = int(ctx.rng.integers(len(work)))
        picked.append(first)
        radius.append(float("inf"))
        mind = np.maximum(sq + sq[first] - 2.0 * (V @ V[first]), 0.0)
    value = mind if ctx.costs is None else mind / ctx.costs[work]
    while len(picked) < min(want, len(work)):
        value = mind if ctx.costs is None else mind / ctx.costs[work]
        c = int(np.argmax(value))
        if mind[c] <= 0 and len(picked) > 0:
            break
        picked.append(c)
        radius.append(float(mind[c]))
        mind = np.minimum(mind, np.maximum(sq + sq[c] - 2.0 * (V @ V[c]), 0.0))
        mind[c] = 0.0
    chosen = [int(work[p]) for p in picked]
    pos = fill_random(ctx, chosen)
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "coreset",
            "reason": "k-center greedy from the labeled rows",
            "cover_radius_sq_last": radius[-1] if radius else None,
            "n_worked_on": len(work),
        },
    )


def n_pool_clusters(n: int) -> int:
    """Number of pool clusters for cluster-margin: ``clamp(2·sqrt(n), 2, 1000)``."""
    return int(max(2, min(1000, round(2 * np.sqrt(n)))))


KEEP_K_WITHIN = 0.1


def pool_clustering_k(ctx: Context) -> int:
    """K of cluster-margin's pool clustering: ``params["n_clusters"]``, else
    :func:`n_pool_clusters` of the universe size — or the K of a pool clustering
    already in ``state`` while that K is at most 10% above it (rows held by an open
    round shrink the candidates a little) and at least ``1/sqrt(GROWTH_REBUILD)`` of
    it: a growing pool keeps its clustering, new rows joined to its centroids, until
    it is ``GROWTH_REBUILD`` times the pool the K was chosen for (K follows
    ``2·sqrt(n)``). O(entries in state)."""
    if "n_clusters" in ctx.params:
        return int(ctx.params["n_clusters"])
    want = n_pool_clusters(ctx.n + ctx.n_labeled)
    cache = pool_cache(ctx)  # checked first: indexes about to be rebuilt do not count
    have = [int(k[len("pool_"):]) for k in cache
            if k.startswith("pool_") and k[len("pool_"):].isdigit()]
    close = [k for k in have
             if want / np.sqrt(GROWTH_REBUILD) <= k <= (1 + KEEP_K_WITHIN) * want]
    return min(close, key=lambda k: (abs(k - want), k)) if close else want


def select_cluster_margin(ctx: Context) -> Selection:
    """Cluster-margin: the ``beta·k`` (default beta 10) lowest-margin candidates grouped
    by pool cluster; clusters visited smallest first, round-robin, each giving its
    lowest-margin remaining row (per unit cost with costs).

    Pool clustering is cached in ``state`` (``2·sqrt(n)`` k-means clusters, at most
    1000; new rows join its centroids, see :func:`pool_clustering_k`), so a round
    costs O(n·C) for the margins + O(βk log βk); the one-time clustering is O(n·K·d)
    streamed, O(n) memory, and new rows O(new·K·d).
    """
    if ctx.probs is None:
        return fallback(ctx, "cluster_margin")
    value = apply_costs(S.margin(ctx.probs), ctx.costs)
    beta = float(ctx.params.get("beta", 10.0))
    m = min(ctx.n, max(ctx.k, int(np.ceil(beta * ctx.k))))
    top = topk_desc(value, m, ctx.rng)
    if ctx.vectors is None:
        pos = top[: ctx.k]
        return Selection(ctx.candidates[pos], {"strategy": "cluster_margin",
                                               "fallback": "margin (no vectors)"}, value[pos])
    n_cl = pool_clustering_k(ctx)
    cl = pool_clusters(ctx, n_cl, name=f"pool_{n_cl}")
    cand_cluster = cl.lookup(ctx.candidates[top])
    size = np.bincount(cand_cluster, minlength=len(cl.centroids))
    sub = Context(k=ctx.k, candidates=ctx.candidates[top], rng=ctx.rng)
    # smallest cluster first: order by size ascending (negated "size desc" key)
    chosen = round_robin(sub, cand_cluster, value[top], np.zeros_like(size), -size,
                          len(cl.centroids))
    pos = top[np.asarray(chosen, dtype=np.int64)]
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "cluster_margin",
            "reason": f"lowest-margin {m} candidates spread round-robin over clusters",
            "n_clusters": int(len(cl.centroids)),
            "clusters_hit": int(len(np.unique(cl.lookup(ctx.candidates[pos])))),
        },
        scores=value[pos],
    )


def select_badge(ctx: Context) -> Selection:
    """BADGE: k-means++ seeding on gradient embeddings, in factorised form.

    ``g_i = a_i ⊗ x_i`` with ``a_i = p_i - e_ŷi``; squared distances factor as
    ``|a_i|²|x_i|² + |a_j|²|x_j|² - 2 (a_i·a_j)(x_i·x_j)``, so each seeding step is
    O(n·(C+d)) and the whole O(k·n·(C+d)) time with O(n·(C+d)) memory — never the
    n×C×d embedding. Works on at most ``params["max_candidates"]`` (100k) candidates.
    """
    if ctx.probs is None:
        return fallback(ctx, "badge")
    if ctx.vectors is None:
        return no_vectors(ctx, "badge")
    work = _subsample(ctx, int(ctx.params.get("max_candidates", DEFAULT_MAX_CANDIDATES)))
    P = ctx.probs[work]
    A = P.copy()
    A[np.arange(len(work)), P.argmax(axis=1)] -= 1.0
    V = read_rows(ctx.vectors, ctx.candidates[work]).astype(np.float64)
    na = np.einsum("ij,ij->i", A, A)
    nx = np.einsum("ij,ij->i", V, V)
    norm2 = na * nx
    want = min(ctx.k, len(work))
    first = int(np.argmax(norm2))
    picked = [first]
    mind = np.maximum(norm2 + norm2[first] - 2.0 * (A @ A[first]) * (V @ V[first]), 0.0)
    mind[first] = 0.0
    while len(picked) < want:
        w = mind if ctx.costs is None else mind / ctx.costs[work]
        total = float(w.sum())
        if total <= 0:
            break
        c = int(ctx.rng.choice(len(work), p=w / total))
        picked.append(c)
        d = np.maximum(norm2 + norm2[c] - 2.0 * (A @ A[c]) * (V @ V[c]), 0.0)
        mind = np.minimum(mind, d)
        mind[c] = 0.0
    chosen = [int(work[p]) for p in picked]
    pos = fill_random(ctx, chosen)
    return Selection(
        rows=ctx.candidates[pos],
        log={"strategy": "badge", "reason": "k-means++ on gradient embeddings",
             "n_worked_on": len(work)},
    )


def select_margin_coverage(ctx: Context) -> Selection:
    """Margin-weighted kernel coverage: greedily cover the *uncertain* part of the pool.

    Maximises ``sum_i w_i max_{s} K(x_i, x_s)`` with ``w_i`` the margin score of
    candidate i raised to ``params["power"]`` (default 1; labeled rows weigh 0 and
    count as already chosen). One pick per uncertain region, preferring regions dense
    in uncertain rows. Time: cached graph + O(k·deg·log u); memory O(u·knn). On huge
    pools the graph is a sample (see ``pool_graph``).
    """
    if ctx.probs is None:
        return fallback(ctx, "margin_coverage")
    if ctx.vectors is None:
        return no_vectors(ctx, "margin_coverage")
    g = pool_graph(ctx, knn=int(ctx.params.get("knn", COVERAGE_KNN)))
    K = g.kernel(float(ctx.params.get("sigma_scale", COVERAGE_SIGMA_SCALE)))
    gpos, cpos = candidate_positions(ctx, g)
    w = np.zeros(len(g.rows))
    w[gpos] = S.margin(ctx.probs[cpos]) ** float(ctx.params.get("power", 1.0))
    cover = labeled_cover(ctx, g, K)
    chosen, gains = coverage_pick(ctx, g, K, cover, gpos, cpos, w)
    pos = fill_random(ctx, chosen)
    return Selection(
        rows=ctx.candidates[pos],
        log={"strategy": "margin_coverage",
             "reason": "greedy coverage of the pool weighted by margin uncertainty",
             "graph_rows": len(g.rows)},
    )
