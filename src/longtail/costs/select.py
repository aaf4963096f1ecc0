"""Selection under a money budget: what fits, in the strategy's order. Pure.

`choose_cost_aware` decides whether a round's batch is cut cost-aware at all, by the
gain per money measured on earlier rounds of each kind.

`fit_budget` walks a batch in its order (eval rows, control, then the strategy's picks,
most wanted first) and keeps each item whose predicted cost still fits what is left,
skipping one that does not (a cheaper later item may still fit): the kept items'
predicted costs never add up to more than the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.errors import InputError

__all__ = ["BudgetTooSmall", "MoneyChoice", "MoneyRound", "choose_cost_aware", "count_for",
           "fit_budget", "gain_per_money_efold", "Z_SWITCH"]


class BudgetTooSmall(InputError):
    """A money budget that buys not one sample at predicted cost."""


def fit_budget(costs: np.ndarray, budget: float) -> np.ndarray:
    """Mask (n,) bool of the items kept, in order, so that sum(costs[mask]) <= budget.

    costs : (n,) predicted costs, >= 0 (NaN or negative: an InputError-worthy bug, so
    treated as infinite: never kept). O(n)."""
    costs = np.asarray(costs, dtype=np.float64)
    keep = np.zeros(len(costs), dtype=bool)
    left = float(budget)
    for i, c in enumerate(costs.tolist()):
        if not (c >= 0) or c == float("inf"):
            continue
        if c <= left:
            keep[i] = True
            left -= c
    # Floating sums: make the guarantee exact, dropping the last kept items if needed.
    while keep.any() and float(costs[keep].sum()) > budget:
        keep[np.flatnonzero(keep)[-1]] = False
    return keep


def count_for(costs: np.ndarray, budget: float, *, slack: float = 1.25,
              most: int = 100_000) -> int:
    """How many items to ask a strategy for so that `budget` is about spent: budget over
    the median predicted cost, with `slack` for the items that will not fit."""
    costs = np.asarray(costs, dtype=np.float64)
    costs = costs[np.isfinite(costs) & (costs > 0)]
    if len(costs) == 0:
        return 1
    return int(min(most, max(1, np.ceil(slack * budget / float(np.median(costs))))))


# -- cost-aware or not: measured gain per money ------------------------------------------

DISCOUNT = 0.7  # as auto's bandit: a round's reward fades x0.7 per round of age


@dataclass(frozen=True)
class MoneyRound:
    """One earlier round for the choice: whether its batch was cut cost-aware, the
    managed-eval metric before and after it, and the project's money before and after."""

    cost_aware: bool
    metric_before: float | None
    metric_after: float | None
    money_before: float
    money_after: float


@dataclass(frozen=True)
class MoneyChoice:
    """Whether this round's batch is cut cost-aware, why, and the evidence: per variant
    ("aware", "blind") its discounted mean reward (metric gained per e-fold of money)
    and how many rounds measured it."""

    cost_aware: bool
    why: str
    reward: dict[str, float | None]
    plays: dict[str, int]

    def to_dict(self) -> dict:
        return {"applied": self.cost_aware, "why": self.why, "reward": self.reward,
                "plays": self.plays}


def gain_per_money_efold(r: MoneyRound) -> float | None:
    """(metric_after - metric_before) / ln(money_after / money_before): metric gained
    per e-fold of money, as auto's arms are rewarded per e-fold of labels but in the
    unit the user pays; None when not measurable."""
    if r.metric_before is None or r.metric_after is None:
        return None
    if not (r.money_before > 0 and r.money_after > r.money_before):
        return None
    return (float(r.metric_after) - float(r.metric_before)) / math.log(
        r.money_after / r.money_before)


Z_SWITCH = 1.64  # one-sided 95%: how far beyond its noise cost-blind must gain more


def _weighted(values: list[float], weights: list[float]) -> tuple[float, float]:
    """Weighted mean and effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    return float((w * v).sum() / w.sum()), float(w.sum() ** 2 / (w ** 2).sum())


def choose_cost_aware(history: list[MoneyRound], discount: float = DISCOUNT,
                      z: float = Z_SWITCH) -> MoneyChoice:
    """Cut this batch cost-aware or not, by measured gain per money: each variant is
    tried once (cost-aware first); after that cost-aware (Haertel et al.'s return on
    investment, the default) is kept unless cost-blind's discounted mean reward is
    higher by more than `z` standard errors. The noise is the spread of the rewards
    around their variant's mean (pooled over both); with fewer than 3 measured rounds
    there is none to compare against, and no switch. One round's gain on the managed
    eval set is mostly eval noise (a point or two against a standard error of several),
    so a greedy "higher mean wins" rule flips on noise and, once cost-aware drew one
    unlucky round, never tried it again. Pure; O(len(history))."""
    rewards: dict[str, list[float]] = {"aware": [], "blind": []}
    weights: dict[str, list[float]] = {"aware": [], "blind": []}
    for age, r in enumerate(reversed(history)):
        g = gain_per_money_efold(r)
        if g is None:
            continue
        key = "aware" if r.cost_aware else "blind"
        rewards[key].append(g)
        weights[key].append(discount ** age)
    plays = {k: len(v) for k, v in rewards.items()}
    stats = {k: _weighted(rewards[k], weights[k]) for k in rewards if rewards[k]}
    reward = {k: (round(stats[k][0], 6) if k in stats else None) for k in rewards}
    if plays["aware"] == 0:
        return MoneyChoice(True, "cost-aware not measured yet: tried once", reward, plays)
    if plays["blind"] == 0:
        return MoneyChoice(False, "cost-blind not measured yet: tried once", reward, plays)
    resid = [g - stats[k][0] for k in rewards for g in rewards[k]]
    dof = len(resid) - 2
    diff = stats["blind"][0] - stats["aware"][0]
    if dof < 1:
        return MoneyChoice(True, "cost-aware (the default): too few measured rounds to tell "
                           "the two apart", reward, plays)
    sd = math.sqrt(sum(e * e for e in resid) / dof)
    se = sd * math.sqrt(1.0 / stats["aware"][1] + 1.0 / stats["blind"][1])
    if diff > z * se:
        return MoneyChoice(False, f"cost-blind gains more per e-fold of money ("
                           f"{reward['blind']:.4f} vs {reward['aware']:.4f}, beyond the noise "
                           f"{se:.4f})", reward, plays)
    return MoneyChoice(True, f"cost-aware (the default): cost-blind gains "
                       f"{reward['blind']:.4f} vs {reward['aware']:.4f} per e-fold of money, "
                       f"within {z:g} x its noise {se:.4f}", reward, plays)
