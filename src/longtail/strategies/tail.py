"""Strategies for the long tail: ``novelty`` (far from everything labeled) and ``rare``
(SEALS-style mining around the labeled examples of classes under their share).

``rare`` (Coleman et al., "Similarity Search for Efficient Active Learning and Search
of Rare Concepts", AAAI 2022): the candidates are the k nearest unlabeled neighbours of
the labeled rows of the rare classes, not the whole pool; among them, each rare class
takes in turn the candidate the model gives it the highest probability. A class is
rare (under its share) when it has fewer than ``RARE_SHARE`` of the labels an equal
split would give it. ``rare`` is also an arm of ``auto``, allowed once a model exists,
some class is under its share *and* the pool looks long-tailed
(:func:`class_imbalance` at least ``TAIL_IMBALANCE``): on balanced pools its one forced
try cost labels (Banking77: labels to 95% 675 with the arm, 562 without), on long-tailed
ones it pays (Banking77-LT at 600 labels: rare recall 0.52 with, 0.30 without).
"""

from __future__ import annotations

import numpy as np

from longtail.strategies._base import Context, Selection, fill_random, topk_desc
from longtail.strategies.arms import register_arm

RARE_SHARE = 0.5  # a class with under half the labels of an equal split is rare
SEALS_K = 100  # nearest candidates of each seed
MAX_SEEDS = 20  # labeled rows per rare class used as seeds (its first ones)
# The pool counts as long-tailed from this imbalance of the model's predicted class
# mass (see class_imbalance). Chosen on digits / digits-LT, checked on Banking77,
# Banking77-LT, Fashion-MNIST and Fashion-MNIST-LT (bench/rare_guard.py,
# bench/results/rare_guard.json).
TAIL_IMBALANCE = 4.0
_IMBALANCE_SAMPLE = 100_000


def rare_classes(ctx: Context) -> list[tuple[str, int]]:
    """(class, labeled count) of the classes of ``ctx.classes`` under their share,
    fewest labels first; [] without classes or labels. O(L + C)."""
    if ctx.classes is None or ctx.labeled_y is None or not len(ctx.labeled_y):
        return []
    names, counts = np.unique(np.asarray(ctx.labeled_y).astype(str), return_counts=True)
    have = dict(zip(names.tolist(), counts.tolist(), strict=True))
    C = len(ctx.classes)
    fair = len(ctx.labeled_y) / max(C, 1)
    out = [(str(c), have.get(str(c), 0)) for c in ctx.classes
           if 0 < have.get(str(c), 0) < RARE_SHARE * fair]
    return sorted(out, key=lambda t: (t[1], t[0]))


def class_imbalance(probs: np.ndarray | None) -> float | None:
    """How long-tailed the pool looks to the model: the mean predicted class mass
    (mean probability over the candidates) of the fifth of the classes with the most,
    over that of the fifth with the least. About 1 on a balanced pool, tens on a pool
    whose classes fall 50-fold. The labeled set cannot say it (selection shapes it);
    the whole pool's predictions can, shrunk toward the labels the model saw, so it
    understates the imbalance. None with fewer than 2 classes. O(n·C) on at most
    100,000 evenly strided rows (no random draw: the selection's generator is left as
    it was)."""
    if probs is None or probs.ndim != 2 or probs.shape[1] < 2 or not len(probs):
        return None
    if len(probs) > _IMBALANCE_SAMPLE:
        probs = probs[:: -(-len(probs) // _IMBALANCE_SAMPLE)]
    mass = np.sort(probs.mean(axis=0, dtype=np.float64))
    m = max(1, int(np.ceil(len(mass) / 5)))
    return float(mass[-m:].mean() / max(mass[:m].mean(), 1e-12))


def long_tailed(ctx: Context) -> bool:
    """Whether the model's predictions over the pool say it is long-tailed
    (:func:`class_imbalance` ≥ ``TAIL_IMBALANCE``, or ``params["tail_imbalance"]``)."""
    ratio = class_imbalance(ctx.probs)
    limit = float(ctx.params.get("tail_imbalance", TAIL_IMBALANCE))
    return ratio is not None and ratio >= limit


def _sorted_candidates(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ctx.candidates, kind="stable")
    return ctx.candidates[order], order


def select_rare(ctx: Context) -> Selection:
    """SEALS: for each rare class, its seeds' ``SEALS_K`` nearest candidates (exact,
    streamed over the candidates' vectors: O(seeds · n · d)), ranked by the model's
    probability of that class; classes take turns, fewest labels first. Without a
    model or rare classes: margin over all candidates. O(n·C) besides the search."""
    from longtail.discovery.search import exact_search
    from longtail.strategies import scores as S

    rare = rare_classes(ctx) if ctx.probs is not None and ctx.vectors is not None else []
    if not rare:
        if ctx.probs is None:
            return fill_only(ctx, "rare", "no model yet")
        pos = topk_desc(S.margin(ctx.probs), ctx.k, ctx.rng)
        return Selection(rows=ctx.candidates[pos], log={
            "strategy": "rare", "reason": "no class under its share: margin"})
    col = {str(c): j for j, c in enumerate(ctx.classes)}
    lab_y = np.asarray(ctx.labeled_y).astype(str)
    cand_sorted, order = _sorted_candidates(ctx)
    per_class: list[tuple[str, np.ndarray]] = []
    for c, _ in rare:
        seeds = ctx.labeled_rows[lab_y == c][:MAX_SEEDS]
        R, _ = exact_search(ctx.vectors, ctx.vectors.read(seeds), SEALS_K, rows=cand_sorted)
        near = np.unique(R[R >= 0])
        pos = order[np.searchsorted(cand_sorted, near)]  # positions in ctx.candidates
        pos = pos[np.argsort(-ctx.probs[pos, col[c]], kind="stable")]
        per_class.append((c, pos))
    chosen: list[int] = []
    taken: set[int] = set()
    ptr = [0] * len(per_class)
    while len(chosen) < ctx.k and any(ptr[i] < len(p) for i, (_, p) in enumerate(per_class)):
        for i, (_, p) in enumerate(per_class):
            while ptr[i] < len(p) and int(p[ptr[i]]) in taken:
                ptr[i] += 1
            if ptr[i] < len(p) and len(chosen) < ctx.k:
                chosen.append(int(p[ptr[i]]))
                taken.add(int(p[ptr[i]]))
                ptr[i] += 1
    n_seals = len(chosen)
    if len(chosen) < ctx.k:  # the neighbourhoods ran out: margin for the rest
        m = S.margin(ctx.probs).astype(np.float64)
        m[np.asarray(chosen, np.int64)] = -np.inf
        extra = topk_desc(m, ctx.k - len(chosen), ctx.rng)
        chosen += [int(x) for x in extra if np.isfinite(m[x])]
    return Selection(rows=ctx.candidates[np.asarray(chosen, np.int64)], log={
        "strategy": "rare", "reason": f"SEALS around {len(rare)} class(es) under their share",
        "rare_classes": [{"class": c, "labels": n} for c, n in rare[:20]],
        "from_neighbourhoods": n_seals, "seals_k": SEALS_K})


def fill_only(ctx: Context, name: str, reason: str) -> Selection:
    """A random batch, saying why."""
    return Selection(rows=ctx.candidates[fill_random(ctx, [])], log={"strategy": name,
                                                     "reason": reason + ": random"})


def select_novelty(ctx: Context) -> Selection:
    """Far from the labeled set: each candidate's mean cosine distance to its 5 nearest
    labeled rows (exact, O(n · L · d) streamed), averaged in rank with the model's
    least confidence when a model exists. Without labels: random."""
    from longtail.discovery.signals import knn_distance

    if ctx.vectors is None or ctx.labeled_rows is None or not len(ctx.labeled_rows):
        return fill_only(ctx, "novelty", "nothing labeled yet")
    ref = ctx.vectors.read(ctx.labeled_rows)
    dist = np.empty(ctx.n, np.float32)
    for s in range(0, ctx.n, 65_536):
        piece = ctx.candidates[s:s + 65_536]
        dist[s:s + len(piece)] = knn_distance(ctx.vectors.read(piece), ref, 5)
    score = _rank01(dist)
    if ctx.probs is not None:
        score = 0.5 * score + 0.5 * _rank01(1.0 - ctx.probs.max(axis=1))
    pos = topk_desc(score, ctx.k, ctx.rng)
    return Selection(rows=ctx.candidates[pos], scores=score[pos], log={
        "strategy": "novelty", "reason": "farthest from the labeled set"
        + (" and least confident" if ctx.probs is not None else ""),
        "distance_median_selected": float(np.median(dist[pos])) if len(pos) else None,
        "distance_median_pool": float(np.median(dist))})


def _rank01(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share a rank)."""
    from scipy.stats import rankdata

    if len(x) <= 1:
        return np.zeros(len(x))
    return (rankdata(x) - 1) / (len(x) - 1)


register_arm("rare", select_rare, family="informative", rank=35,
             allowed=lambda s: s.has("probs") and s.has("vectors") and not s.large
             and bool(rare_classes(s.ctx)) and long_tailed(s.ctx),
             doc="SEALS mining around the labeled rows of classes under their share, "
                 "on pools the model's predictions show long-tailed")
