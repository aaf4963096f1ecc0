"""Honest evaluation inside the loop: metrics with intervals, the managed eval
split, the control-arm lift over random, learning-curve forecasts and stopping
rules. Pure functions on arrays; the project wires them to the store."""

from longtail.evaluation.evalset import assign_eval, eval_fill, uniform_from_ids
from longtail.evaluation.forecast import (
    Forecast,
    LabelsNeeded,
    LearningCurve,
    fit_learning_curve,
    power_law,
)
from longtail.evaluation.lift import Lift, cumulative_lift, round_lift, verdict
from longtail.evaluation.metrics import evaluate_predictions
from longtail.evaluation.stopping import (
    BudgetSpent,
    ForecastGain,
    StabilizingPredictions,
    StopDecision,
    StoppingReport,
    StoppingState,
    TargetReached,
    budget_spent,
    cohen_kappa,
    evaluate_stopping,
    forecast_gain,
    stabilizing_predictions,
    target_reached,
)

__all__ = [
    "BudgetSpent",
    "Forecast",
    "ForecastGain",
    "LabelsNeeded",
    "LearningCurve",
    "Lift",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingReport",
    "StoppingState",
    "TargetReached",
    "assign_eval",
    "budget_spent",
    "cohen_kappa",
    "cumulative_lift",
    "eval_fill",
    "evaluate_predictions",
    "evaluate_stopping",
    "fit_learning_curve",
    "forecast_gain",
    "power_law",
    "round_lift",
    "stabilizing_predictions",
    "target_reached",
    "uniform_from_ids",
    "verdict",
]
