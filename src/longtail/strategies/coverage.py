"""Kernel-herding coverage (MaxHerding, Bae et al. 2024): the default cold start.

Greedy maximisation of ``sum_i w_i max_{s in labeled ∪ S} K(x_i, x_s)`` with a Gaussian
kernel on the sparse kNN graph of :func:`longtail.strategies._pool.pool_graph`:
representative (it favours dense regions) and diverse (a covered region stops paying).
``margin_coverage`` (:mod:`longtail.strategies.diverse`) reuses the same greedy with
margin weights. This module sits below every strategy that falls back to the cold start
(:mod:`longtail.strategies.cold`), so none of them imports another family's module.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

from longtail.strategies._base import Context, Selection, fill_random, no_vectors
from longtail.strategies._pool import Graph, candidate_positions, pool_graph

# Chosen on Banking77/MiniLM at 100-400 labels (a broad optimum: knn 30-50, scale 0.5-0.6).
COVERAGE_KNN = 30
COVERAGE_SIGMA_SCALE = 0.6


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


def labeled_cover(ctx: Context, g: Graph, K: sp.csc_matrix) -> np.ndarray:
    """(u,) coverage the labeled rows already give: ``max_{l in labeled} K[i, l]``
    (zeros without labeled rows in the graph). O(L·deg)."""
    cover = np.zeros(len(g.rows))
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = g.positions(ctx.labeled_rows)
        lab = lab[lab >= 0]
        if len(lab):
            cover = np.asarray(K[:, lab].max(axis=1).todense()).ravel()
    return cover


def select_coverage(ctx: Context) -> Selection:
    """Kernel-herding coverage (MaxHerding-style): representative *and* diverse.

    Greedily adds the candidate that most increases ``sum_i max_{s} K(x_i, x_s)`` over
    the universe (labeled rows count as already chosen), with ``K`` a Gaussian kernel on
    the kNN graph (bandwidth from the data). Costs divide the marginal gain.
    Time: graph once O(u²·d) (cached), then O(k·deg·log u); memory O(u·knn).
    """
    if ctx.vectors is None:
        return no_vectors(ctx, "coverage")
    g = pool_graph(ctx, knn=int(ctx.params.get("knn", COVERAGE_KNN)))
    K = g.kernel(float(ctx.params.get("sigma_scale", COVERAGE_SIGMA_SCALE)))
    cover = labeled_cover(ctx, g, K)
    gpos, cpos = candidate_positions(ctx, g)
    chosen, gains = coverage_pick(ctx, g, K, cover, gpos, cpos, None)
    pos = fill_random(ctx, chosen)
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
