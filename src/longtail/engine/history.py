"""Run history: per round, what was asked, what `auto` decided, which model picked the
batch and which model its labels trained, with the models' content hashes, metrics
and timings. Reads the catalog and model files only; trains nothing.

A round's *trained* model is the last model saved after the round was opened and
before the next round was: the model its labels produced. The model that *picked*
the round's batch is the one recorded on the round (none for a cold start).
"""

from __future__ import annotations

from typing import Any

from longtail.errors import InputError, ProjectError
from longtail.store.repos_versions import file_sha256

TIMING_KEYS = ("seconds", "select_seconds", "score_seconds", "index_seconds", "load_seconds")


def _model_record(store: Any, m: dict | None, metrics: list[dict]) -> dict | None:
    if m is None:
        return None
    meta = m.get("meta") or {}
    mine = {x["name"]: {"value": x["value"], "lo": x["lo"], "hi": x["hi"],
                        "eval_set": x["eval_set"]}
            for x in metrics if x["model_id"] == m["id"] and x["eval_set"].startswith("managed")}
    return {"id": m["id"], "created_at": m["created_at"], "learner": m["learner"],
            "encoder": m["encoder"], "n_labels": m["n_labels"], "path": m["path"],
            "sha256": meta.get("sha256"), "fit_seconds": m["fit_seconds"], "metrics": mine}


def _trained_after(models: list[dict], start: str, end: str | None) -> dict | None:
    inside = [m for m in models if m["created_at"] >= start and (end is None or m["created_at"] < end)]
    return inside[-1] if inside else None


def _timings(log: dict) -> dict[str, float]:
    out = {k: log[k] for k in TIMING_KEYS if isinstance(log.get(k), int | float)}
    sel = log.get("selection") or {}
    out.update({f"selection_{k}": sel[k] for k in TIMING_KEYS if isinstance(sel.get(k), int | float)})
    state = log.get("state") or {}
    if isinstance(state.get("load_seconds"), int | float):
        out["state_load_seconds"] = state["load_seconds"]
    return out


def run_history(store: Any) -> list[dict]:
    """One record per round, oldest first: strategy, parameters, auto's decision
    (arm and its selection log), dataset version, the model that picked the batch and
    the model its labels trained (id, learner, sha256, fit seconds, managed-eval
    metrics), and the timings the round's log holds."""
    with store.reading() as uow:  # one snapshot
        rounds = uow.rounds.list()
        models = uow.models.list()
        metrics = uow.metrics.list()
        versions = {v["round_id"]: v["id"] for v in uow.versions.list() if v["round_id"]}
    by_id = {m["id"]: m for m in models}
    out = []
    for i, r in enumerate(rounds):
        log = r["log"] or {}
        nxt = rounds[i + 1]["created_at"] if i + 1 < len(rounds) else None
        selection = dict(log.get("selection") or {})
        out.append({
            "round": r["id"], "created_at": r["created_at"], "status": r["status"],
            "strategy": r["strategy"], "params": r["params"], "size": r.get("size"),
            "labels_before": r["n_labels"],
            "arm": str(selection.get("arm", r["strategy"])),
            "decision": selection,
            "eval": log.get("eval", 0), "control": log.get("control", 0),
            "lift": log.get("lift"), "warnings": log.get("warnings", []),
            "dataset_version": versions.get(r["id"]),
            "picked_by": _model_record(store, by_id.get(r["model_id"]), metrics),
            "trained": _model_record(store, _trained_after(models, r["created_at"], nxt), metrics),
            "timings": _timings(log),
        })
    return out


def round_model_meta(store: Any, round_id: int) -> dict:
    """The catalog record of the model round `round_id`'s labels trained; an error
    naming the rounds when there is no such round, or no model trained after it yet."""
    rounds = store.rounds()
    ids = [r["id"] for r in rounds]
    if round_id not in ids:
        raise InputError(f"no round {round_id} (rounds: {', '.join(map(str, ids)) or 'none'})")
    i = ids.index(round_id)
    nxt = rounds[i + 1]["created_at"] if i + 1 < len(rounds) else None
    m = _trained_after(store.models(), rounds[i]["created_at"], nxt)
    if m is None:
        raise ProjectError(f"no model was trained after round {round_id}'s labels yet "
                           "(`longtail train`)")
    return m


def load_round_model(store: Any, round_id: int) -> Any:
    """The model round `round_id`'s labels trained, ready to predict, its file checked
    against the hash recorded when it was saved."""
    from longtail.engine.models import load_model

    meta = round_model_meta(store, round_id)
    want = (meta.get("meta") or {}).get("sha256")
    if want is not None and file_sha256(store.root / meta["path"]) != want:
        raise ProjectError(f"model {meta['id']} ({meta['path']}): the file does not match "
                           "the hash recorded when it was saved (`longtail check`)")
    with store.reading() as uow:
        return load_model(uow, meta)
