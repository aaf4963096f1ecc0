"""Pools, rates and the idle-time trim: the arithmetic the money figures rest on."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.costs import observed
from longtail.costs.pools import Pool, PoolIndex, event_pool, parse_rate, parse_where
from longtail.errors import InputError


@pytest.mark.parametrize("text,per_hour", [("20/h", 20.0), ("80/hour", 80.0), ("$15/hr", 15.0),
                                           ("0.5/min", 30.0), ("12", 12.0), (7, 7.0),
                                           ("0.01/s", 36.0), ("2/hours", 2.0)])
def test_rates_are_money_per_hour(text, per_hour):
    assert parse_rate(text) == pytest.approx(per_hour)


@pytest.mark.parametrize("bad", ["twenty", "20/day", "-3/h", "", "nan"])
def test_a_bad_rate_names_itself(bad):
    with pytest.raises(InputError, match="rate"):
        parse_rate(bad)


def test_where_needs_key_and_value():
    assert parse_where("intent=fraud") == ("intent", "fraud")
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_where("fraud")


def test_the_pool_that_prices_an_event():
    crowd = Pool("crowd", 20.0, members=("ann",), default=True)
    expert = Pool("expert", 80.0, members=("eve",), where=(("label", "fraud"), ("tier", "gold")))
    index = PoolIndex([crowd, expert])
    # The annotator's own pool is what was paid, whatever the sample.
    assert event_pool(index, "ann", "fraud").name == "crowd"
    assert event_pool(index, "eve", "card").name == "expert"
    # No annotator (a vendor's file): the pool the sample needs, by class or metadata.
    assert event_pool(index, None, "fraud").name == "expert"
    assert event_pool(index, None, "card", {"tier": "gold"}).name == "expert"
    # Otherwise the default pool; with no default, no price.
    assert event_pool(index, "stranger", "card").name == "crowd"
    assert event_pool(PoolIndex([expert]), None, "card") is None


def test_idle_time_is_trimmed_to_a_multiple_of_the_median():
    seconds = np.array([10, 12, 8, 11, 9, 3600, np.nan])  # one lease left open over lunch
    cap = observed.idle_cap(seconds)
    assert cap == observed.CAP_FLOOR_SECONDS  # 5 x median 10.5 is below the 60 s floor
    trimmed = observed.trim(seconds, cap)
    assert trimmed[5] == cap and np.isnan(trimmed[6]) and trimmed[:5].tolist() == [10, 12, 8, 11, 9]
    slow = np.array([100.0, 120, 140, 5000])
    assert observed.idle_cap(slow) == pytest.approx(5 * 130)
    assert observed.idle_cap(slow, fixed=300) == 300


def test_untimed_answers_cost_their_pools_median_not_zero():
    seconds = np.array([10.0, np.nan, 100.0, 300.0, np.nan, np.nan])
    groups = np.array(["crowd", "crowd", "expert", "expert", "expert", "nobody"], dtype=object)
    filled, imputed = observed.impute(seconds, groups)
    assert imputed.tolist() == [False, True, False, False, True, True]
    assert filled.tolist() == [10.0, 10.0, 100.0, 300.0, 200.0, 100.0]  # nobody: overall
    assert observed.money(np.array([3600.0, 90.0]), np.array([20.0, 80.0])).tolist() == [20.0, 2.0]
