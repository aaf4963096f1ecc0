"""`topk_desc` with rows marked never-to-pick (-inf): no NaN, no warning, same order."""

from __future__ import annotations

import warnings

import numpy as np

from longtail.strategies._base import topk_desc


def test_minus_inf_rows_stay_last_without_a_warning():
    v = np.array([0.3, -np.inf, 0.9, 0.3, -np.inf, 0.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the jitter used to turn -inf into NaN and warn
        top = topk_desc(v, 6, rng=np.random.default_rng(0))
    assert list(top[:2]) == [2, 0] or list(top[:2]) == [2, 3]
    assert set(top[:4]) == {0, 2, 3, 5}
    assert set(top[4:]) == {1, 4}


def test_ties_are_broken_at_random_not_by_position():
    v = np.zeros(50)
    firsts = {int(topk_desc(v, 1, rng=np.random.default_rng(s))[0]) for s in range(20)}
    assert len(firsts) > 1
