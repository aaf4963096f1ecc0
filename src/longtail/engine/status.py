"""The status use case: counts, classes, rounds, latest metrics and the lift verdict.
Reads the catalog only: no model, no scipy, so `longtail status` starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from longtail.engine.eval_records import LiftSummary
from longtail.engine.records import Record
from longtail.engine.settings import SMALL_EVAL, Settings
from longtail.store import Store


@dataclass(frozen=True)
class MetricValue(Record):
    """A recorded metric of a model: its value with its 95% interval, the eval set it was
    measured on and the labels the model was trained on."""

    value: float
    lo: float | None
    hi: float | None
    eval_set: str
    n_labels: int


@dataclass(frozen=True)
class StatusReport(Record):
    """`longtail status`: counts by split, labels by class, vectors, rounds and models;
    the newest model's managed-eval figures (`metrics`) and test-file figures apart;
    the lift and money verdicts; what the eval set still needs; warnings; standing
    triggers and the discovery queue."""

    project: str
    samples: int
    pool: int
    eval: int
    labeled_pool: int
    labeled_eval: int
    annotations: int
    classes: dict[str, int]
    encoder: str | None
    vectors: dict[str, int]
    rounds: int
    open_rounds: int
    models: int
    metrics: dict[str, MetricValue]
    test_file_metrics: dict[str, MetricValue]
    eval_version: int | None
    lift: dict[str, Any] | None
    verdict: str
    eval_need: dict[str, Any]
    eval_resolution: dict[str, Any]  # what the eval split resolves, the rate the target needs
    control: dict[str, Any]
    spend: dict[str, Any] | None
    roi: dict[str, Any] | None
    money_verdict: str
    warnings: list[str]
    triggers: list[dict[str, Any]]
    queued: int
    # `longtail transfer`: selection's gain for other model families, one per learner.
    transfer: list[dict[str, Any]] = field(default_factory=list)
    # the newest model's accuracy by the project's estimator (engine/estimates.py), as
    # `train` recorded it: estimator, value, lo, hi, n_labels (eval labels), population
    # (eval-split rows), note; None before a model is scored on labeled eval rows
    eval_estimate: dict[str, Any] | None = None


def status(store: Store, settings: Settings) -> StatusReport:
    """Counts, classes, rounds and the latest metrics, as plain data: one read snapshot,
    each of its reads made once (`UnitOfWork.batch_reads`: the eval rows, the split
    counts, the current labels and the settings are shared by the parts below)."""
    from longtail.engine.costs import spend_summary
    from longtail.engine.rounds import control_status, eval_status
    from longtail.evaluation.resolution import eval_resolution

    with store.reading() as uow, uow.batch_reads():
        splits = uow.samples.split_counts()
        current = uow.labels.current()
        eval_rows = set(uow.samples.rows_by_split("eval").tolist())
        rounds = uow.rounds.list()
        metrics = uow.metrics.list()
        models = uow.models.list()
        vectors = {name: uow.vectors.info(name)["n_rows"] for name in uow.vectors.names()}
        got = uow.settings.get("lift_summary")
        versions = uow.eval_versions.list()
        annotations = uow.labels.count()
        roi = uow.settings.get("roi_summary")
        transfer = list((uow.settings.get("transfer") or {}).values())
        queued = len(uow.settings.get("discovery_queue") or [])
        cached_estimate = uow.settings.get("eval_estimate")
        classes: dict[str, int] = {}
        for r, lab in current.items():
            if r not in eval_rows:
                classes[lab] = classes.get(lab, 0) + 1
        # "last" figures are those of the newest model on the managed eval set: a test
        # file's figures are shown apart, never as the project's headline.
        newest = max((m["id"] for m in models), default=0)
        last: dict[str, MetricValue] = {}
        last_file: dict[str, MetricValue] = {}
        for m in metrics:
            if (m["model_id"] or 0) != newest:
                continue  # re-scores of older models are in the curves, not "last"
            target = last if m["eval_set"].startswith("managed") else last_file
            target[m["name"]] = MetricValue(m["value"], m["lo"], m["hi"], m["eval_set"],
                                            m["n_labels"])
        need = eval_status(uow, settings, current=current)
        control_share, control_reason = control_status(uow, settings)
        spend = spend_summary(uow, settings).to_dict()
    recorded = LiftSummary.from_dict(got) if got else None
    lift = recorded.to_dict() if recorded else None
    labeled_eval = sum(1 for r in current if r in eval_rows)
    warnings = []
    if 0 < labeled_eval < SMALL_EVAL:
        warnings.append(f"the eval set has only {labeled_eval} labeled samples: its figures "
                        "move by several points (label the eval rows `query` puts first)")
    n = sum(splits.values())
    for name, have in vectors.items():
        if have < n:
            warnings.append(f"{n - have} samples have no {name!r} vectors yet: run "
                            f"`longtail embed --encoder {name}`")
    still_open = [r["id"] for r in rounds if r["status"] == "open"]
    if len(still_open) > 1:
        warnings.append(f"{len(still_open)} rounds are open ({', '.join(map(str, still_open))})")
    equal = (lift or {}).get("equal_count") or {}
    if equal and equal.get("n_labels", 0) < 50:
        warnings.append(f"the lift verdict rests on {equal['n_labels']} control labels: "
                        "treat it as a first sign, not a measurement")
    resolution = eval_resolution(
        splits.get("eval", 0), n, target=settings.eval_halfwidth,
        accuracy=last["accuracy"].value if "accuracy" in last else None)
    if n and not resolution.enough:
        warnings.append(resolution.text())
    return StatusReport(
        project=str(store.root.resolve()),
        samples=n,
        pool=splits.get("pool", 0),
        eval=splits.get("eval", 0),
        labeled_pool=sum(classes.values()),
        labeled_eval=labeled_eval,
        annotations=annotations,
        classes=dict(sorted(classes.items(), key=lambda kv: -kv[1])),
        encoder=settings.encoder,
        vectors=vectors,
        rounds=len(rounds),
        open_rounds=len(still_open),
        models=len(models),
        metrics=last,
        test_file_metrics=last_file,
        eval_version=versions[-1]["id"] if versions else None,
        lift=lift,
        verdict=lift["verdict"] if lift else
        "no lift measured yet: it needs a trained model and 20 or more labeled eval samples",
        eval_need=need.to_dict(),
        eval_resolution=resolution.to_dict(),
        control={"share": control_share, "reason": control_reason},
        spend=spend,
        roi=roi,
        money_verdict=(roi or {}).get("verdict") or
        "no money verdict yet: it needs two trained models and 10 or more labeled eval samples",
        warnings=warnings,
        triggers=_triggers(store),
        queued=queued,
        transfer=transfer,
        eval_estimate=_eval_estimate(cached_estimate, newest),
    )


def _eval_estimate(cached_estimate: dict | None, model_id: int) -> dict[str, Any] | None:
    """The estimate `train` cached for the newest model (no prediction here)."""
    cached = (cached_estimate or {}).get("estimate")
    if not cached or cached.get("model_id") != model_id:
        return None
    keys = ("estimator", "value", "lo", "hi", "halfwidth", "n_labels", "population", "note",
            "small_n_fallback")
    return {k: cached.get(k) for k in keys}


def _triggers(store: Store) -> list[dict]:
    from longtail.engine.triggers import status_lines

    return [t.to_dict() for t in status_lines(store)]


def recorded_lift(store: Store) -> LiftSummary | None:
    """The lift summary `train` recorded last (`evaluation.combine_lifts`; computing it
    needs scipy, reading it does not)."""
    with store.reading() as uow:
        got = uow.settings.get("lift_summary")
    return LiftSummary.from_dict(got) if got else None
