"""Typed results of the evaluation use cases (`longtail.engine.evaluation`): eval
reports, learning curves, lifts, forecasts, stopping answers. A module of its own so
that readers of recorded results (`status`, the service's schemas) import no estimator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from longtail.engine.records import Record

MANAGED = "managed:v"  # a managed eval set's name is MANAGED + its version id


def managed_eval_set(version: int) -> str:
    """The name metrics on managed eval version `version` are recorded under."""
    return f"{MANAGED}{int(version)}"


@dataclass(frozen=True)
class Confusion(Record):
    """Counts of (true, predicted) label pairs: rows are the true labels, in `labels`
    order, columns the predicted ones."""

    labels: list[str]
    matrix: list[list[int]]


@dataclass(frozen=True)
class Scores(Record):
    """A model's figures on one labeled set: the scalars with their intervals
    ({value, lo, hi}), per-class precision, recall, F1 and support, the confusion
    matrix, and how each interval was computed."""

    n: int
    level: float
    accuracy: dict[str, float | None]
    macro_f1: dict[str, float | None]
    worst_class_recall: dict[str, float | None]
    per_class: dict[str, dict[str, float]]
    confusion: Confusion
    interval_method: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: dict[str, Any], confusion: Confusion) -> Scores:
        """From `evaluate_predictions`' figures."""
        return cls(n=int(metrics["n"]), level=float(metrics["level"]),
                   accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"],
                   worst_class_recall=metrics["worst_class_recall"],
                   per_class=metrics["per_class"], confusion=confusion,
                   interval_method=dict(metrics.get("interval_method") or {}))


@dataclass(frozen=True)
class ManagedEstimate(Record):
    """A model's accuracy on the whole managed eval split by the project's estimator
    (`estimator`: "ppi" or "uniform"; `method` the one that gave the figure): the value
    and its 95% interval, the eval labels it stood on, the split's size (`population`),
    the per-label sd (`sd1`), the plain labeled mean beside it (`uniform`), and whether the
    exact interval replaced a large-sample one that does not hold (`small_n_fallback`)."""

    estimator: str
    method: str
    value: float
    lo: float
    hi: float
    halfwidth: float
    n_labels: int
    sd1: float
    note: str
    population: int
    model_id: int
    uniform: dict[str, Any]
    small_n_fallback: bool

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManagedEstimate:
        """From `to_dict()` (the cached form)."""
        return cls(**{f: d[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EvalReport(Record):
    """`evaluate`: a model's figures on the managed eval set (`eval_version` its version)
    or on a labeled test file (`eval_set` "file:<sha256 prefix>", no version), with the
    project's estimate over the whole eval split and warnings about small sets."""

    eval_set: str
    eval_version: int | None
    n: int
    model_id: int
    accuracy: dict[str, float | None]
    macro_f1: dict[str, float | None]
    worst_class_recall: dict[str, float | None]
    per_class: dict[str, dict[str, float]]
    confusion: Confusion
    warnings: list[str]
    estimate: ManagedEstimate | None = None
    # A small pool (the eval split cannot reach its target size): what the eval set
    # resolves, and the estimate from every labeled row by cross-fitting.
    resolution: dict[str, Any] | None = None
    crossfit: dict[str, Any] | None = None

    OPTIONAL = ("resolution", "crossfit")


@dataclass(frozen=True)
class CurvePoint(Record):
    """One model's metric (with its interval) at its label count, on one eval version."""

    model_id: int | None
    n_labels: int
    value: float
    lo: float | None
    hi: float | None
    eval_set: str
    eval_version: int


@dataclass(frozen=True)
class LearningCurves(Record):
    """`current`: every model on the latest eval version; `as_of`: each model on the eval
    set as it was when the model was trained. Both by labels."""

    current: list[CurvePoint]
    as_of: list[CurvePoint]
    eval_set: str | None
    eval_version: int | None


@dataclass(frozen=True)
class ArmLift(Record):
    """The run against random at equal label count: the lift with its interval, both
    arms' accuracy, how the random arm was drawn (`method`: control or crossfit), and
    the estimator of its eval part (`estimator`: the accuracy's, "ppi" or "uniform",
    on `eval_labels` labeled eval rows; `note` says why when it differs from the one
    the project asks for)."""

    lift: float
    lo: float
    hi: float
    level: float
    n_labels: int
    acc_selected: float
    acc_control: float
    eval_set: str
    method: str
    pool: int
    verdict: str
    estimator: str = "uniform"
    eval_labels: int = 0
    note: str = ""


@dataclass(frozen=True)
class LiftSummary(Record):
    """The lift of selection over random: at equal label count (`equal_count`, an
    `ArmLift` as recorded) and the per-round marginal lifts combined (`per_round`)."""

    OPTIONAL = ("per_round",)

    equal_count: dict[str, Any] | None
    verdict: str
    per_round: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiftSummary:
        return cls(equal_count=d.get("equal_count"), verdict=str(d.get("verdict", "")),
                   per_round=d.get("per_round"))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        # The JSON order of earlier releases: equal_count, per_round, verdict.
        return {k: out[k] for k in ("equal_count", "per_round", "verdict") if k in out}


@dataclass(frozen=True)
class TargetAnswer(Record):
    """Labels to a target accuracy: whether it is reached, whether the eval set shows it,
    the total labels and the labels still to buy (`n`, `lo`, `hi`; None for "possibly
    never"), and a note when the curve and the eval set disagree."""

    target: float
    reached: bool
    shown: bool
    labels_to_target: dict[str, float | None]
    more_labels: dict[str, float | None]
    note: str | None = None


@dataclass(frozen=True)
class ForecastReport(Record):
    """The learning curve fitted on the current eval version: the expected gain of the
    next batch and, with a target, the labels needed to reach it (with intervals),
    whether it is reached and whether the eval set shows it."""

    OPTIONAL = ("target", "reached", "shown", "labels_to_target", "more_labels", "note")

    metric: str
    labels_now: int
    points: int
    curve: dict[str, Any]
    next_batch: int
    expected_gain: dict[str, float]
    level: float
    target: float | None = None
    reached: bool | None = None
    shown: bool | None = None
    labels_to_target: dict[str, float | None] | None = None
    more_labels: dict[str, float | None] | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.target is not None:
            out["note"] = self.note  # said, even when None, once there is a target
        return out


@dataclass(frozen=True)
class StoppingAnswer(Record):
    """Whether to stop, why, each stopping rule's own answer, and whether the eval set
    holds enough evidence to judge (what it still needs)."""

    stop: bool
    reason: str
    rules: list[dict[str, Any]]
    evidence: dict[str, Any]
