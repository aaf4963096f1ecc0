"""The train use case: fit the project's learner on every labeled pool sample, save it
with its spec, score it on the managed eval set, and update the lift and stopping view."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from longtail.costs.ledger import phase
from longtail.engine import views
from longtail.engine.models import load_model, model_arrays, saved_spec
from longtail.engine.records import Record
from longtail.engine.settings import Settings, learner_spec
from longtail.errors import ProjectError

if TYPE_CHECKING:
    from longtail.engine.eval_records import EvalReport


@dataclass
class TrainReport(Record):
    """`train`: the model (new, or the latest when `skipped` because nothing changed,
    with the `reason`), its labels, classes, learner and fit time; once the eval set has
    labels its figures (`eval`), the stopping verdict, the lift and the money saved; the
    MLflow run when tracking is on. Parts a train did not produce stay out of `to_dict`."""

    OPTIONAL = ("classes", "learner", "fit_seconds", "skipped", "reason", "eval", "stopping",
                "lift", "roi", "mlflow_run")

    model_id: int
    labels: int
    classes: int | None = None
    learner: str | None = None
    fit_seconds: float | None = None
    skipped: bool | None = None
    reason: str | None = None
    eval: EvalReport | None = None
    stopping: str | None = None
    lift: dict[str, Any] | None = None
    roi: dict[str, Any] | None = None
    mlflow_run: str | None = None


def train(store: Any, settings: Settings, *, encoder: str | None = None,
          warm_start: bool = True, learner: str | None = None,
          learner_params: dict | None = None, force: bool = False,
          mlflow: str | bool | None = None) -> TrainReport:
    """Fit on every labeled pool sample (eval samples never), warm-started from the
    latest model when it is the same learner on the same vectors. With nothing new since
    the latest model (same labels, learner and vectors) nothing is trained unless
    `force`: the result says so and no model is added. With tracking on (the `mlflow`
    setting; `mlflow` here: True for the setting or else the project's mlruns/, a
    directory or a URI, False for off) the model is logged to MLflow
    (`engine.tracking`), also one a killed train left unlogged."""
    from longtail.learners import make_learner

    track = (settings.mlflow if mlflow is None else None if mlflow is False
             else (settings.mlflow or "local") if mlflow is True else mlflow)
    if track is not None:
        from longtail.engine.tracking import require_mlflow

        require_mlflow()  # before any work: a missing extra changes nothing

    vs = views.vectors(store, settings, encoder, complete=False)
    rows, y = views.labeled(store, "pool")
    rows_ok = rows < vs.n_rows
    if not rows_ok.all():
        rows, y = rows[rows_ok], y[rows_ok]
    if len(rows) == 0:
        raise ProjectError("no labeled pool samples yet: import labels first "
                           "(`longtail import-labels FILE`)")
    spec = learner_spec(settings, learner, learner_params).to_dict()
    fingerprint = views.labels_fingerprint(rows, y)
    latest = store.latest_model()
    # What the latest model was made with, read from its file once.
    saved = saved_spec(store, latest) if latest is not None else {}
    same_kind = (latest is not None and latest["encoder"] == vs.directory.name
                 and {"learner": saved["learner"], "params": saved.get("params", {})} == spec)
    if same_kind and not force:
        if saved.get("labels_fingerprint") == fingerprint:
            skipped = TrainReport(model_id=latest["id"], labels=int(len(rows)), skipped=True,
                                  reason=f"nothing new to train on (model {latest['id']}); "
                                         "--force trains anyway")
            if not any(m["model_id"] == latest["id"] for m in store.metrics()):
                # A train killed between its model's commit and its scoring: finish it.
                skipped = _score(store, settings, latest["id"], skipped)
            return _track(store, settings, latest["id"], skipped, track)
    from longtail.learners.persist import warm_starts

    model = None
    if warm_start and same_kind:
        previous = load_model(store, latest)
        # Only a learner that continues from its state (the linear head) is refitted in
        # place; any other is trained from scratch each round.
        model = previous if warm_starts(previous) else None
    if model is None:
        model = make_learner(spec["learner"], **spec["params"])
    t0 = time.perf_counter()
    with phase("train"):
        model.fit(vs.read(rows), y.astype(str))
    fit_seconds = time.perf_counter() - t0
    arrays = model_arrays(model, {**spec, "labels_fingerprint": fingerprint})
    model_id = store.save_model(spec["learner"], vs.directory.name, len(rows),
                                list(model.classes_), arrays, fit_seconds)
    report = TrainReport(model_id=model_id, labels=int(len(rows)),
                         classes=int(len(model.classes_)), learner=spec["learner"],
                         fit_seconds=round(fit_seconds, 4))
    return _track(store, settings, model_id, _score(store, settings, model_id, report), track)


def _track(store: Any, settings: Settings, model_id: int, report: TrainReport,
           track: str | None) -> TrainReport:
    """Log the model to MLflow when tracking is on (once per model)."""
    if track is None:
        return report
    from longtail.engine.tracking import log_model

    report.mlflow_run = log_model(store, settings, model_id, report.to_dict(), track)
    return report


def _score(store: Any, settings: Settings, model_id: int, report: TrainReport) -> TrainReport:
    """Score the model on the managed eval set and update lift and stopping."""
    from longtail.engine import evaluation

    with phase("evaluate"):
        ev = evaluation.evaluate(store, settings, model_id=model_id)
        if ev is not None:
            report.eval = ev
            report.stopping = evaluation.stopping(store, settings).reason
            lifted = evaluation.update_round_lifts(store, settings)
            arms = evaluation.arm_lift(store, settings)
            store.set_setting("arm_lift", arms.to_dict() if arms else None)
            summary = evaluation.combine_lifts(store)
            store.set_setting("lift_summary", summary.to_dict() if summary else None)
            if summary:
                report.lift = {**summary.to_dict(), "new_rounds": lifted}
            from longtail.engine.roi import roi_summary

            money = roi_summary(store, settings)  # issue 29: saving in money, or None
            store.set_setting("roi_summary", money)
            if money:
                report.roi = {k: money[k] for k in ("saving", "lo", "hi", "verdict")}
    return report


def train_release(store: Any, settings: Settings, *, encoder: str | None = None,
                  learner: str | None = None, learner_params: dict | None = None,
                  folds: int = 5) -> dict:
    """The model to ship: fitted on every label paid for (pool, eval and control), and
    its accuracy measured by cross-fitting over the eval set — each eval fold is
    predicted by a model fitted on all the other labels, so no eval sample scores a
    model that saw it. Saved apart from the loop's models (`longtail.store.releases`),
    which never train on eval rows. O(folds) fits."""
    import numpy as np

    from longtail.evaluation import evaluate_predictions
    from longtail.learners import make_learner
    from longtail.learners.crossfit import cross_fit_probs
    from longtail.store.releases import save_release

    vs = views.vectors(store, settings, encoder, complete=False)
    pool_rows, pool_y = views.labeled(store, "pool")
    eval_rows, eval_y = views.labeled(store, "eval")
    keep_p, keep_e = pool_rows < vs.n_rows, eval_rows < vs.n_rows
    pool_rows, pool_y, eval_rows, eval_y = (pool_rows[keep_p], pool_y[keep_p],
                                            eval_rows[keep_e], eval_y[keep_e])
    if len(pool_rows) + len(eval_rows) == 0:
        raise ProjectError("no labels yet: import labels first (`longtail import-labels FILE`)")
    spec = learner_spec(settings, learner, learner_params, from_scratch=True).to_dict()
    X_pool, X_eval = vs.read(pool_rows), vs.read(eval_rows)
    y_pool, y_eval = pool_y.astype(str), eval_y.astype(str)
    accuracy = None
    k = min(int(folds), len(eval_rows))
    if k >= 2:
        rng = np.random.default_rng([settings.seed, len(eval_rows), 7])
        fold_of = rng.permutation(len(eval_rows)) % k
        classes = np.unique(np.concatenate([y_pool, y_eval]))
        probs = cross_fit_probs(lambda: make_learner(spec["learner"], **spec["params"]),
                                X_eval, y_eval, fold_of, classes=classes,
                                X_extra=X_pool, y_extra=y_pool)
        pred = classes[probs.argmax(1)]
        scored = evaluate_predictions(y_eval, pred.astype(str), n_boot=1000, seed=settings.seed)
        accuracy = {key: scored[key] for key in ("accuracy", "macro_f1", "worst_class_recall")}
    t0 = time.perf_counter()
    model = make_learner(spec["learner"], **spec["params"])
    model.fit(np.concatenate([X_pool, X_eval]), np.concatenate([y_pool, y_eval]))
    fit_seconds = time.perf_counter() - t0
    info = {"learner": spec["learner"], "params": spec["params"], "encoder": vs.directory.name,
            "labels": int(len(pool_rows) + len(eval_rows)), "pool_labels": int(len(pool_rows)),
            "eval_labels": int(len(eval_rows)), "classes": [str(c) for c in model.classes_],
            "fit_seconds": round(fit_seconds, 4),
            "estimate": (f"{k}-fold cross-fitting over the {len(eval_rows)} labeled eval samples"
                         if accuracy else "none: fewer than 2 labeled eval samples"),
            "metrics": accuracy}
    release_id = save_release(store.root, model_arrays(model, spec), info)
    return {"release_id": release_id, **info}
