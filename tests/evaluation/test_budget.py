"""The batch split: eval labels by need, shares as running allowances."""

from __future__ import annotations

import pytest

from longtail.evaluation.budget import allowance, eval_need, eval_sample_size, wilson_halfwidth


def test_sample_size_shrinks_as_accuracy_rises_and_target_widens():
    assert eval_sample_size(None, 0.03) == eval_sample_size(0.5, 0.03) == 1068
    assert eval_sample_size(0.9, 0.03) == 385
    assert eval_sample_size(0.9, 0.05) < eval_sample_size(0.9, 0.03)
    with pytest.raises(ValueError):
        eval_sample_size(0.9, 0.0)


def _need(**kw):
    base = dict(labeled=100, pending=400, accuracy=0.9, halfwidth=0.06, target=0.03,
                has_model=True)
    return eval_need(**{**base, **kw})


def test_requests_stop_once_the_target_is_met():
    assert _need().request > 0
    met = _need(halfwidth=0.029, labeled=400)
    assert met.request == 0 and "met" in met.reason


def test_requests_resume_on_a_new_class_and_on_a_grown_pool():
    met = dict(halfwidth=0.02, labeled=400)
    assert _need(**met).request == 0
    new = _need(**met, new_classes=["refund"])
    assert new.request >= 1 and "refund" in new.reason
    grown = _need(**met, pool=13_000, pool_when_met=10_000)
    assert grown.request >= 1 and "grew" in grown.reason
    assert _need(**met, pool=11_000, pool_when_met=10_000).request == 0


def test_no_eval_labels_before_a_model_or_when_none_wait():
    assert _need(has_model=False).request == 0
    assert _need(pending=0).request == 0
    assert _need(pending=3).request == 3


def test_tiny_batches_share_fairly_and_big_batches_keep_a_row_for_selection():
    given = spent = 0
    picks = []
    for _ in range(10):  # ten `query -n 1`
        n = allowance(0.2, 1, spent, given)
        picks.append(n)
        spent += n
        given += 1
    assert sum(picks) == 2 and picks[0] == 0
    assert allowance(0.2, 100, 0, 0) == 20
    assert allowance(0.9, 2, 0, 0) == 1  # the strategy always gets a row
    # A share unspent for many rounds does not come due in one batch.
    assert allowance(0.2, 100, 0, 10_000) == 20
    assert allowance(0.0, 100, 0, 0) == 0


def test_wilson_half_width_does_not_collapse_on_a_perfect_small_sample():
    assert 0.07 < wilson_halfwidth(1.0, 20) < 0.1
    assert wilson_halfwidth(0.9, 400) == pytest.approx(0.029, abs=0.002)
    assert wilson_halfwidth(0.9, 1600) < wilson_halfwidth(0.9, 400)


def test_eval_labels_stay_under_a_share_of_the_labels_paid_while_the_target_is_unmet():
    # 100 eval labels of 400 paid is 25%: over the 10% cap, so none more this batch
    capped = _need(labeled=100, paid=400)
    assert capped.request == 0 and "capped at 10%" in capped.reason
    assert "±6.0 points on 100 eval labels" in capped.reason  # the precision bought
    # room under the cap: at most 10% of the paid labels in all
    assert _need(labeled=30, paid=400).request == 10
    assert _need(labeled=30, paid=400, max_share=1.0).request > 10  # no cap
    assert _need(labeled=30).request > 10  # paid unknown: no cap
    # the cap binds on a class the eval set lacks too, and the interval still tightens
    # as labels grow: the room grows with the labels paid
    assert _need(labeled=100, paid=400, new_classes=["refund"]).request == 0
    assert _need(labeled=100, paid=2000).request == 100
    # a target met asks for nothing, cap or not
    assert _need(labeled=400, halfwidth=0.02, paid=400).request == 0
