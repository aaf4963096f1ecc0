"""A money budget is never exceeded at predicted cost (hypothesis), and items are kept
in the strategy's order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.costs.select import count_for, fit_budget

costs_st = st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), max_size=200)


@settings(max_examples=300, deadline=None)
@given(costs=costs_st, budget=st.floats(min_value=0.0, max_value=1e5, allow_nan=False))
def test_never_over_budget_and_nothing_that_fits_is_left_behind(costs, budget):
    c = np.array(costs, dtype=float)
    keep = fit_budget(c, budget)
    assert float(c[keep].sum()) <= budget
    # Every item left out did not fit what was left when its turn came.
    spent = 0.0
    for i in range(len(c)):
        if keep[i]:
            spent += c[i]
        else:
            assert c[i] > budget - spent - 1e-9 * max(1.0, budget)


def test_order_is_the_strategys():
    keep = fit_budget(np.array([5.0, 8.0, 1.0, 1.0, 3.0]), 9.0)
    assert keep.tolist() == [True, False, True, True, False]


def test_count_for_spends_about_the_budget():
    assert count_for(np.full(50, 2.0), 100.0) == 63
    assert count_for(np.array([]), 100.0) == 1
