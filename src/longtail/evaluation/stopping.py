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
  to add less than a threshold to the metric, and the upper end of the
  forecast's interval is below it too (else the curve cannot tell a flat tail
  from an eval set too small to show the rise).
- remaining gain (the default beside the kappa rule): stop when labeling every pool
  row still unlabeled is forecast to add less than ``threshold`` (1 point) to the
  metric, the upper end of the forecast's 90% interval included. This is the
  reachable accuracy a stop gives up, so the threshold is the regret a user accepts;
  it needs no batch size (the per-batch rule's threshold means a different slope for
  batches of 20 and of 100).
- target reached: stop when the eval metric (or, cautiously, the lower end of
  its interval) reaches the target.
- budget spent: stop when the labeling budget cannot pay for another batch.

Evidence: every rule but the budget judges the model by the eval set. While the
labeled eval set is under its target size (the labels a ±h interval needs at the
measured accuracy, `longtail.evaluation.budget.eval_sample_size`), a rule that
would stop says "not enough evidence yet" instead, with the eval labels it would
take (`evaluate_stopping` applies this to every rule whose ``needs_evidence`` is
true).
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
    "coded_kappa",
    "cohen_kappa",
    "stabilizing_predictions",
    "forecast_gain",
    "remaining_gain",
    "target_reached",
    "budget_spent",
    "StabilizingPredictions",
    "ForecastGain",
    "RemainingGain",
    "TargetReached",
    "BudgetSpent",
    "evaluate_stopping",
    "eval_evidence",
]

NOT_ENOUGH = "not enough evidence yet"


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
    kappa = coded_kappa(codes_a, codes_b, int(codes.max()) + 1)
    if kappa is None:  # both put every sample in one and the same class
        return 1.0 if bool(np.all(codes_a == codes_b)) else 0.0
    return kappa


def coded_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float | None:
    """Cohen's kappa of two raters' int codes (0..n_classes-1) over the same items, shape
    (n,); None when there are no items or chance agreement is 1 (both used one and the
    same class only). O(n + C)."""
    n = len(a)
    if n == 0:
        return None
    observed = float(np.mean(a == b))
    chance = float(np.dot(np.bincount(a, minlength=n_classes),
                          np.bincount(b, minlength=n_classes))) / (float(n) * n)
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


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


def forecast_gain(
    gain: float | None, *, threshold: float = 0.002, gain_hi: float | None = None
) -> StopDecision:
    """Stop when the forecast gain of the next batch (in metric units) is below `threshold`.

    gain : expected improvement of the metric from the next batch, e.g.
        ``curve.expected_gain(batch_size).mean``; None when no forecast exists.
    gain_hi : the upper end of that forecast's interval. When given, the rule stops
        only if it is below `threshold` too: an interval that still holds a gain worth
        a batch is "not enough evidence yet", not a flat curve.
    """
    rule = "forecast_gain"
    if gain is None or not np.isfinite(gain):
        return StopDecision(False, rule, "no learning-curve forecast yet")
    said = f"the next batch is forecast to add {gain * 100:.2f} points"
    if gain >= threshold:
        return StopDecision(False, rule, f"{said}, not below the threshold of "
                            f"{threshold * 100:.2f}", float(gain))
    if gain_hi is not None and not gain_hi < threshold:
        up = "any amount" if not np.isfinite(gain_hi) else f"{gain_hi * 100:.2f} points"
        return StopDecision(
            False, rule,
            f"{NOT_ENOUGH}: {said}, but its interval reaches {up}, above the "
            f"{threshold * 100:.2f} a batch needs to be worth it", float(gain))
    return StopDecision(
        True, rule,
        f"{said} (at most {gain_hi * 100:.2f}), below the threshold of {threshold * 100:.2f}"
        if gain_hi is not None else f"{said}, below the threshold of {threshold * 100:.2f}",
        float(gain),
    )


def remaining_gain(
    gain: float | None, gain_hi: float | None, left: int | None, *, threshold: float = 0.01
) -> StopDecision:
    """Stop when labeling the `left` unlabeled pool rows is forecast to add under `threshold`.

    gain, gain_hi : the forecast gain of the metric from labeling every row left (metric
        units) and the upper end of its interval; None when no forecast exists.
    left : unlabeled pool rows. Stops only when `gain_hi` is below `threshold` too: an
        interval that still holds a gain of `threshold` is "not enough evidence yet".
    """
    rule = "remaining_gain"
    if gain is None or gain_hi is None or left is None or not np.isfinite(gain):
        return StopDecision(False, rule, "no learning-curve forecast yet")
    said = (f"labeling the {left:,} pool rows left is forecast to add "
            f"{gain * 100:.2f} points")
    if gain >= threshold:
        return StopDecision(False, rule, f"{said}, not below {threshold * 100:.2f}",
                            float(gain))
    if not gain_hi < threshold:
        up = "any amount" if not np.isfinite(gain_hi) else f"{gain_hi * 100:.2f} points"
        return StopDecision(
            False, rule,
            f"{NOT_ENOUGH}: {said}, but its 90% interval reaches {up}, not below "
            f"{threshold * 100:.2f}", float(gain))
    return StopDecision(True, rule, f"{said} (at most {gain_hi * 100:.2f}), below "
                        f"{threshold * 100:.2f}", float(gain))


def eval_evidence(labeled: int | None, wanted: int | None, pending: int | None = None,
                  *, halfwidth: float | None = None, target: float | None = None) -> str | None:
    """Why the eval set cannot yet back a "stop", or None when it can.

    labeled : labeled eval samples; wanted : how many the target interval needs at the
    measured accuracy; pending : eval rows still waiting for a label (0: the eval split
    is used up, a larger eval rate would be needed); halfwidth, target : the measured
    and wanted 95% half-widths (met when ``halfwidth <= target``). None everywhere:
    nothing to judge (no gate).
    """
    if labeled is None or wanted is None:
        return None
    if halfwidth is not None and target is not None and halfwidth <= target:
        return None
    if labeled >= wanted:
        return None
    more = wanted - labeled
    width = "" if target is None else f" (±{100 * target:.1f} points)"
    now = "" if halfwidth is None else f", ±{100 * halfwidth:.1f} points now"
    if pending == 0:
        return (f"the eval set holds {labeled} labels{now}, under the {wanted} its target "
                f"interval{width} needs, and has no more rows to label: a larger eval rate "
                "(`init --eval-rate`) or more data would give it")
    return (f"the eval set holds {labeled} labels{now}, under the {wanted} its target "
            f"interval{width} needs: about {more} more eval labels (`query` puts them first)")


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
    forecast_gain_hi : the upper end of the gain forecast's interval.
    evidence : why the eval set cannot back a stop yet (`eval_evidence`), None if it can.
    remaining_gain, remaining_gain_hi, pool_left : the forecast gain from labeling the
    `pool_left` unlabeled pool rows, and the upper end of its interval.
    """

    stop_set_predictions: Sequence[np.ndarray] = ()
    forecast_gain: float | None = None
    forecast_gain_hi: float | None = None
    evidence: str | None = None
    remaining_gain: float | None = None
    remaining_gain_hi: float | None = None
    pool_left: int | None = None
    metric: float | Mapping[str, Any] | None = None
    spent: float = 0.0
    budget: float | None = None
    next_batch_cost: float = 0.0


class StoppingRule(Protocol):
    name: str
    needs_evidence: bool

    def __call__(self, state: StoppingState) -> StopDecision: ...


@dataclass(frozen=True)
class StabilizingPredictions:
    threshold: float = 0.99
    window: int = 3
    name: str = "stabilizing_predictions"
    needs_evidence: bool = True

    def __call__(self, state: StoppingState) -> StopDecision:
        return stabilizing_predictions(
            state.stop_set_predictions, threshold=self.threshold, window=self.window
        )


@dataclass(frozen=True)
class ForecastGain:
    threshold: float = 0.002
    name: str = "forecast_gain"
    needs_evidence: bool = True

    def __call__(self, state: StoppingState) -> StopDecision:
        return forecast_gain(state.forecast_gain, threshold=self.threshold,
                             gain_hi=state.forecast_gain_hi)


@dataclass(frozen=True)
class RemainingGain:
    threshold: float = 0.01
    name: str = "remaining_gain"
    needs_evidence: bool = True

    def __call__(self, state: StoppingState) -> StopDecision:
        return remaining_gain(state.remaining_gain, state.remaining_gain_hi, state.pool_left,
                              threshold=self.threshold)


@dataclass(frozen=True)
class TargetReached:
    target: float
    use_lower: bool = False
    name: str = "target_reached"
    needs_evidence: bool = True

    def __call__(self, state: StoppingState) -> StopDecision:
        if self.use_lower and state.metric is not None and not isinstance(state.metric, Mapping):
            return StopDecision(False, self.name, "the eval metric has no interval yet")
        return target_reached(state.metric, self.target, use_lower=self.use_lower)


@dataclass(frozen=True)
class BudgetSpent:
    budget: float | None = None
    name: str = "budget_spent"
    needs_evidence: bool = False  # a budget is a fact, not an estimate

    def __call__(self, state: StoppingState) -> StopDecision:
        budget = self.budget if self.budget is not None else state.budget
        return budget_spent(state.spent, budget, next_batch_cost=state.next_batch_cost)


def _gated(rule: Callable[[StoppingState], StopDecision], decision: StopDecision,
           evidence: str | None) -> StopDecision:
    """A rule's "stop" becomes "not enough evidence yet" while the eval set cannot back it."""
    if not decision.stop or evidence is None or not getattr(rule, "needs_evidence", True):
        return decision
    return StopDecision(False, decision.rule,
                        f"{NOT_ENOUGH}: {decision.reason}; but {evidence}", decision.value)


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

    While ``state.evidence`` says the eval set cannot back a stop, every rule with
    ``needs_evidence`` (all but the budget; a plain callable counts as needing it)
    that would stop says "not enough evidence yet" instead, and so does the report.
    """
    if combine not in ("any", "all"):
        raise InputError(f"combine must be 'any' or 'all', got {combine!r}")
    if state is None:
        state = StoppingState(**context)
    elif context:
        raise InputError("pass either a StoppingState or its fields, not both")
    decisions = [_gated(rule, rule(state), state.evidence) for rule in rules]
    if not decisions:
        return StoppingReport(False, "no stopping rule selected", [])
    firing = [d for d in decisions if d.stop]
    stop = bool(firing) if combine == "any" else len(firing) == len(decisions)
    if stop:
        reason = "stop: " + "; ".join(f"{d.rule}: {d.reason}" for d in firing)
    elif any(d.reason.startswith(NOT_ENOUGH) for d in decisions):
        held = [d for d in decisions if d.reason.startswith(NOT_ENOUGH)]
        reason = NOT_ENOUGH + ": " + "; ".join(
            f"{d.rule}: {d.reason[len(NOT_ENOUGH) + 2:]}" for d in held)
    else:
        waiting = [d for d in decisions if not d.stop]
        reason = "continue: " + "; ".join(f"{d.rule}: {d.reason}" for d in waiting)
    return StoppingReport(stop, reason, decisions)
