"""The report use case: everything `longtail report` draws, as plain data (no HTML here:
`longtail.report.html` renders it).

Sections are built by the functions in ``SECTIONS``, in order, each
``f(store, settings, ctx) -> dict | None`` (None leaves the section out); ``ctx`` holds
what several sections share (the pool's signals). A later issue adds its section (cost
curves) by appending to ``SECTIONS`` and giving ``longtail.report.html`` a renderer of
the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.engine.records import Record, RoundLog
from longtail.engine.settings import Settings
from longtail.store import Store

MAP_SAMPLE = 2_000  # rows of the pool drawn on the 2-D map


def _curves(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """Learning curves (accuracy and macro-F1 on the managed eval set, with intervals)
    and the random arm's points (each round's control arm, and the lift verdict's)."""
    from longtail.engine.evaluation import learning_curves

    random_arm = []
    with store.reading() as uow:
        curves = {m: [p.to_dict() for p in learning_curves(uow, m).current]
                  for m in ("accuracy", "macro_f1")}
        for r in uow.rounds.list():
            lift = RoundLog.from_dict(r["log"]).lift or {}
            if lift.get("acc_control") is not None and lift.get("n_labels"):
                random_arm.append({"n_labels": int(r["n_labels"]) + int(lift["n_labels"]),
                                   "value": float(lift["acc_control"]), "source": f"round {r['id']}"})
        arm = uow.settings.get("arm_lift")
    if arm and arm.get("acc_control") is not None:
        random_arm.append({"n_labels": int(arm["n_labels"]), "value": float(arm["acc_control"]),
                           "source": "lift verdict (" + str(arm.get("method")) + ")"})
    if not any(curves.values()) and not random_arm:
        return None
    return {"curves": curves, "random_arm": sorted(random_arm, key=lambda p: p["n_labels"])}


def _lift(store: Store, settings: Settings, ctx: dict) -> dict | None:
    from longtail.engine.evaluation import combine_lifts

    with store.reading() as uow:
        summary = combine_lifts(uow)
    return summary.to_dict() if summary else None


def _classes(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """Labeled pool samples per class against the pool's predicted class counts."""
    sig = ctx["signals"]
    lab_rows = sig.rows[sig.labeled]
    labeled: dict[str, int] = {}
    for r in lab_rows.tolist():
        labeled[sig.labels[r]] = labeled.get(sig.labels[r], 0) + 1
    predicted: dict[str, int] = {}
    if sig.predicted is not None:
        names, counts = np.unique(sig.predicted.astype(str), return_counts=True)
        predicted = dict(zip(names.tolist(), counts.tolist(), strict=True))
    if not labeled and not predicted:
        return None
    classes = sorted(set(labeled) | set(predicted),
                     key=lambda c: (-predicted.get(c, 0), -labeled.get(c, 0), c))
    return {"classes": classes, "labeled": [labeled.get(c, 0) for c in classes],
            "pool_predicted": [predicted.get(c, 0) for c in classes],
            "pool_rows": int(len(sig.rows))}


def _map(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """A 2-D projection (PCA fitted on the sample) of up to MAP_SAMPLE pool rows with
    each row's state, predicted class, predicted error and novelty."""
    from longtail.engine import views

    sig = ctx["signals"]
    n = len(sig.rows)
    if n < 3:
        return None
    rng = np.random.default_rng(settings.seed)
    # labeled rows are few and what people look for: keep up to a quarter of the sample
    lab_pos = np.flatnonzero(sig.labeled)
    lab_take = rng.permutation(lab_pos)[:MAP_SAMPLE // 4]
    rest = np.flatnonzero(~sig.labeled)
    rest_take = rng.permutation(rest)[:MAP_SAMPLE - len(lab_take)]
    pos = np.sort(np.concatenate([lab_take, rest_take]))
    with store.reading() as uow:
        vs = views.vectors(uow, settings, sig.encoder, complete=False)
    X = vs.read(sig.rows[pos]).astype(np.float64)
    X -= X.mean(axis=0)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    xy = X @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.column_stack([xy, np.zeros(len(xy))])
    out = {"x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
           "rows": sig.rows[pos].tolist(),
           "state": ["labeled" if b else "unlabeled" for b in sig.labeled[pos].tolist()],
           "label": [sig.labels.get(int(r)) for r in sig.rows[pos].tolist()],
           "pool_rows": n}
    if sig.predicted is not None:
        out["predicted"] = sig.predicted[pos].astype(str).tolist()
        out["error"] = np.round(1.0 - sig.confidence[pos], 4).tolist()
    if sig.novelty is not None:
        out["novelty"] = np.round(sig.novelty[pos], 4).tolist()
    return out


def _slices(store: Store, settings: Settings, ctx: dict) -> dict | None:
    from longtail.engine.discovery import slices

    return slices(store, settings, limit=10, examples=3, sig=ctx["signals"]).to_dict()


def _rounds(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """Rounds (strategy, arm, size, labeled) and dataset versions."""
    from longtail.engine.rounds import list_rounds

    with store.reading() as uow:
        versions = [{"id": v["id"], "created_at": str(v.get("created_at")),
                     "reason": v.get("reason"), "round_id": v.get("round_id"),
                     "n_labeled": v.get("n_labeled"), "n_samples": v.get("n_samples")}
                    for v in uow.versions.list()]
        rounds = [r.to_dict() for r in list_rounds(uow)]
    if not rounds and not versions:
        return None
    return {"rounds": rounds, "versions": versions}


def _triggers(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """Standing triggers and their hits (none until a trigger is saved)."""
    with store.reading() as uow:
        saved = uow.settings.get("triggers") or []
        queue = uow.settings.get("discovery_queue") or []
    if not saved and not queue:
        return None
    by_source: dict[str, int] = {}
    for it in queue:
        by_source[it["source"]] = by_source.get(it["source"], 0) + 1
    return {"triggers": saved, "queued_by_source": by_source}


def _transfer(store: Store, settings: Settings, ctx: dict) -> dict | None:
    """`longtail transfer`'s results: selection's gain for other model families, one per
    learner (none until `transfer` ran)."""
    from longtail.engine.transfer import recorded

    with store.reading() as uow:
        results = [r.to_dict() for r in recorded(uow)]
    return {"results": results} if results else None


Section = Callable[[Any, Settings, dict], "dict | None"]
SECTIONS: list[tuple[str, Section]] = [
    ("curves", _curves), ("lift", _lift), ("transfer", _transfer), ("classes", _classes), ("map", _map),
    ("slices", _slices), ("triggers", _triggers), ("rounds", _rounds),
    # ("costs", ...): the money issue's cost curves go here
]


@dataclass
class ReportData(Record):
    """What the report draws: the project's headline counts and each section's data by
    section name (in ``SECTIONS`` order; sections without data left out). ``to_dict()``
    is the renderer's input: ``{"project": ..., **sections}``."""

    project: dict[str, Any]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, **self.sections}


def report_data(store: Store, settings: Settings, *, encoder: str | None = None
                ) -> ReportData:
    """Every section's data, keyed by section name (absent sections left out), with the
    project's headline counts."""
    from longtail.engine.discovery import pool_signals
    from longtail.engine.status import status

    head = status(store, settings).to_dict()
    ctx = {"signals": pool_signals(store, settings, encoder=encoder)}
    out = ReportData(project={k: head[k] for k in (
        "project", "samples", "pool", "eval", "labeled_pool", "labeled_eval", "rounds",
        "models", "verdict", "metrics", "encoder")})
    for name, fn in SECTIONS:
        data = fn(store, settings, ctx)
        if data is not None:
            out.sections[name] = data
    return out
