"""The train use case: fit the project's learner on every labeled pool sample, save it
with its spec, score it on the managed eval set, and update the lift and stopping view."""

from __future__ import annotations

import time
from typing import Any

from longtail.engine import views
from longtail.engine.models import load_model, model_arrays, model_spec, saved_spec
from longtail.engine.settings import Settings
from longtail.errors import ProjectError


def train(store: Any, settings: Settings, *, encoder: str | None = None,
          warm_start: bool = True, learner: str | None = None,
          learner_params: dict | None = None, force: bool = False) -> dict:
    """Fit on every labeled pool sample (eval samples never), warm-started from the
    latest model when it is the same learner on the same vectors. With nothing new since
    the latest model (same labels, learner and vectors) nothing is trained unless
    `force`: the result says so and no model is added."""
    from longtail.learners import make_learner

    vs = views.vectors(store, settings, encoder, complete=False)
    rows, y = views.labeled(store, "pool")
    rows_ok = rows < vs.n_rows
    if not rows_ok.all():
        rows, y = rows[rows_ok], y[rows_ok]
    if len(rows) == 0:
        raise ProjectError("no labeled pool samples yet: import labels first "
                           "(`longtail import-labels FILE`)")
    spec = {"learner": learner or settings.learner,
            "params": dict(learner_params if learner_params is not None
                           else (settings.learner_params if learner is None else {}))}
    fingerprint = _label_fingerprint(rows, y)
    latest = store.latest_model()
    if latest is not None and not force:
        same = (latest["encoder"] == vs.directory.name and model_spec(store, latest) == spec
                and _fingerprint_of(store, latest) == fingerprint)
        if same:
            return {"skipped": True, "model_id": latest["id"], "labels": int(len(rows)),
                    "reason": f"nothing new to train on (model {latest['id']}); "
                              "--force trains anyway"}
    from longtail.learners.persist import warm_starts

    model = None
    if warm_start and latest is not None and latest["encoder"] == vs.directory.name \
            and model_spec(store, latest) == spec:
        previous = load_model(store, latest)
        # Only a learner that continues from its state (the linear head) is refitted in
        # place; any other is trained from scratch each round.
        model = previous if warm_starts(previous) else None
    if model is None:
        model = make_learner(spec["learner"], **spec["params"])
    t0 = time.perf_counter()
    model.fit(vs.read(rows), y.astype(str))
    fit_seconds = time.perf_counter() - t0
    arrays = model_arrays(model, {**spec, "labels_fingerprint": fingerprint})
    model_id = store.save_model(spec["learner"], vs.directory.name, len(rows),
                                list(model.classes_), arrays, fit_seconds)
    report: dict[str, Any] = {"model_id": model_id, "labels": int(len(rows)),
                              "classes": int(len(model.classes_)), "learner": spec["learner"],
                              "fit_seconds": round(fit_seconds, 4)}
    from longtail.engine import evaluation

    ev = evaluation.evaluate(store, settings, model_id=model_id)
    if ev is not None:
        report["eval"] = ev
        report["stopping"] = evaluation.stopping(store, settings)["reason"]
        lifted = evaluation.update_round_lifts(store, settings)
        store.set_setting("arm_lift", evaluation.arm_lift(store, settings))
        summary = evaluation.lift_summary(store)
        store.set_setting("lift_summary", summary)
        if summary:
            report["lift"] = {**summary, "new_rounds": lifted}
    return report


def _label_fingerprint(rows: Any, y: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for r, lab in zip(rows.tolist(), y.tolist(), strict=True):
        h.update(f"{r}\x00{lab}\x01".encode())
    return h.hexdigest()


def _fingerprint_of(store: Any, meta: dict) -> str | None:
    return saved_spec(store, meta).get("labels_fingerprint")
