"""Run history: per round, what was asked, what `auto` decided, which model picked the
batch and which model its labels trained, with the models' content hashes, metrics
and timings, and its spend (labeling and compute money). Reads the catalog and model
files only; trains nothing.

A round's *trained* models are those saved after the round was opened and before the
next round that was not cancelled was; its *trained* model is the last of them. The model that *picked*
the round's batch is the one recorded on the round (none for a cold start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from longtail.engine.records import Record
from longtail.errors import InputError, ProjectError
from longtail.store import Store, UnitOfWork
from longtail.store.files import model_file
from longtail.store.repos_versions import file_sha256

if TYPE_CHECKING:
    from longtail.learners.base import Learner

TIMING_KEYS = ("seconds", "select_seconds", "score_seconds", "index_seconds", "load_seconds")


@dataclass(frozen=True)
class ModelRecord(Record):
    """A saved model as the history shows it: what made it, its file and content hash,
    its fit time and its managed-eval metrics (name -> value, lo, hi, eval_set)."""

    id: int
    created_at: str
    learner: str
    encoder: str
    n_labels: int
    path: str
    sha256: str | None
    fit_seconds: float | None
    metrics: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class RoundRecord(Record):
    """One round of the run history (`round` None: the models trained before any round):
    what was asked, auto's decision, the dataset version, the model that picked the
    batch, the models its labels trained (`trained`: the last), timings and spend."""

    round: int | None
    created_at: str
    status: str
    strategy: str | None
    params: dict[str, Any]
    size: int | None
    labels_before: int | None
    arm: str | None
    decision: dict[str, Any]
    eval: int
    control: int
    lift: dict[str, Any] | None
    warnings: list[str]
    dataset_version: int | None
    picked_by: ModelRecord | None
    models: list[ModelRecord]
    trained: ModelRecord | None
    timings: dict[str, float]
    spend: dict[str, float] | None = field(default=None)


def _model_record(store: Store, m: dict | None, metrics: list[dict]) -> ModelRecord | None:
    if m is None:
        return None
    meta = m.get("meta") or {}
    mine = {x["name"]: {"value": x["value"], "lo": x["lo"], "hi": x["hi"],
                        "eval_set": x["eval_set"]}
            for x in metrics if x["model_id"] == m["id"] and x["eval_set"].startswith("managed")}
    return ModelRecord(m["id"], m["created_at"], m["learner"], m["encoder"], m["n_labels"],
                       m["path"], meta.get("sha256"), m["fit_seconds"], mine)


def _models_by_round(rounds: list[dict], models: list[dict]) -> dict[int | None, list[dict]]:
    """Each model under the round whose labels it trained: the latest round opened before
    it that was not cancelled (a cancelled round's labels, if any, are not its own: the
    round before it was still being labeled). Models older than every such round fall
    under None. Every model appears once, oldest first."""
    live = [r for r in rounds if r["status"] != "cancelled"]
    out: dict[int | None, list[dict]] = {}
    for m in models:
        owner = None
        for r in live:
            if r["created_at"] <= m["created_at"]:
                owner = r["id"]
        out.setdefault(owner, []).append(m)
    return out


def _timings(log: dict) -> dict[str, float]:
    out = {k: log[k] for k in TIMING_KEYS if isinstance(log.get(k), int | float)}
    sel = log.get("selection") or {}
    out.update({f"selection_{k}": sel[k] for k in TIMING_KEYS if isinstance(sel.get(k), int | float)})
    state = log.get("state") or {}
    if isinstance(state.get("load_seconds"), int | float):
        out["state_load_seconds"] = state["load_seconds"]
    return out


def _spend_by_round(uow: UnitOfWork) -> dict[int, dict]:
    """round -> its labeling and compute money (issue 29's ledger, `longtail costs`)."""
    from longtail.engine.costs import costs_report
    from longtail.engine.settings import Settings

    report = costs_report(uow, Settings.from_dict(uow.settings.all()))
    return {s.round: {"label_money": round(s.label_money, 4),
                      "compute_money": round(s.compute_money, 6),
                      "total_money": round(s.total_money, 4), "answers": s.events,
                      "cpu_seconds": round(s.cpu_seconds, 3)} for s in report.rounds}


def run_history(store: Store) -> list[RoundRecord]:
    """One record per round, oldest first: strategy, parameters, auto's decision
    (arm and its selection log), dataset version, the model that picked the batch, the
    models its labels trained (`models`, every one; `trained` the last: id, learner,
    sha256, fit seconds, managed-eval metrics), and the timings the round's log holds.
    A cancelled round trained nothing; models trained before any round come first, in
    a record whose `round` is None. No model is left out."""
    with store.reading() as uow:  # one snapshot
        rounds = uow.rounds.list()
        models = uow.models.list()
        metrics = uow.metrics.list()
        versions = {v["round_id"]: v["id"] for v in uow.versions.list() if v["round_id"]}
        spend = _spend_by_round(uow)
    by_id = {m["id"]: m for m in models}
    owned = _models_by_round(rounds, models)
    out: list[RoundRecord] = []
    if owned.get(None):
        early = [_model_record(store, m, metrics) for m in owned[None]]
        out.append(RoundRecord(
            round=None, created_at=owned[None][0]["created_at"], status="before any round",
            strategy=None, params={}, size=0, labels_before=None, arm=None, decision={},
            eval=0, control=0, lift=None, warnings=[], dataset_version=None, picked_by=None,
            models=early, trained=early[-1], timings={}))
    for r in rounds:
        log = r["log"] or {}
        selection = dict(log.get("selection") or {})
        mine = [_model_record(store, m, metrics) for m in owned.get(r["id"], [])]
        out.append(RoundRecord(
            round=r["id"], created_at=r["created_at"], status=r["status"],
            strategy=r["strategy"], params=r["params"], size=r.get("size"),
            labels_before=r["n_labels"], arm=str(selection.get("arm", r["strategy"])),
            decision=selection, eval=log.get("eval", 0), control=log.get("control", 0),
            lift=log.get("lift"), warnings=log.get("warnings", []),
            dataset_version=versions.get(r["id"]),
            picked_by=_model_record(store, by_id.get(r["model_id"]), metrics),
            models=mine, trained=mine[-1] if mine else None, timings=_timings(log),
            spend=spend.get(r["id"])))
    return out


def round_model(store: Store, round_id: int) -> ModelRecord:
    """The model round `round_id`'s labels trained (the last of them); an error naming the
    rounds when there is no such round, or no model trained after it yet."""
    meta = _round_model_meta(store, round_id)
    with store.reading() as uow:
        metrics = uow.metrics.list()
    return _model_record(store, meta, metrics)


def _round_model_meta(store: Store, round_id: int) -> dict:
    with store.reading() as uow:
        rounds, models = uow.rounds.list(), uow.models.list()
    ids = [r["id"] for r in rounds]
    if round_id not in ids:
        raise InputError(f"no round {round_id} (rounds: {', '.join(map(str, ids)) or 'none'})")
    if rounds[ids.index(round_id)]["status"] == "cancelled":
        raise ProjectError(f"round {round_id} was cancelled: no model was trained on its "
                           "labels")
    mine = _models_by_round(rounds, models).get(round_id)
    if not mine:
        raise ProjectError(f"no model was trained after round {round_id}'s labels yet "
                           "(`longtail train`)")
    return mine[-1]


def load_round_model(store: Store, round_id: int) -> Learner:
    """The model round `round_id`'s labels trained, ready to predict, its file checked
    against the hash recorded when it was saved."""
    from longtail.engine.models import load_model

    meta = _round_model_meta(store, round_id)
    want = (meta.get("meta") or {}).get("sha256")
    if want is not None and file_sha256(model_file(store.root, meta["path"])) != want:
        raise ProjectError(f"model {meta['id']} ({meta['path']}): the file does not match "
                           "the hash recorded when it was saved (`longtail check`)")
    with store.reading() as uow:
        return load_model(uow, meta)
