"""The strategy registry and :func:`select`, the one entry point callers use."""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.strategies import batchbald as bb
from longtail.strategies import combine as comb
from longtail.strategies import coverage as cov
from longtail.strategies import diverse as div
from longtail.strategies import informative as inf
from longtail.strategies import representative as rep
from longtail.strategies import tail
from longtail.strategies._base import (
    NEEDS,
    Context,
    Selection,
    Strategy,
    as_reader,
    check_candidates,
    check_k,
    check_probs,
    jsonable,
)
from longtail.strategies.auto import select_auto

STRATEGIES: dict[str, Strategy] = {}
"""Registry: name -> :class:`Strategy`. Informative strategies list "vectors" in their
needs because, with no model yet (probs None), they fall back to the cold start,
which uses vectors."""


def register(
    name: str,
    fn: Any,
    needs: set[str] | frozenset[str],
    doc: str,
    refine: Any = None,
) -> Strategy:
    """Add a strategy to :data:`STRATEGIES`. ``needs`` is a subset of
    {"probs", "vectors", "committee", "costs"}: what the caller must compute;
    ``refine(params) -> frozenset`` narrows it per call when it depends on params."""
    needs = frozenset(needs)
    if not needs <= NEEDS:
        raise ValueError(f"unknown needs {sorted(needs - NEEDS)}")
    entry = Strategy(name=name, fn=fn, needs=needs, doc=doc, refine=refine)
    STRATEGIES[name] = entry
    return entry


register("random", inf.select_random, set(), "Uniform random draw (the control arm).")
register("margin", inf.select_margin, {"probs", "vectors"},
         "Smallest gap between the two most probable classes.")
register("entropy", inf.select_entropy, {"probs", "vectors"}, "Highest predictive entropy.")
register("least_confidence", inf.select_least_confidence, {"probs", "vectors"},
         "Lowest top-class probability.")
register("vote_entropy", inf.select_vote_entropy, {"probs", "vectors", "committee"},
         "Entropy of a bootstrap committee's hard votes.")
register("mean_kl", inf.select_mean_kl, {"probs", "vectors", "committee"},
         "Mean KL divergence of committee members from their consensus.")
register("bald", inf.select_bald, {"probs", "vectors", "committee"},
         "BALD mutual information over several probability samples.")
register("epig", inf.select_epig, {"probs", "vectors", "committee"},
         "Expected predictive information gain about the pool's predictions (EPIG).")
register("batchbald", bb.select_batchbald, {"probs", "vectors", "committee"},
         "BatchBALD: greedy joint mutual information of the batch (top BALD shortlist).")
register("coverage", cov.select_coverage, {"vectors"},
         "Kernel-herding coverage of the pool on a kNN graph (the cold start).")
register("typiclust", rep.select_typiclust, {"vectors"},
         "Most typical row of the largest k-means clusters without labels (TypiClust).")
register("probcover", rep.select_probcover, {"vectors"},
         "Greedy coverage of delta-balls, delta chosen by cluster purity (ProbCover).")
register("density", rep.select_density, {"probs", "vectors"},
         "Uncertainty weighted by typicality (information density).")
register("coreset", div.select_coreset, {"vectors"},
         "k-center greedy core-set from the labeled rows.")
register("cluster_margin", div.select_cluster_margin, {"probs", "vectors"},
         "Lowest-margin candidates spread round-robin over pool clusters (Citovsky 2021).")
register("badge", div.select_badge, {"probs", "vectors"},
         "k-means++ on factorised gradient embeddings (BADGE).")
register("margin_coverage", div.select_margin_coverage, {"probs", "vectors"},
         "Kernel coverage of the pool weighted by margin: uncertain, representative, diverse.")
register("combine", comb.select_combined, {"probs", "vectors", "committee"},
         "Declarative config: weighted terms, filters and balance targets (params).",
         refine=comb.config_needs)
register("rare", tail.select_rare, {"probs", "vectors"},
         "SEALS: the labeled rare classes' nearest candidates, by the class's probability.")
register("novelty", tail.select_novelty, {"probs", "vectors"},
         "Farthest from the labeled set (kNN distance), with least confidence.")
register("class_balance", comb.select_class_balance, {"probs", "vectors"},
         "Fill the batch class by class, fewest-labeled predicted classes first.")


def select(
    strategy: str = "auto",
    k: int = 0,
    candidates: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    vectors: Any = None,
    probs: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    labeled_rows: np.ndarray | None = None,
    labeled_y: np.ndarray | None = None,
    committee_probs: np.ndarray | None = None,
    costs: np.ndarray | None = None,
    params: dict | None = None,
    state: dict | None = None,
    history: list[dict] | None = None,
) -> Selection:
    """Choose up to ``k`` of ``candidates`` to label next with the named strategy.

    Args:
        strategy: a name in :data:`STRATEGIES` (``"auto"`` by default).
        k: batch size, a positive integer; ``min(k, len(candidates))`` rows are returned.
        candidates: ``(n,)`` int64 row numbers eligible for selection (the caller has
            removed labeled, queued and evaluation rows).
        rng: the seeded generator; the same seed and inputs give the same selection.
        vectors: a vector reader (``n_rows``, ``dim``, ``read``, ``iter_chunks``) or a
            2-D array indexed by row number.
        probs: ``(n, C)`` predicted class probabilities aligned with ``candidates``;
            None when there is no model yet (strategies then fall back to cold start).
        classes: ``(C,)`` labels of the columns of ``probs``.
        labeled_rows, labeled_y: ``(L,)`` rows already labeled and their labels.
        committee_probs: ``(m, n, C)`` probabilities of a bootstrap committee.
        costs: ``(n,)`` positive predicted labeling cost per candidate; when given,
            strategies rank by value per unit cost.
        params: strategy parameters (the combinator's config for ``"combine"``).
        state: a dict the caller keeps between rounds; strategies cache pool
            clustering and kNN graphs in it, checked against the pool each call
            (:func:`longtail.strategies.state.set_pool` names the pool; the whole dict
            saves as arrays with :func:`longtail.strategies.state.to_arrays`).
        history: earlier rounds for ``"auto"`` (see :mod:`longtail.strategies.auto`).

    Returns:
        :class:`Selection` with unique int64 ``rows`` ⊆ ``candidates``. Its log holds,
        when pool indexes were used, ``indexes`` (name -> action built / updated /
        loaded / reused, seconds spent, reason), ``indexes_built`` (built this call)
        and ``pool_check`` (the verdict on the saved indexes and why).

    Raises:
        EmptyPoolError: ``candidates`` is empty.
        InputError: ``k <= 0``, unknown strategy, or inputs of the wrong shape.

    Cost: that of the strategy (each documents its own); validation is O(n·C).
    """
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InputError(
            f"unknown strategy {strategy!r}; valid names: {', '.join(sorted(STRATEGIES))}"
        )
    k = check_k(k)
    if candidates is None:
        raise InputError("candidates is required: a 1-D array of row numbers")
    cand = check_candidates(candidates)
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n = len(cand)
    reader = as_reader(vectors)
    if reader is not None and int(cand.max()) >= int(reader.n_rows):
        raise InputError(
            f"candidate row {int(cand.max())} is out of range for vectors with "
            f"{reader.n_rows} rows"
        )
    p = None if probs is None else check_probs(probs, n)
    cls = None
    if classes is not None:
        cls = np.asarray(classes)
        if p is not None and len(cls) != p.shape[1]:
            raise InputError(
                f"classes has {len(cls)} labels but probs has {p.shape[1]} columns"
            )
    elif p is not None:
        cls = np.arange(p.shape[1])
    lab_rows = None
    lab_y = None
    if labeled_rows is not None:
        lab_rows = np.asarray(labeled_rows, dtype=np.int64).ravel()
        if labeled_y is not None:
            lab_y = np.asarray(labeled_y).ravel()
            if len(lab_y) != len(lab_rows):
                raise InputError(
                    f"labeled_y has {len(lab_y)} labels for {len(lab_rows)} labeled_rows"
                )
    committee = None
    if committee_probs is not None:
        committee = np.asarray(committee_probs, dtype=np.float64)
        if committee.ndim != 3 or committee.shape[1] != n or committee.shape[0] == 0:
            raise InputError(
                f"committee_probs must have shape (m>0, len(candidates)={n}, C), "
                f"got {committee.shape}"
            )
    cost = None
    if costs is not None:
        cost = np.asarray(costs, dtype=np.float64).ravel()
        if cost.shape != (n,):
            raise InputError(f"costs must have shape (len(candidates)={n},), got {cost.shape}")
        if not np.all(np.isfinite(cost)) or np.any(cost <= 0):
            raise InputError("costs must be finite and positive")
    if params is not None and not isinstance(params, dict):
        raise InputError(f"params must be a dict, got {type(params).__name__}")
    ctx = Context(
        k=k,
        candidates=cand,
        rng=rng,
        vectors=reader,
        probs=p,
        classes=cls,
        labeled_rows=lab_rows,
        labeled_y=lab_y,
        committee_probs=committee,
        costs=cost,
        params=dict(params or {}),
        state=state,
        history=list(history) if history is not None else None,
    )
    sel = STRATEGIES[strategy].fn(ctx)
    rows = np.asarray(sel.rows, dtype=np.int64)
    sel.rows = rows
    log = {"strategy_requested": strategy, "k": k, "n_candidates": n, **sel.log}
    if ctx.indexes.records:
        # what the pool indexes cost this call: built / updated / loaded / reused, seconds
        log["indexes"] = ctx.indexes.records
        log["indexes_built"] = ctx.indexes.built()
    if ctx.indexes.pool_check is not None:
        log["pool_check"] = ctx.indexes.pool_check
    sel.log = jsonable(log)
    if sel.scores is not None:
        sel.scores = np.asarray(sel.scores, dtype=np.float64)
    return sel



register("auto", select_auto, {"probs", "vectors"},
         "Default: representative at first, then informative+diverse, adapted by measured gains.")
