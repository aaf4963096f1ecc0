"""Round use cases: plan a batch and record it as an open round; list and cancel rounds;
the history of earlier rounds that `auto` learns from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.models import load_model
from longtail.engine.records import HistoryEntry, QueryResult, RoundLog
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError
from longtail.interop.batch_file import BATCH_SUFFIXES as EXPORT_SUFFIXES


def history(store: Any) -> list[HistoryEntry]:
    """Earlier rounds for `auto`: its arm, and managed-eval accuracy before and after."""
    acc = [(m["n_labels"], m["value"]) for m in store.metrics("accuracy")
           if m["eval_set"].startswith("managed")]

    def metric_at(n: int) -> float | None:
        vals = [v for k, v in acc if k == n]
        return vals[-1] if vals else None

    rounds = [r for r in store.rounds() if r["status"] != "cancelled"]
    return [HistoryEntry(arm=RoundLog.from_dict(r["log"]).arm, n_labels_before=r["n_labels"],
                         n_labels_after=nxt["n_labels"], metric_before=metric_at(r["n_labels"]),
                         metric_after=metric_at(nxt["n_labels"]))
            for r, nxt in zip(rounds, rounds[1:], strict=False)]


def plan_round(store: Any, settings: Settings, budget: int, *, strategy: str = "auto",
               out: str | Path | None = None, config: dict | None = None,
               seed: int | None = None, encoder: str | None = None,
               overwrite: bool = False) -> QueryResult:
    """Plan a batch of `budget` samples to label, record it as an open round (one
    transaction), save the strategies' indexes for the next command, and export the
    batch (CSV or JSONL by suffix) when `out` is given."""
    from longtail.loop.round import plan_batch  # the strategies load on first use
    from longtail.loop.simulate import predict_rows

    if budget <= 0:
        raise InputError(f"--budget must be a positive number of samples, got {budget}")
    if out is not None:
        _check_out(Path(out), overwrite)
    vs = views.vectors(store, settings, encoder, complete=False)
    warnings: list[str] = []
    missing = views.unembedded(store, vs)
    if missing:
        warnings.append(f"{missing} samples have no {vs.directory.name!r} vectors yet and were "
                        f"left out: run `longtail embed --encoder {vs.directory.name}`")
    rounds = store.rounds()
    still_open = [r["id"] for r in rounds if r["status"] == "open"]
    if still_open:
        warnings.append(f"round(s) {', '.join(map(str, still_open))} still open: their samples "
                        "stay queued (`longtail rounds --cancel N` frees them)")
    rng = np.random.default_rng([settings.seed if seed is None else seed, len(rounds)])
    current = store.current_labels()
    candidates = views.candidates(store, current)
    candidates = candidates[candidates < vs.n_rows]
    eval_rows = store.rows_by_split("eval")
    pending_eval = np.setdiff1d(
        np.setdiff1d(eval_rows, np.fromiter(current, dtype=np.int64, count=len(current))),
        store.open_round_rows())
    pending_eval = pending_eval[pending_eval < vs.n_rows]
    latest = store.latest_model()
    model = (load_model(store, latest) if latest and latest["encoder"] == vs.directory.name
             else None)
    lab_rows, lab_y = views.labeled(store, "pool")
    lab_keep = lab_rows < vs.n_rows
    lab_rows, lab_y = lab_rows[lab_keep], lab_y[lab_keep]
    state, state_log = _load_strategy_state(store, vs)
    _name_pool(store, vs, state)

    def committee_for(rows: np.ndarray) -> np.ndarray:
        from longtail.learners import bootstrap_committee, committee_probs, make_learner

        members = bootstrap_committee(
            lambda: make_learner(settings.learner, **(settings.learner_params or {})),
            vs.read(lab_rows), lab_y.astype(str), m=5, rng=rng)
        return np.concatenate([committee_probs(members, X, model.classes_)
                               for _, X in vs.iter_chunks(rows)], axis=1)

    plan = plan_batch(
        budget, candidates, rng=rng, strategy=strategy, vectors=vs,
        probs_for=(lambda rows: predict_rows(model, vs, rows)) if model else None,
        classes=np.asarray(model.classes_) if model else None,
        labeled_rows=lab_rows, labeled_y=lab_y if len(lab_rows) else None,
        committee_for=committee_for if model else None,
        pending_eval=pending_eval, eval_share=settings.eval_share,
        control_share=settings.control_share, params=config, state=state,
        history=[h.to_dict() for h in history(store)])
    items = [(int(r), i, k) for i, (r, k) in enumerate(zip(plan.rows, plan.kinds, strict=True))]
    log = RoundLog.from_dict(plan.log)
    # The labels that existed before this round: the lift estimator trains on them.
    log.annotations_before = store.max_annotation_id()
    log.warnings = warnings
    record = {**plan.log, **log.to_dict(), **({"state": state_log} if state_log else {})}
    with store.tx() as conn:
        round_id = store.add_round(
            conn, strategy, {"budget": budget, "config": config, "seed": seed},
            len(lab_rows), record, items, latest["id"] if latest else None)
    _save_strategy_state(store, vs, state)
    batch = [b for chunk in store.iter_samples(plan.rows) for b in chunk]
    result = QueryResult(round_id, [int(r) for r in plan.rows], [b[1] for b in batch],
                         list(plan.kinds), record, str(out) if out else None, warnings)
    if out:
        from longtail.interop.batch_file import write_batch_file

        info = store.vector_set_info(vs.directory.name) or {}
        columns = (info.get("config") or {}).get("columns") if vs.directory.name == "tabular" \
            else None
        write_batch_file(out, batch, plan.kinds, round_id, feature_columns=columns,
                         overwrite=overwrite)
    return result


def _check_out(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise InputError(f"{out}: export as .csv or .jsonl")
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists: choose another --out or pass --force")


def _load_strategy_state(store: Any, vs: Any) -> tuple[dict, dict]:
    """The strategies' saved indexes for this vector set, and what loading them cost.
    The strategies themselves decide whether what was loaded still fits the pool (and
    say so in their selection log)."""
    from longtail.store.state_files import load_state
    from longtail.strategies.state import from_arrays

    t0 = time.perf_counter()
    state = load_state(store.root, vs.directory.name, from_arrays)
    if state is None:
        return {}, {"loaded": False, "reason": "no saved state"}
    return state, {"loaded": True, "load_seconds": round(time.perf_counter() - t0, 3)}


def _name_pool(store: Any, vs: Any, state: dict) -> None:
    """Tell the strategies which pool they run on: the vector set and a fingerprint of
    how its vectors were made (a re-embedding with another config invalidates indexes;
    appended rows only extend them)."""
    import hashlib
    import json

    from longtail.strategies.state import set_pool

    info = store.vector_set_info(vs.directory.name) or {}
    made = json.dumps([info.get("dim"), info.get("dtype"), info.get("config")], sort_keys=True,
                      default=str)
    set_pool(state, vs.directory.name, hashlib.sha256(made.encode()).hexdigest()[:16])


def _save_strategy_state(store: Any, vs: Any, state: dict) -> None:
    from longtail.store.state_files import save_state
    from longtail.strategies.state import to_arrays

    if state:
        save_state(store.root, vs.directory.name, to_arrays(state))


def list_rounds(store: Any) -> list[dict]:
    """Every round, oldest first: id, time, strategy, status, size and how many of its
    samples are labeled."""
    current = store.current_labels()
    out = []
    for r in store.rounds():
        rows = [row for row, _, _ in store.round_items(r["id"])]
        out.append({"id": r["id"], "created_at": r["created_at"], "strategy": r["strategy"],
                    "status": r["status"], "size": len(rows),
                    "labeled": sum(1 for row in rows if row in current),
                    "arm": RoundLog.from_dict(r["log"]).arm})
    return out


def cancel_round(store: Any, round_id: int) -> dict:
    """Cancel an open round: its unlabeled samples go back to the candidates."""
    found = {r["id"]: r for r in store.rounds()}
    if round_id not in found:
        raise InputError(f"no round {round_id} (rounds: {', '.join(map(str, found)) or 'none'})")
    if found[round_id]["status"] != "open":
        raise ProjectError(f"round {round_id} is {found[round_id]['status']}, not open")
    with store.unit_of_work() as uow:
        uow.rounds.cancel(round_id)
    return {"round": round_id, "status": "cancelled", "size": found[round_id]["size"]}
