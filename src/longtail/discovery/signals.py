"""Model and geometry signals per row: confidence, energy, kNN distance to a labeled set.

Each is a function of arrays: higher ``novelty`` means farther from what was labeled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHUNK = 65_536


def max_prob(probs: np.ndarray) -> np.ndarray:
    """The top class probability of each row, (n, C) -> (n,). O(n·C)."""
    return np.asarray(probs).max(axis=1).astype(np.float32)


def energy(logits: np.ndarray) -> np.ndarray:
    """The free energy ``-logsumexp(logits)`` of each row (Liu et al., 2020), (n, C) ->
    (n,): higher means less like the training data. O(n·C)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return (-(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))).astype(np.float32)


def logits(model: Any, X: np.ndarray) -> np.ndarray | None:
    """A linear model's logits ``X @ coef_.T + intercept_`` (n, C), else None (a model
    that only gives probabilities has no energy beyond its probabilities)."""
    coef = getattr(model, "coef_", None)
    b = getattr(model, "intercept_", None)
    if coef is None or b is None:
        return None
    coef = np.asarray(coef, dtype=np.float32)
    if coef.ndim != 2 or coef.shape[1] != X.shape[1]:
        return None
    return np.asarray(X, dtype=np.float32) @ coef.T + np.asarray(b, dtype=np.float32)


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int = 5,
                 exclude_self: bool = False, skip_zero: bool = False) -> np.ndarray:
    """Mean cosine distance (1 - cosine) of each query to its ``k`` nearest reference rows
    (exact, FAISS inner product on unit vectors), (m, d), (n, d) -> (m,). ``exclude_self``:
    the queries are the reference rows in order; each row's own match is left out.
    ``skip_zero``: a match at distance ~0 (the query itself, when the reference samples
    the rows queried) is left out. O(m·n·d) time in chunks of queries, O(n·d + chunk·k)
    memory; no m×n matrix."""
    import faiss

    ref = _unit(reference)
    m = len(queries)
    if len(ref) == 0:
        return np.full(m, 1.0, dtype=np.float32)
    kk = min(k + int(exclude_self or skip_zero), len(ref))
    index = faiss.IndexFlatIP(ref.shape[1])
    index.add(ref)
    out = np.empty(m, dtype=np.float32)
    for i in range(0, m, CHUNK):
        q = _unit(queries[i:i + CHUNK])
        sims, idx = index.search(q, kk)
        if exclude_self and kk > 1:
            own = idx == np.arange(i, i + len(q))[:, None]
            own[~own.any(axis=1), -1] = True  # not found among the k+1: drop the farthest
            sims = sims[~own].reshape(len(q), kk - 1)
        elif skip_zero and kk > 1:
            same = sims >= 1.0 - 1e-6
            drop = np.where(same[:, 0], 0, kk - 1)  # the own match, else the farthest
            keep = np.ones_like(same)
            keep[np.arange(len(q)), drop] = False
            sims = sims[keep].reshape(len(q), kk - 1)
        out[i:i + len(q)] = 1.0 - np.nanmean(sims[:, :k], axis=1)
    return out


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / np.maximum(norm, 1e-12))


def relative_distance(d_labeled: np.ndarray, d_pool: np.ndarray) -> np.ndarray:
    """Distance to the labeled set over distance to a uniform sample of the pool (same
    k): about 1 where labels cover the pool as densely as rows lie, large for a region
    of the pool nobody labeled (a new class arriving as a cluster). O(n)."""
    return (np.asarray(d_labeled, np.float64)
            / np.maximum(np.asarray(d_pool, np.float64), 1e-6)).astype(np.float32)


def novelty_score(distance: np.ndarray, reference_distance: np.ndarray) -> np.ndarray:
    """Novelty in [0, 1]: the share of the labeled set's own (leave-one-out) kNN
    distances below each row's distance to the labeled set (its percentile among what
    "labeled-like" looks like). 0.99 is farther than 99% of labeled rows are from their
    neighbours. O((m + n) log n)."""
    ref = np.sort(np.asarray(reference_distance, dtype=np.float64))
    if len(ref) == 0:
        return np.ones(len(distance), dtype=np.float32)
    return (np.searchsorted(ref, distance, side="right") / len(ref)).astype(np.float32)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` rows (ties count half);
    NaN when one side is empty. O(n log n)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
