"""Selection under a money budget: what fits, in the strategy's order. Pure.

`fit_budget` walks a batch in its order (eval rows, control, then the strategy's picks,
most wanted first) and keeps each item whose predicted cost still fits what is left,
skipping one that does not (a cheaper later item may still fit): the kept items'
predicted costs never add up to more than the budget.
"""

from __future__ import annotations

import numpy as np

from longtail.errors import InputError

__all__ = ["BudgetTooSmall", "fit_budget", "count_for"]


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
