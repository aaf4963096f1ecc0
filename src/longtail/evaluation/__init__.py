"""Honest evaluation inside the loop: metrics with intervals, the managed eval
split, the control-arm lift over random, learning-curve forecasts and stopping
rules. Pure functions on arrays; the project wires them to the store."""

from longtail._lazy import lazy_exports

_SOURCES = {
    "estimators": (
        "Estimate", "active_mean", "active_proposal", "crossfit_confidence", "lift_estimate",
        "neyman_allocation", "ppi_mean", "stratified_mean", "uniform_mean",
    ),
    "evalset": ("assign_eval", "eval_fill", "uniform_from_ids"),
    "forecast": ("Forecast", "LabelsNeeded", "LearningCurve", "fit_learning_curve", "power_law"),
    "lift": ("Lift", "crossfit_lift", "cumulative_lift", "round_lift", "verdict"),
    "metrics": ("evaluate_predictions", "interval_coverage", "proportion_interval"),
    "stopping": (
        "BudgetSpent", "ForecastGain", "RemainingGain", "StabilizingPredictions", "StopDecision",
        "StoppingReport", "StoppingState", "TargetReached", "budget_spent", "coded_kappa",
        "cohen_kappa",
        "eval_evidence", "evaluate_stopping", "forecast_gain", "remaining_gain", "stabilizing_predictions",
        "target_reached",
    ),
}
# Submodules (and scipy with them) load when a name is first used.
__getattr__, __dir__ = lazy_exports(__name__, _SOURCES)

__all__ = [
    "Estimate",
    "active_mean",
    "active_proposal",
    "crossfit_confidence",
    "lift_estimate",
    "neyman_allocation",
    "ppi_mean",
    "stratified_mean",
    "uniform_mean",
    "BudgetSpent",
    "Forecast",
    "ForecastGain",
    "LabelsNeeded",
    "LearningCurve",
    "Lift",
    "RemainingGain",
    "StabilizingPredictions",
    "StopDecision",
    "StoppingReport",
    "StoppingState",
    "TargetReached",
    "assign_eval",
    "budget_spent",
    "coded_kappa",
    "cohen_kappa",
    "crossfit_lift",
    "cumulative_lift",
    "eval_fill",
    "evaluate_predictions",
    "eval_evidence",
    "evaluate_stopping",
    "fit_learning_curve",
    "forecast_gain",
    "interval_coverage",
    "power_law",
    "proportion_interval",
    "remaining_gain",
    "round_lift",
    "stabilizing_predictions",
    "target_reached",
    "uniform_from_ids",
    "verdict",
]
