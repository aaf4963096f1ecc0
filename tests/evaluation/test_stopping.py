import numpy as np
import pytest

from longtail.evaluation import (
    BudgetSpent,
    ForecastGain,
    StabilizingPredictions,
    StoppingState,
    TargetReached,
    budget_spent,
    cohen_kappa,
    evaluate_stopping,
    forecast_gain,
    stabilizing_predictions,
    target_reached,
)


def test_kappa_known_values():
    a = np.array([0, 0, 1, 1])
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, 1 - a) == -1.0
    assert cohen_kappa([0, 0, 0], [0, 0, 0]) == 1.0
    # 0.5 observed agreement with balanced marginals is chance level
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)


def _rounds(changes):
    """Stop-set predictions where round r differs from round r-1 in changes[r-1] samples."""
    preds = [np.arange(1000) % 5]
    for k in changes:
        nxt = preds[-1].copy()
        nxt[:k] = (nxt[:k] + 1) % 5
        preds.append(nxt)
    return preds


def test_stabilizing_predictions_fires_exactly_when_stable():
    # kappa ≈ 1 - k/1000·1.25; three flips of 2 samples give mean kappa ≈ 0.9975
    needs_more = stabilizing_predictions(_rounds([2, 2]))
    assert not needs_more.stop and "needs 4" in needs_more.reason
    unstable = stabilizing_predictions(_rounds([100, 50, 2, 2]))
    assert not unstable.stop and unstable.value < 0.99
    stable = stabilizing_predictions(_rounds([100, 50, 2, 2, 2]))
    assert stable.stop and stable.value > 0.99
    # the mean over the window decides: one big change among small ones keeps it going
    assert not stabilizing_predictions(_rounds([2, 2, 30])).stop


def test_forecast_gain_threshold():
    assert forecast_gain(0.001, threshold=0.002).stop
    assert not forecast_gain(0.003, threshold=0.002).stop
    assert not forecast_gain(None).stop


def test_target_reached():
    assert target_reached(0.91, 0.90).stop
    assert not target_reached(0.89, 0.90).stop
    metric = {"value": 0.91, "lo": 0.88, "hi": 0.93}
    assert target_reached(metric, 0.90).stop
    assert not target_reached(metric, 0.90, use_lower=True).stop


def test_budget_spent():
    assert budget_spent(1000, 1000).stop
    assert not budget_spent(900, 1000).stop
    assert budget_spent(950, 1000, next_batch_cost=100).stop
    assert not budget_spent(900, 1000, next_batch_cost=100).stop
    assert not budget_spent(10**9, None).stop


def test_evaluate_stopping_combines():
    rules = [StabilizingPredictions(), ForecastGain(0.002), TargetReached(0.95), BudgetSpent(2000)]
    state = StoppingState(
        stop_set_predictions=_rounds([100, 90, 80]), forecast_gain=0.01, metric=0.9, spent=1000
    )
    report = evaluate_stopping(rules, state)
    assert not report.stop and len(report.decisions) == 4
    assert report.reason.startswith("continue")
    report = evaluate_stopping(rules, spent=2000, metric=0.9)
    assert report.stop and "budget_spent" in report.reason
    assert [d.rule for d in report.decisions if d.stop] == ["budget_spent"]
    assert not evaluate_stopping(rules, spent=2000, combine="all").stop
    assert not evaluate_stopping([]).stop


def test_forecast_gain_needs_its_interval_below_the_threshold():
    # The case: 0.06 points forecast, but the interval still holds a gain worth
    # a batch: not a stop, "not enough evidence yet".
    held = forecast_gain(0.0006, threshold=0.002, gain_hi=0.012)
    assert not held.stop and held.reason.startswith("not enough evidence yet")
    assert forecast_gain(0.0006, threshold=0.002, gain_hi=0.0015).stop


def test_a_small_eval_set_holds_every_evidence_based_stop():
    from longtail.evaluation import eval_evidence

    why = eval_evidence(20, 203, 80, halfwidth=0.09, target=0.03)
    assert "20 labels" in why and "183 more eval labels" in why
    assert "eval-rate" in eval_evidence(6, 84, 0)  # the split is used up
    assert eval_evidence(250, 203, 0) is None
    assert eval_evidence(20, 203, 80, halfwidth=0.02, target=0.03) is None
    rules = [StabilizingPredictions(), ForecastGain(0.002), BudgetSpent(2000)]
    state = StoppingState(stop_set_predictions=_rounds([2, 2, 2]), forecast_gain=0.0001,
                          forecast_gain_hi=0.0005, spent=100, evidence=why)
    report = evaluate_stopping(rules, state)
    assert not report.stop and report.reason.startswith("not enough evidence yet")
    assert all(not d.stop for d in report.decisions)
    # The budget is a fact, not an estimate: it still stops.
    spent = StoppingState(spent=2000, evidence=why)
    assert evaluate_stopping(rules, spent).stop


def test_remaining_gain_stops_only_when_its_interval_is_under_the_threshold():
    """The default rule judges the accuracy still reachable on the whole pool: a forecast
    of 0.4 points whose interval reaches 2 points is not enough evidence; at most 0.8 is."""
    from longtail.evaluation import RemainingGain, remaining_gain

    held = remaining_gain(0.004, 0.02, 5000, threshold=0.01)
    assert not held.stop and held.reason.startswith("not enough evidence")
    assert remaining_gain(0.004, 0.008, 5000, threshold=0.01).stop
    assert not remaining_gain(0.012, 0.02, 5000).stop
    assert not remaining_gain(None, None, 5000).stop
    rule = RemainingGain()
    assert rule(StoppingState(remaining_gain=0.002, remaining_gain_hi=0.005, pool_left=10)).stop
    gated = evaluate_stopping([rule], StoppingState(
        remaining_gain=0.002, remaining_gain_hi=0.005, pool_left=10, evidence="too few"))
    assert not gated.stop and gated.reason.startswith("not enough evidence")
