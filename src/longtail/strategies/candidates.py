"""Cluster-level candidates: a bounded candidate set for pools too large to score whole.

At 10M rows the model's probabilities for every candidate are a pass over the whole
vector file each round. Above `NARROW_ABOVE` candidates, the score-ranked strategies
(`NARROWED`) instead go through the pool clustering that cluster-margin keeps in the
state (`pool_K`, k-means, every row assigned once, new rows joined): the centroids and a
seeded sample of `SAMPLE_PER_CLUSTER` members per cluster are scored first; a
cluster's score is the share of its sampled members among the top scores of the whole
sample (the share the candidate set may keep), its centroid's and members' best score
breaking ties; the rows of the best clusters, best first, make the candidate set (at least
`ROWS_PER_PICK` rows per row to select, `MIN_ROWS` at least), which the strategy then
scores exactly. Cost per round: O(K + s) probabilities for the cluster scores plus
O(limit) for the exact pass, instead of O(n); the clustering is the one-time index.

An approximation: a row of a cluster whose centroid and sampled members all look
certain is not offered. The round's log ("candidates") says how many rows were kept
and from how many clusters.

`auto` narrows the same way, by margin, and its handed set also holds every candidate
in the kNN-graph sample (`pool_graph`, built or joined here over the whole pool, a
uniform sample of at most `graph_rows` rows): so each of its arms has its 10M path —
cluster_margin over the best clusters (the narrowing's clustering, the same K),
coverage and margin_coverage over the graph sample exactly as
on the whole pool (they only ever pick graph rows; a batch larger than the graph's
candidates is filled at random from the handed set). `pool_rows` in its params keeps
the whole pool's size, which decides auto's "large pool" arms.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.strategies import scores as S
from longtail.strategies._base import Context, IndexLog, as_reader
from longtail.strategies._pool import pool_clusters, pool_graph, read_rows, sorted_unique
from longtail.strategies.coverage import COVERAGE_KNN
from longtail.strategies.diverse import pool_clustering_k

NARROW_ABOVE = 2_000_000  # candidates beyond which a round narrows them first
# ...or this environment variable's value (a smaller pool's profile of the 10M path)
NARROW_ENV = "LONGTAIL_NARROW_ABOVE"
ROWS_PER_PICK = 50  # candidate rows kept per row to select (recall: bench/candidates_recall.py)
MIN_ROWS = 200_000  # ...and at least this many
SAMPLE_PER_CLUSTER = 32  # members scored per cluster (a seeded uniform sample)
# The strategies that rank candidates by one uncertainty score, and that score.
# cluster_margin and auto are handed the clustering's K (their `n_clusters`), so they
# reuse the clustering the narrowing went through; auto also gets the graph sample.
NARROWED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "margin": S.margin, "entropy": S.entropy, "least_confidence": S.least_confidence,
    "cluster_margin": S.margin, "auto": S.margin}
SAME_CLUSTERING = ("cluster_margin", "auto")


@dataclass
class Narrowed:
    """The candidates a round hands its strategy, and what narrowing did (None when the
    candidates were few enough to score whole)."""

    rows: np.ndarray
    log: dict | None = None
    indexes: IndexLog = field(default_factory=IndexLog)
    params: dict | None = None  # the strategy's params, when narrowing set some


def rows_of_best_clusters(labels: np.ndarray, cluster_score: np.ndarray,
                          limit: int) -> np.ndarray:
    """Positions (sorted) of the rows whose cluster (`labels`) is among the best by
    `cluster_score`, clusters taken best first until they hold at least `limit` rows
    (every row when they all hold fewer). O(n + K log K)."""
    counts = np.bincount(labels, minlength=len(cluster_score))
    order = np.argsort(-cluster_score, kind="stable")
    held = np.cumsum(counts[order])
    take = order[: int(np.searchsorted(held, limit)) + 1]
    keep = np.zeros(len(cluster_score), bool)
    keep[take] = True
    return np.flatnonzero(keep[labels])


def cluster_scores(labels: np.ndarray, member_scores: np.ndarray,
                   centroid_scores: np.ndarray, share: float) -> np.ndarray:
    """Per cluster, how densely it holds high scores: the share of its sampled members
    (`labels` the cluster of each) among the top `share` of all sampled scores (a
    Laplace-smoothed estimate of the share of its rows an exact pass would rank there),
    ties broken by the highest of its centroid's and members' scores. O(K + s)."""
    member_scores = np.asarray(member_scores, np.float64)
    k = len(centroid_scores)
    cut = np.quantile(member_scores, 1.0 - share) if len(member_scores) else np.inf
    high = np.bincount(labels, weights=(member_scores >= cut).astype(np.float64), minlength=k)
    seen = np.bincount(labels, minlength=k).astype(np.float64)
    best = np.asarray(centroid_scores, np.float64).copy()
    np.maximum.at(best, labels, member_scores)
    # the tie-break lives below any difference in density (a density step >= 1/(s+2)²)
    span = float(np.ptp(best)) or 1.0
    return (high + 0.5) / (seen + 1.0) + 1e-6 * (best - best.min()) / span


def narrow_above() -> int:
    """The candidate count above which rounds narrow: `NARROW_ENV` when set, else
    `NARROW_ABOVE`."""
    raw = os.environ.get(NARROW_ENV)
    if raw is None or raw == "":
        return NARROW_ABOVE
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(f"{NARROW_ENV} must be a whole number of candidates, 0 or more, "
                         f"got {raw!r}")
    return value


def narrow(strategy: str, candidates: np.ndarray, k: int, *, rng: np.random.Generator,
           vectors: Any, probs_of: Callable[[np.ndarray], np.ndarray],
           state: dict | None = None, labeled_rows: np.ndarray | None = None,
           params: dict | None = None) -> Narrowed:
    """The candidates `strategy` should score for a batch of `k`: all of them up to
    `NARROW_ABOVE` or for a strategy not in `NARROWED`, else the rows of the clusters
    that score best (module doc). `probs_of(X)` gives the model's probabilities of
    vectors X. Builds or updates the pool clustering in `state` (the index)."""
    candidates = np.asarray(candidates, np.int64)
    vectors = as_reader(vectors)
    score = NARROWED.get(strategy)
    if score is None or len(candidates) <= narrow_above() or vectors is None:
        return Narrowed(candidates)
    limit = max(MIN_ROWS, ROWS_PER_PICK * k)
    ctx = Context(k=k, candidates=candidates, rng=rng, vectors=vectors,
                  labeled_rows=labeled_rows, params=dict(params or {}), state=state)
    n_cl = pool_clustering_k(ctx)
    cl = pool_clusters(ctx, n_cl, name=f"pool_{n_cl}")
    labels = cl.lookup(candidates)
    size = min(len(candidates), SAMPLE_PER_CLUSTER * len(cl.centroids))
    sample = np.sort(rng.choice(len(candidates), size=size, replace=False))
    member = score(probs_of(read_rows(vectors, candidates[sample])))
    per_cluster = cluster_scores(labels[sample], member, score(probs_of(cl.centroids)),
                                 share=min(1.0, limit / len(candidates)))
    pos = rows_of_best_clusters(labels, per_cluster, limit)
    kept = candidates[pos]
    log = {"narrowed_from": int(len(candidates)), "kept": int(len(kept)),
           "limit": int(limit), "clusters": int(len(cl.centroids)),
           "clusters_kept": int(len(np.unique(labels[pos]))), "sampled": int(size),
           "index": f"pool_{n_cl}"}
    out = None
    if strategy in SAME_CLUSTERING:
        # cluster_margin sizes its clustering by the candidates it is handed: the
        # narrowing's K keeps it on the same one (built once, the index), not a new one
        # each round.
        out = {**(params or {}), "n_clusters": n_cl}
    if strategy == "auto":
        in_graph = graph_candidates(ctx, candidates)
        kept = sorted_unique(kept, in_graph)
        log.update(kept=int(len(kept)), graph_rows=int(len(in_graph)))
        n_lab = 0 if labeled_rows is None else len(labeled_rows)
        out["pool_rows"] = int(len(candidates) + n_lab)
    return Narrowed(kept, log, ctx.indexes, out)


def graph_candidates(ctx: Context, candidates: np.ndarray) -> np.ndarray:
    """The candidates in the pool's kNN-graph sample (sorted), the graph built or joined
    over the whole pool first (auto's coverage arms pick among them). O(n) for the
    universe plus the graph's own update cost."""
    g = pool_graph(ctx, knn=int(ctx.params.get("knn", COVERAGE_KNN)))
    c = np.sort(candidates) if len(candidates) > 1 and np.any(
        np.diff(candidates) < 0) else candidates
    pos = np.minimum(np.searchsorted(c, g.rows), max(len(c) - 1, 0))
    return g.rows[c[pos] == g.rows] if len(c) else c
