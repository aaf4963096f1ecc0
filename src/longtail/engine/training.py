"""The train use case: fit the project's learner on every labeled pool sample, save it
with its spec, score it on the managed eval set, and update the lift and stopping view."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.costs.ledger import phase
from longtail.crashpoints import crashpoint
from longtail.engine import views
from longtail.engine.models import load_model, model_arrays, saved_spec
from longtail.engine.records import Record
from longtail.engine.settings import Settings, learner_spec
from longtail.errors import ProjectError
from longtail.store import Store, UnitOfWork

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
    # Pseudo-labels the fit added ({method, n, ratio, min_confidence}); None when off.
    pseudo_labels: dict[str, Any] | None = None


def train(store: Store, settings: Settings, *, encoder: str | None = None,
          warm_start: bool = True, learner: str | None = None,
          learner_params: dict | None = None, force: bool = False,
          mlflow: str | bool | None = None) -> TrainReport:
    """The `train` command: `fit_and_record` in one unit of work, committed once (the
    model, its metrics, the rounds' lifts and the lift and ROI settings together), then
    the MLflow run when tracking is on (`mlflow` here: True for the setting or else the
    project's mlruns/, a directory or a URI, False for off), also for a model a killed
    train left unlogged."""
    track = (settings.mlflow if mlflow is None else None if mlflow is False
             else (settings.mlflow or "local") if mlflow is True else mlflow)
    if track is not None:
        from longtail.engine.tracking import require_mlflow

        require_mlflow()  # before any work: a missing extra changes nothing
    with store.unit_of_work() as uow:
        report = fit_and_record(uow, settings, encoder=encoder, warm_start=warm_start,
                                learner=learner, learner_params=learner_params, force=force)
    if not report.skipped:
        crashpoint("train:after_commit")
    if track is None:
        return report
    from longtail.engine.tracking import log_model

    report.mlflow_run = log_model(store, settings, report.model_id, report.to_dict(), track)
    return report


def fit_and_record(uow: UnitOfWork, settings: Settings, *, encoder: str | None = None,
                   warm_start: bool = True, learner: str | None = None,
                   learner_params: dict | None = None, force: bool = False) -> TrainReport:
    """Fit on every labeled pool sample (eval samples never), warm-started from the
    latest model when it is the same learner on the same vectors; record the model, score
    it on the managed eval set and update the lifts, all through `uow` (the caller
    commits). With nothing new since the latest model (same labels, learner and
    vectors) nothing is trained unless `force`: the result says so and no model is
    added."""
    from longtail.learners import make_learner

    vs = views.vectors(uow, settings, encoder, complete=False)
    rows, y = views.labeled(uow, "pool")
    rows_ok = rows < vs.n_rows
    if not rows_ok.all():
        rows, y = rows[rows_ok], y[rows_ok]
    if len(rows) == 0:
        raise ProjectError("no labeled pool samples yet: import labels first "
                           "(`longtail import-labels FILE`)")
    spec = learner_spec(settings, learner, learner_params).to_dict()
    fingerprint = views.labels_fingerprint(rows, y)
    latest = uow.models.latest()
    # What the latest model was made with, read from its file once.
    saved = saved_spec(uow, latest) if latest is not None else None
    same_kind = (saved is not None and latest["encoder"] == vs.directory.name
                 and {"learner": saved.learner, "params": saved.params} == spec)
    if same_kind and not force:
        if saved.labels_fingerprint == fingerprint:
            skipped = TrainReport(model_id=latest["id"], labels=int(len(rows)), skipped=True,
                                  reason=f"nothing new to train on (model {latest['id']}); "
                                         "--force trains anyway")
            if not any(m["model_id"] == latest["id"] for m in uow.metrics.list()):
                # A model an older version committed apart from its scoring, killed in
                # between: finish it.
                skipped = _score(uow, settings, latest["id"], skipped)
            return skipped
    from longtail.learners.persist import warm_starts

    model = None
    if warm_start and same_kind:
        previous = load_model(uow, latest)
        # Only a learner that continues from its state (the linear head) is refitted in
        # place; any other is trained from scratch each round.
        model = previous if warm_starts(previous) else None
    if model is None:
        model = make_learner(spec["learner"], **spec["params"])
    t0 = time.perf_counter()
    with phase("train"):
        X_lab = vs.read(rows)
        model.fit(X_lab, y.astype(str))
        pseudo = _pseudo_fit(uow, settings, vs, model, X_lab, y.astype(str))
    fit_seconds = time.perf_counter() - t0
    arrays = model_arrays(model, {**spec, "labels_fingerprint": fingerprint}).arrays
    model_id = uow.models.add(spec["learner"], vs.directory.name, len(rows),
                              list(model.classes_), arrays, fit_seconds)
    report = TrainReport(model_id=model_id, labels=int(len(rows)),
                         classes=int(len(model.classes_)), learner=spec["learner"],
                         fit_seconds=round(fit_seconds, 4), pseudo_labels=pseudo)
    report = _score(uow, settings, model_id, report)
    crashpoint("train:in_tx")
    return report


# `train` leaves a small pool's cross-fitted estimate (about CROSSFIT_FOLDS more fits) to
# `longtail evaluate` when that would add more than this many seconds: with the small CNN
# it was 60% of each `train` (bench/images.py); a linear head's fits take well under 1 s.
CROSSFIT_IN_TRAIN_SECONDS = 10.0
CROSSFIT_FOLDS = 5

PSEUDO_SAMPLE = 20_000  # unlabeled rows pseudo-labeling looks at, at most (seeded)


def _pseudo_fit(uow: UnitOfWork, settings: Settings, vs: Any, model: Any, X_lab: np.ndarray,
                y_lab: np.ndarray) -> dict[str, Any] | None:
    """With the `pseudo_labels` setting on: pseudo-label a seeded sample of unlabeled
    pool rows (learners/semi.py) and fit `model` again on labels ∪ pseudo-labels. The
    pseudo-labels live only in this fit: never written, never counted as labels."""
    if settings.pseudo_labels == "off" or len(getattr(model, "classes_", ())) < 2:
        return None
    from longtail.learners.semi import pseudo_labels

    candidates = views.candidates(uow, uow.labels.current())
    candidates = candidates[candidates < vs.n_rows]
    rng = np.random.default_rng([settings.seed, len(X_lab)])
    if len(candidates) > PSEUDO_SAMPLE:
        candidates = np.sort(rng.choice(candidates, size=PSEUDO_SAMPLE, replace=False))
    X_unl = vs.read(candidates)
    pl = pseudo_labels(settings.pseudo_labels, predict_proba=model.predict_proba,
                       classes=np.asarray(model.classes_), X_lab=X_lab, y_lab=y_lab,
                       X_unlab=X_unl, ratio=settings.pseudo_ratio,
                       min_confidence=settings.pseudo_min_confidence)
    weighted = _takes_weights(model)
    if len(pl):
        X_fit = np.concatenate([X_lab, X_unl[pl.positions]])
        y_fit = np.concatenate([y_lab, pl.labels.astype(str)])
        if weighted:
            w = np.concatenate([np.ones(len(X_lab)), np.full(len(pl), settings.pseudo_weight)])
            model.fit(X_fit, y_fit, sample_weight=w)
        else:
            model.fit(X_fit, y_fit)
    return {"method": pl.method, "n": len(pl), "looked_at": int(len(candidates)),
            "ratio": settings.pseudo_ratio, "min_confidence": settings.pseudo_min_confidence,
            "weight": settings.pseudo_weight if weighted else 1.0}


def _takes_weights(model: Any) -> bool:
    """Whether the learner's own `fit` takes per-row weights (the torch learners)."""
    import inspect

    try:
        return "sample_weight" in inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False


def _score(uow: UnitOfWork, settings: Settings, model_id: int, report: TrainReport
           ) -> TrainReport:
    """Score the model on the managed eval set and update lift and stopping."""
    from longtail.engine import evaluation

    fit = report.fit_seconds or 0.0
    with phase("evaluate"):
        ev = evaluation.evaluate(uow, settings, model_id=model_id, crossfit=(
            fit * (CROSSFIT_FOLDS - 1) <= CROSSFIT_IN_TRAIN_SECONDS))
        if ev is not None:
            report.eval = ev
            report.stopping = evaluation.stopping(uow, settings).reason
            lifted = evaluation.update_round_lifts(uow, settings)
            arms = evaluation.arm_lift(uow, settings)
            uow.settings.set("arm_lift", arms.to_dict() if arms else None)
            summary = evaluation.combine_lifts(uow)
            uow.settings.set("lift_summary", summary.to_dict() if summary else None)
            if summary:
                report.lift = {**summary.to_dict(), "new_rounds": lifted}
            from longtail.engine.roi import roi_summary

            money = roi_summary(uow, settings)  # issue 29: saving in money, or None
            uow.settings.set("roi_summary", money.to_dict() if money else None)
            if money:
                shown = money.to_dict()
                report.roi = {k: shown[k] for k in ("saving", "lo", "hi", "verdict")}
    return report


@dataclass(frozen=True)
class ReleaseReport(Record):
    """`longtail train --release`: the model to ship, fitted on every label paid for,
    with its accuracy by cross-fitting over the eval set (`metrics`, None with fewer than
    2 labeled eval samples) and how it was estimated."""

    release_id: int
    learner: str
    params: dict[str, Any]
    encoder: str
    labels: int
    pool_labels: int
    eval_labels: int
    classes: list[str]
    fit_seconds: float
    estimate: str
    metrics: dict[str, Any] | None


def train_release(store: Store, settings: Settings, *, encoder: str | None = None,
                  learner: str | None = None, learner_params: dict | None = None,
                  folds: int = 5) -> ReleaseReport:
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

    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
        pool_rows, pool_y = views.labeled(uow, "pool")
        eval_rows, eval_y = views.labeled(uow, "eval")
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
    release_id = save_release(store.root, model_arrays(model, spec).arrays, info)
    return ReleaseReport(release_id=release_id, **info)
