"""Stopping rules: when is more labeling no longer worth it?

Each rule is a plain function that returns a `StopDecision` (stop or not,
which rule, why in words, the value it looked at), and a small rule object
with its settings that reads what it needs from a `StoppingState`, so a
project can keep a list of selected rules and `evaluate_stopping` them each
round:

- stabilising predictions (Bloodgood & Vijay-Shanker, CoNLL 2009): Cohen's
  kappa between the predictions of successive models on a fixed unlabeled
  "stop set"; stop when the mean of the last ``window`` kappas is above the
  threshold (0.99 over 3 in the paper). Assumes the stop set is fixed across
  rounds and never labeled or used for selection.
- forecast gain: stop when the learning-curve forecast expects the next batch
  to add less than a threshold to the metric.
- target reached: stop when the eval metric (or, cautiously, the lower end of
  its interval) reaches the target.
- budget spent: stop when the labeling budget cannot pay for another batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from longtail.errors import InputError

__all__ = [
    "StopDecision",
    "StoppingReport",
    "StoppingState",
    "cohen_kappa",
    "stabilizing_predictions",
    "forecast_gain",
    "target_reached",
    "budget_spent",
    "StabilizingPredictions",
    "ForecastGain",
    "TargetReached",
    "BudgetSpent",
    "evaluate_stopping",
]


@dataclass(frozen=True)
class StopDecision:
    """One rule's answer: `stop`, the `rule` name, a `reason` in words, the `value` it judged."""

    stop: bool
    rule: str
    reason: str
    value: float | None = None


@dataclass(frozen=True)
class StoppingReport:
    """All rules' answers for one round; `stop` combines them (any or all)."""

    stop: bool
    reason: str
    decisions: list[StopDecision] = field(default_factory=list)


def cohen_kappa(a: np.ndarray | Sequence[Any], b: np.ndarray | Sequence[Any]) -> float:
    """Cohen's kappa between two label vectors of shape (m,).

    1 for perfect agreement, 0 for chance-level. When both vectors put every
    sample in one and the same class (chance agreement 1), returns 1.0 if they
    agree everywhere. O(m log m) time.
    """
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise InputError(
            f"kappa needs two 1-D arrays of one length, got {a_arr.shape}, {b_arr.shape}"
        )
    m = len(a_arr)
    if m == 0:
        raise InputError("kappa of empty prediction vectors")
    _, codes = np.unique(np.concatenate([a_arr, b_arr]), return_inverse=True)
    codes_a, codes_b = codes[:m], codes[m:]
    k = int(codes.max()) + 1
    observed = float(np.mean(codes_a == codes_b))
    chance = float(np.dot(np.bincount(codes_a, minlength=k), np.bincount(codes_b, minlength=k)))
    chance /= float(m) * m
    if chance >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - chance) / (1.0 - chance)


def stabilizing_predictions(
    stop_set_predictions: Sequence[np.ndarray], *, threshold: float = 0.99, window: int = 3
) -> StopDecision:
    """Bloodgood & Vijay-Shanker (2009): stop once successive models agree on the stop set.

    stop_set_predictions : predictions of each round's model on the same
        fixed stop set, oldest first; each of shape (m,).
    Stops when the mean kappa of the last `window` successive pairs is above
    `threshold`; needs ``window + 1`` models.
    """
    rule = "stabilizing_predictions"
    if len(stop_set_predictions) < window + 1:
        return StopDecision(
            False, rule,
            f"needs {window + 1} rounds of stop-set predictions, has {len(stop_set_predictions)}",
        )
    recent = stop_set_predictions[-(window + 1):]
    kappas = [cohen_kappa(recent[i], recent[i + 1]) for i in range(window)]
    mean_kappa = float(np.mean(kappas))
    stop = mean_kappa > threshold
    verb = "above" if stop else "not above"
    return StopDecision(
        stop, rule,
        f"mean kappa of the last {window} model pairs on the stop set is {mean_kappa:.4f}, "
        f"{verb} {threshold}",
        mean_kappa,
    )


def forecast_gain(gain: float | None, *, threshold: float = 0.002) -> StopDecision:
    """Stop when the forecast gain of the next batch (in metric units) is below `threshold`.

    gain : expected improvement of the metric from the next batch, e.g.
        ``curve.expected_gain(batch_size).mean``; None when no forecast exists.
    """
    rule = "forecast_gain"
    if gain is None or not np.isfinite(gain):
        return StopDecision(False, rule, "no learning-curve forecast yet")
    stop = gain < threshold
    verb = "below" if stop else "not below"
    return StopDecision(
        stop, rule,
        f"the next batch is forecast to add {gain * 100:.2f} points, {verb} "
        f"the threshold of {threshold * 100:.2f}",
        float(gain),
    )


def target_reached(
    metric: float | Mapping[str, Any] | None, target: float, *, use_lower: bool = False
) -> StopDecision:
    """Stop when the eval metric reaches `target`.

    metric : the metric value, or a ``{"value", "lo", "hi"}`` dict as made by
        `evaluate_predictions`. With ``use_lower=True`` the lower end of the
        interval must reach the target (the cautious reading).
    """
    rule = "target_reached"
    if metric is None:
        return StopDecision(False, rule, "no eval metric yet")
    if isinstance(metric, Mapping):
        value = metric.get("lo") if use_lower else metric.get("value")
        if value is None:
            return StopDecision(False, rule, "the eval metric has no interval yet")
    else:
        if use_lower:
            raise InputError("use_lower needs the metric as a {'value', 'lo', 'hi'} dict")
        value = metric
    value = float(value)
    stop = value >= target
    what = "the lower end of the eval interval" if use_lower else "the eval metric"
    verb = "reached" if stop else "not yet reached"
    return StopDecision(stop, rule, f"{what} is {value:.4f}: target {target} {verb}", value)


def budget_spent(
    spent: float, budget: float | None, *, next_batch_cost: float = 0.0
) -> StopDecision:
    """Stop when ``spent >= budget`` or the next batch would overrun it; any unit (labels, money)."""
    rule = "budget_spent"
    if budget is None:
        return StopDecision(False, rule, "no budget set")
    stop = spent >= budget or spent + next_batch_cost > budget
    left = budget - spent
    if stop:
        reason = f"{spent:g} of {budget:g} spent; {left:g} left cannot pay for the next batch"
    else:
        reason = f"{spent:g} of {budget:g} spent; {left:g} left"
    return StopDecision(stop, rule, reason, float(spent))


@dataclass
class StoppingState:
    """What the rules may look at in one round; fields a rule needs but are None make it abstain.

    stop_set_predictions : each round's model predictions on the stop set, oldest first.
    forecast_gain : expected metric gain of the next batch.
    metric : the current eval metric, a float or ``{"value", "lo", "hi"}``.
    spent, budget, next_batch_cost : labeling spend so far, the budget, the next batch's cost.
    """

    stop_set_predictions: Sequence[np.ndarray] = ()
    forecast_gain: float | None = None
    metric: float | Mapping[str, Any] | None = None
    spent: float = 0.0
    budget: float | None = None
    next_batch_cost: float = 0.0


class StoppingRule(Protocol):
    name: str

    def __call__(self, state: StoppingState) -> StopDecision: ...


@dataclass(frozen=True)
class StabilizingPredictions:
    threshold: float = 0.99
    window: int = 3
    name: str = "stabilizing_predictions"

    def __call__(self, state: StoppingState) -> StopDecision:
        return stabilizing_predictions(
            state.stop_set_predictions, threshold=self.threshold, window=self.window
        )


@dataclass(frozen=True)
class ForecastGain:
    threshold: float = 0.002
    name: str = "forecast_gain"

    def __call__(self, state: StoppingState) -> StopDecision:
        return forecast_gain(state.forecast_gain, threshold=self.threshold)


@dataclass(frozen=True)
class TargetReached:
    target: float
    use_lower: bool = False
    name: str = "target_reached"

    def __call__(self, state: StoppingState) -> StopDecision:
        if self.use_lower and state.metric is not None and not isinstance(state.metric, Mapping):
            return StopDecision(False, self.name, "the eval metric has no interval yet")
        return target_reached(state.metric, self.target, use_lower=self.use_lower)


@dataclass(frozen=True)
class BudgetSpent:
    budget: float | None = None
    name: str = "budget_spent"

    def __call__(self, state: StoppingState) -> StopDecision:
        budget = self.budget if self.budget is not None else state.budget
        return budget_spent(state.spent, budget, next_batch_cost=state.next_batch_cost)


def evaluate_stopping(
    rules: Sequence[Callable[[StoppingState], StopDecision]],
    state: StoppingState | None = None,
    *,
    combine: str = "any",
    **context: Any,
) -> StoppingReport:
    """Run every rule on one round's state and combine their answers.

    rules : rule objects (`StabilizingPredictions`, `ForecastGain`, ...), or
        any callable taking a `StoppingState` and returning a `StopDecision`.
    state : the round's state; or pass its fields as keyword arguments.
    combine : "any" stops when one rule says stop (budget and target usually
        sit here); "all" only when every rule does.
    """
    if combine not in ("any", "all"):
        raise InputError(f"combine must be 'any' or 'all', got {combine!r}")
    if state is None:
        state = StoppingState(**context)
    elif context:
        raise InputError("pass either a StoppingState or its fields, not both")
    decisions = [rule(state) for rule in rules]
    if not decisions:
        return StoppingReport(False, "no stopping rule selected", [])
    firing = [d for d in decisions if d.stop]
    stop = bool(firing) if combine == "any" else len(firing) == len(decisions)
    if stop:
        reason = "stop: " + "; ".join(f"{d.rule}: {d.reason}" for d in firing)
    else:
        waiting = [d for d in decisions if not d.stop]
        reason = "continue: " + "; ".join(f"{d.rule}: {d.reason}" for d in waiting)
    return StoppingReport(stop, reason, decisions)
