"""Informative strategies: rank candidates by an uncertainty score and take the top k.

With no model yet (``probs is None``) they fall back to the cold-start selection
(representative + diverse, see :func:`longtail.strategies.cold.cold_start`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from longtail.errors import InputError
from longtail.strategies import scores as S
from longtail.strategies._base import Context, Selection, apply_costs, topk_desc
from longtail.strategies.cold import fallback


def select_top_scores(ctx: Context, values: np.ndarray, name: str) -> Selection:
    """The k candidates with the highest ``values`` (per unit cost when costs are given).

    O(n) time (``np.argpartition``) + O(k log k); O(n) memory.
    """
    ranked = apply_costs(values, ctx.costs)
    pos = topk_desc(ranked, ctx.k, ctx.rng)
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": name,
            "reason": f"top-{len(pos)} {name} scores"
            + (" per unit cost" if ctx.costs is not None else ""),
            "score_min_selected": float(values[pos].min()) if len(pos) else None,
            "score_max_selected": float(values[pos].max()) if len(pos) else None,
        },
        scores=np.asarray(values[pos], dtype=np.float64),
    )


def _prob_strategy(name: str, score: Callable[[np.ndarray], np.ndarray]):
    def run(ctx: Context) -> Selection:
        if ctx.probs is None:
            return fallback(ctx, name)
        return select_top_scores(ctx, score(ctx.probs), name)

    run.__name__ = f"select_{name}"
    run.__doc__ = f"Top-k {name} of ``ctx.probs``; cold start when probs is None. O(n·C)."
    return run


select_margin = _prob_strategy("margin", S.margin)
select_entropy = _prob_strategy("entropy", S.entropy)
select_least_confidence = _prob_strategy("least_confidence", S.least_confidence)


def _committee_strategy(name: str, score: Callable[[np.ndarray], np.ndarray]):
    def run(ctx: Context) -> Selection:
        if ctx.committee_probs is None:
            if ctx.probs is None:
                return fallback(ctx, name)
            raise InputError(
                f"strategy {name!r} needs committee_probs (m, len(candidates), C); got None"
            )
        return select_top_scores(ctx, score(ctx.committee_probs), name)

    run.__name__ = f"select_{name}"
    run.__doc__ = f"Top-k {name} of ``ctx.committee_probs``. O(m·n·C)."
    return run


select_vote_entropy = _committee_strategy("vote_entropy", S.vote_entropy)
select_mean_kl = _committee_strategy("mean_kl", S.mean_kl)
select_bald = _committee_strategy("bald", S.bald)


def select_epig(ctx: Context) -> Selection:
    """Top-k EPIG of ``ctx.committee_probs`` with the candidates as targets
    (`scores.epig`); cold start before a model. O(n·targets·C²·m)."""
    if ctx.committee_probs is None:
        if ctx.probs is None:
            return fallback(ctx, "epig")
        raise InputError("strategy 'epig' needs committee_probs (m, len(candidates), C); got None")
    return select_top_scores(ctx, S.epig(ctx.committee_probs, ctx.rng), "epig")


def select_random(ctx: Context) -> Selection:
    """Uniform random k candidates (the control arm). O(n) time and memory."""
    pos = ctx.rng.choice(ctx.n, size=min(ctx.k, ctx.n), replace=False)
    return Selection(
        rows=ctx.candidates[np.asarray(pos, dtype=np.int64)],
        log={"strategy": "random", "reason": "uniform draw without replacement"},
    )
