"""Round use cases: plan a batch and record it as an open round; list and cancel rounds;
the history of earlier rounds that `auto` learns from."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.costs.ledger import phase
from longtail.crashpoints import crashpoint
from longtail.engine import views
from longtail.engine.records import ArmOutcome, QueryResult, Record, RoundLog
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError, RoundConflictError
from longtail.store import Store, UnitOfWork, VectorSet

if TYPE_CHECKING:
    from longtail.costs.select import MoneyRound
    from longtail.engine.triggers import TriggerMatches
    from longtail.evaluation.budget import EvalNeed

ENGINES = ("local", "ray")  # where pool scoring runs (`query --engine`)
PLAN_TRIES = 3  # plans of one `query` before it gives way to rounds planned beside it


def arm_outcomes(uow: UnitOfWork) -> list[ArmOutcome]:
    """Earlier rounds for `auto`: its arm, and managed-eval accuracy before and after."""
    acc = [(m["n_labels"], m["value"]) for m in uow.metrics.list("accuracy")
           if m["eval_set"].startswith("managed")]

    def metric_at(n: int) -> float | None:
        vals = [v for k, v in acc if k == n]
        return vals[-1] if vals else None

    rounds = [r for r in uow.rounds.list() if r["status"] != "cancelled"]
    return [ArmOutcome(arm=RoundLog.from_dict(r["log"]).arm, n_labels_before=r["n_labels"],
                         n_labels_after=nxt["n_labels"], metric_before=metric_at(r["n_labels"]),
                         metric_after=metric_at(nxt["n_labels"]))
            for r, nxt in zip(rounds, rounds[1:], strict=False)]


def plan_round(store: Store, settings: Settings, budget: int, *, strategy: str = "auto",
               out: str | Path | None = None, config: dict | None = None,
               seed: int | None = None, encoder: str | None = None,
               overwrite: bool = False, relabel: float = 0.0,
               include_duplicates: bool | None = None,
               budget_money: float | None = None, annotators: int | None = None,
               pool: str | None = None, overlap: float = 0.0,
               out_dir: str | Path | None = None, cost_aware: bool = False,
               engine: str = "local") -> QueryResult:
    """Plan a batch of `budget` samples to label, record it as an open round (one
    transaction), save the strategies' indexes for the next command, and export the
    batch (CSV or JSONL by suffix) when `out` is given. With `relabel` (0..1), up to
    round(relabel·budget) of the top label-error suspects (`engine.suspects`) come out
    of the strategy's share, as items of kind "relabel". Candidates that duplicate a
    labeled sample are left out unless `include_duplicates` (default: the project's
    `exclude_duplicates` setting); the log's "duplicates" says how many.

    With `budget_money`, the batch is cut to what that money buys at predicted cost
    (`longtail.costs`: never more, in the plan's order); `budget` None then asks the
    strategy for about as many samples as the money buys. With `annotators` (or `pool`:
    one package per member), the chosen batch is split into work packages balanced by
    predicted seconds (`overlap`: a share labeled twice), kept in the round's log
    ("packages") and, with `out_dir`, each written as `package-NAME.csv`.

    Safe under concurrency: another `query`, the service or `run` planning at the same
    time never gets one of this round's rows (see `_claim`); this one then plans again,
    and after PLAN_TRIES lost claims raises RoundConflictError.

    `engine` "ray" scores the pool (the model's probabilities of every candidate) as a
    Ray Data job (`longtail.distributed.ray_engine`), for `auto` and every strategy
    that uses probabilities; selection and writes stay here."""
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray":
        from longtail.distributed.ray_engine import check_strategy

        check_strategy(strategy)
    names = None
    if pool is not None:
        from longtail.engine.costs import pool_members

        names = pool_members(store, pool)
        annotators = len(names)
    if out_dir is not None and annotators is None:
        raise InputError("--out-dir writes work packages: give --annotators N or --pool NAME")
    if annotators is not None and annotators < 1:
        raise InputError(f"--annotators must be 1 or more, got {annotators}")
    if out_dir is not None:
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: not a directory")
        if out_dir.is_dir() and any(out_dir.glob("package-*.csv")) and not overwrite:
            raise InputError(f"{out_dir}: holds package files already; choose another "
                             "--out-dir or pass --force")
    fitted = None
    if cost_aware and budget_money is None:
        from longtail.engine import costs

        fitted = costs.cost_model(store, settings)
    if budget_money is not None:
        from longtail.engine import costs

        if not (isinstance(budget_money, (int, float)) and 0 < budget_money < float("inf")):
            raise InputError(f"--budget-money must be a positive amount, got {budget_money}")
        fitted = costs.cost_model(store, settings)
        if budget is None:
            with store.reading() as uow:
                candidates = views.candidates(uow)
            budget = costs.count_for_money(
                store, settings, candidates, float(budget_money),
                np.random.default_rng([settings.seed, 29]), fitted)
    if budget is None or budget <= 0:
        raise InputError(f"--budget must be a positive number of samples, got {budget}")
    if not 0.0 <= float(relabel) <= 1.0:
        raise InputError(f"--relabel must be a share between 0 and 1, got {relabel}")
    if out is not None:
        _check_out(Path(out), overwrite)
    # Planning reads what is committed, then claims its rows in a transaction that
    # holds the catalog's write lock and reads again what other rounds hold: a round
    # planned meanwhile by another command wins, and this one plans again from what
    # that round left (or gives up after a few tries, saying why).
    for _ in range(PLAN_TRIES):
        with store.reading() as uow:  # one snapshot
            planned = _choose(store, uow, settings, budget, strategy=strategy, config=config,
                              seed=seed, encoder=encoder, relabel=relabel,
                              include_duplicates=include_duplicates,
                              shortlist=SHORTLIST * budget if cost_aware else 0,
                              engine=engine)
        if cost_aware:
            planned = _cost_aware(store, settings, planned, budget, fitted)
        if budget_money is not None:
            planned = _within_money(store, settings, planned, float(budget_money), fitted)
        if annotators is not None:
            from longtail.engine.costs import work_packages

            packages = work_packages(store, settings, planned.rows, annotators, overlap, names)
            planned = replace(planned, record={**planned.record, "packages": [
                {"package": p.package, "rows": p.rows, "predicted_seconds": p.predicted_seconds}
                for p in packages]})
        from longtail.engine.triggers import match_triggers

        # Standing triggers over the unlabeled pool (less this batch) with the model as
        # it stands: their matches wait in the discovery queue for the next round, queued
        # in the claim's own transaction.
        fired = match_triggers(store, settings, None, "round", held=planned.rows)
        if fired is not None and fired.hits:
            planned = replace(planned, record={**planned.record, "triggers": fired.hits})
        crashpoint("round:planned")
        round_id = _claim(store, settings, planned,
                          {"budget": budget, "config": config, "seed": seed}, strategy, fired)
        if round_id is not None:
            break
    else:
        raise RoundConflictError(
            f"another round is being planned on this project at the same time and took "
            f"samples this one chose, {PLAN_TRIES} times: run `longtail query` again")
    crashpoint("round:after_commit")
    vs, rows, kinds, record = planned.vs, planned.rows, planned.kinds, planned.record
    _save_strategy_state(store.root, vs, planned.state)
    with store.reading() as uow:
        batch = [b for chunk in uow.samples.iter(rows) for b in chunk]
        columns = _column_order(uow)
    result = QueryResult(round_id, [int(r) for r in rows], [b[1] for b in batch],
                         kinds, record, str(out) if out else None, planned.warnings,
                         relabel=planned.relabel_rows)
    if out_dir is not None:
        from longtail.interop.batch_file import write_batch_file

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        where = {int(r): i for i, r in enumerate(rows.tolist())}
        for p in record["packages"]:
            pos = [where[int(r)] for r in p["rows"]]
            write_batch_file(Path(out_dir) / f"package-{p['package']}.csv",
                             [batch[i] for i in pos], [kinds[i] for i in pos], round_id,
                             column_order=columns,
                             overwrite=True)
    if out:
        from longtail.interop.batch_file import write_batch_file

        write_batch_file(out, batch, kinds, round_id,
                         column_order=columns,
                         overwrite=overwrite)
    return result


@dataclass
class _Planned:
    """A batch chosen from what was committed when planning read it, not yet claimed."""

    vs: VectorSet
    rows: np.ndarray
    kinds: list[str]
    record: dict
    n_labels: int
    model_id: int | None
    state: dict
    warnings: list[str]
    relabel_rows: list[dict]


def _choose(store: Store, uow: UnitOfWork, settings: Settings, budget: int, *, strategy: str,
            config: dict | None, seed: int | None, encoder: str | None, relabel: float,
            include_duplicates: bool | None, shortlist: int = 0,
            engine: str = "local") -> _Planned:
    """Read what planning needs through `uow` (one snapshot) and choose the batch;
    writes nothing (the duplicate and relabel steps still read `store`)."""
    from longtail.engine.duplicates import encode_pass_for, exclude_labeled_twins, one_image_per_group
    from longtail.loop.round import plan_batch  # the strategies load on first use
    from longtail.loop.simulate import predict_rows

    t0 = time.perf_counter()
    vs = views.vectors(uow, settings, encoder, complete=False)
    warnings: list[str] = []
    missing = views.unembedded(uow, vs)
    if missing:
        warnings.append(f"{missing} samples have no {vs.directory.name!r} vectors yet and were "
                        f"left out: run `longtail embed --encoder {vs.directory.name}`")
    rounds = uow.rounds.list()
    still_open = [r["id"] for r in rounds if r["status"] == "open"]
    if still_open:
        warnings.append(f"round(s) {', '.join(map(str, still_open))} still open: their samples "
                        "stay queued (`longtail rounds --cancel N` frees them)")
    rng = np.random.default_rng([settings.seed if seed is None else seed, len(rounds)])
    current = uow.labels.current()
    candidates = views.candidates(uow, current)
    candidates = candidates[candidates < vs.n_rows]
    encode_pass = encode_pass_for(engine)  # the near-duplicate search's, on Ray too
    with phase("duplicates"):
        candidates, dup_log = exclude_labeled_twins(store, settings, vs, candidates, current,
                                                    include=include_duplicates,
                                                    encode_pass=encode_pass)
        # Images: at most one of a group of near-identical ones per batch.
        candidates, dup_log = one_image_per_group(
            store, settings, vs, candidates,
            np.union1d(np.fromiter(current, np.int64, len(current)), uow.rounds.open_rows()),
            dup_log)
    eval_rows = uow.samples.rows_by_split("eval")
    pending_eval = np.setdiff1d(
        np.setdiff1d(eval_rows, np.fromiter(current, dtype=np.int64, count=len(current))),
        uow.rounds.open_rows())
    pending_eval = pending_eval[pending_eval < vs.n_rows]
    if len(candidates) == 0 and len(pending_eval) == 0 and dup_log.excluded:
        from longtail.errors import EmptyPoolError

        # Said plainly: "every sample is labeled" would be wrong, and the way out exists.
        raise EmptyPoolError(
            f"nothing left to select: the {dup_log.excluded} unlabeled pool samples are "
            "all near- or exact duplicates of labeled ones (--include-duplicates offers them)")
    from longtail.engine.models import load_model

    latest = uow.models.latest()
    model = (load_model(uow, latest, predict_only=True)
             if latest and latest["encoder"] == vs.directory.name else None)
    lab_rows, lab_y = views.labeled(uow, "pool")
    lab_keep = lab_rows < vs.n_rows
    lab_rows, lab_y = lab_rows[lab_keep], lab_y[lab_keep]
    planned = batch_split(uow, settings, budget, pending_eval=len(pending_eval),
                          current=current, model_id=latest["id"] if latest else None)
    n_eval, n_control, split = planned.n_eval, planned.n_control, planned.why
    relabel_rows, relabel_log = _relabel_slice(
        store, settings, relabel, budget - min(n_eval, len(pending_eval)) - n_control
        - (1 if n_control else 0), budget, encoder)
    # Rows the discovery queue holds (slices, searches, triggers) come first, out of
    # the strategy's share, as items of kind "queued".
    from longtail.engine.discovery import take_queued

    taken = take_queued(uow, candidates, budget - min(n_eval, len(pending_eval)) - n_control
                        - len(relabel_rows))
    queued_rows, queued_log = taken.rows, taken.log()
    if len(queued_rows):
        candidates = np.setdiff1d(candidates, queued_rows, assume_unique=True)
    with phase("index"):
        state, state_log = _load_strategy_state(uow.root, vs)
        _name_pool(uow, vs, state)

    def committee_for(rows: np.ndarray) -> np.ndarray:
        from longtail.learners import bootstrap_committee, committee_probs, make_learner

        if callable(getattr(model, "posterior_samples", None)):
            # A learner with its own posterior (MC dropout): its samples are the committee.
            return np.concatenate([model.posterior_samples(X) for _, X in vs.iter_chunks(rows)],
                                  axis=1)

        members = bootstrap_committee(
            lambda: make_learner(settings.learner, **(settings.learner_params or {})),
            vs.read(lab_rows), lab_y.astype(str), m=5, rng=rng)
        return np.concatenate([committee_probs(members, X, model.classes_)
                               for _, X in vs.iter_chunks(rows)], axis=1)

    only_relabel = budget == len(relabel_rows) + len(queued_rows) or (
        (relabel_rows or len(queued_rows)) and len(candidates) == 0 and len(pending_eval) == 0)

    ray_nodes: list[int] = []  # the Ray nodes that ran the scoring, for the round's log

    def probs_for(rows: np.ndarray) -> np.ndarray:
        with phase("score"):
            if engine == "ray":
                from longtail.distributed.ray_engine import score_pool

                scored = score_pool(model, vs, rows)
                ray_nodes.append(scored.nodes)
                return scored.probs
            return predict_rows(model, vs, rows)

    with phase("select"):
        plan = _empty_plan(strategy) if only_relabel else plan_batch(
            budget - len(relabel_rows) - len(queued_rows) + shortlist, candidates, rng=rng,
            strategy=strategy, vectors=vs,
            probs_for=probs_for if model else None,
            probs_of=model.predict_proba if model else None,
            classes=np.asarray(model.classes_) if model else None,
            labeled_rows=lab_rows, labeled_y=lab_y if len(lab_rows) else None,
            committee_for=committee_for if model else None,
            pending_eval=pending_eval, eval_share=settings.eval_share,
            control_share=settings.control_share, params=config, state=state,
            history=[h.to_dict() for h in arm_outcomes(uow)], n_eval=n_eval, n_control=n_control)
    rows = np.concatenate([plan.rows, queued_rows,
                           np.array([s["row"] for s in relabel_rows], np.int64)])
    kinds = [*plan.kinds, *["queued"] * len(queued_rows), *["relabel"] * len(relabel_rows)]
    log = RoundLog.from_dict(plan.log)
    # The labels that existed before this round: the lift estimator trains on them.
    log.annotations_before = uow.labels.max_id()
    log.warnings = warnings
    log.split = split
    record = {**plan.log, **log.to_dict(), **({"state": state_log} if state_log else {}),
              **({"relabel": relabel_log} if relabel_log else {}),
              **({"queued": queued_log} if queued_log else {}),
              "duplicates": dup_log.to_dict(),
              **({"engine": engine, "engine_nodes": max(ray_nodes, default=0)}
                 if engine != "local" else {}),
              "seconds": round(time.perf_counter() - t0, 3)}  # planning time, for `history`
    return _Planned(vs, rows, kinds, record, len(lab_rows), latest["id"] if latest else None,
                    state, warnings, relabel_rows)


# Cost-aware: the strategy proposes (1 + SHORTLIST) x its share. 1 (not 2 or 4) was
# chosen on digits (bench/_cost_tune.py): a longer shortlist lets the cut reach cheap
# picks the strategy ranked low, and they teach less than they save (median money to
# target 4.87 at 2x, 5.13 at 3x, 12.49 at 5x, 9.74 cost-blind; 12 seeds).
SHORTLIST = 1


def money_rounds(uow: UnitOfWork, settings: Settings) -> list[MoneyRound]:
    """Earlier rounds for the cost-aware choice: whether each was cut cost-aware, the
    managed-eval accuracy before and after it, and the project's money (labels, eval
    labels and compute, as `longtail costs` attributes it) before and after it."""
    from longtail.costs.select import MoneyRound
    from longtail.engine.costs import costs_report

    outcomes = arm_outcomes(uow)
    rounds = [r for r in uow.rounds.list() if r["status"] != "cancelled"]
    spend = {s.round: s.total_money for s in costs_report(uow, settings).rounds}
    acc = [(m["n_labels"], m["value"]) for m in uow.metrics.list("accuracy")
           if m["eval_set"].startswith("managed")]
    if rounds and len(outcomes) < len(rounds) and acc:
        # The latest round has no next round yet: its outcome is the latest model's
        # metric when that model was trained on more labels (else not measurable).
        last, (n_now, v_now) = rounds[-1], acc[-1]
        before = [v for k, v in acc if k == last["n_labels"]]
        if n_now > last["n_labels"]:
            outcomes = [*outcomes, ArmOutcome(
                arm="", n_labels_before=last["n_labels"], n_labels_after=n_now,
                metric_before=before[-1] if before else None, metric_after=v_now)]
    out = []
    for r, o in zip(rounds, outcomes, strict=False):
        before = sum(v for k, v in spend.items() if k is not None and k < r["id"])
        cut = (r["log"] or {}).get("cost_aware")
        aware = bool(cut.get("applied", True)) if isinstance(cut, dict) else False
        out.append(MoneyRound(cost_aware=aware, metric_before=o.metric_before,
                              metric_after=o.metric_after, money_before=before,
                              money_after=before + spend.get(r["id"], 0.0)))
    return out


def _cost_aware(store: Store, settings: Settings, planned: _Planned, budget: int,
                fitted: Any) -> _Planned:
    """Cut the strategy's shortlist to its share of `budget`, cost-aware or not as gain
    per money measured on earlier rounds decides (`longtail.costs.select.
    choose_cost_aware`: each way is tried once, then the one that gained more accuracy
    per e-fold of money wins). Cost-aware keeps the best picks by return on investment
    (Haertel et al. 2008): benefit / cost^gamma, benefit the latest model's probability
    of being wrong on the sample (1 - max probability), cost its predicted money per
    second of labeling where pools differ in rate (the pool it will need), else its
    predicted money (`engine.costs.selection_cost`; seconds when nothing is priced),
    gamma the setting `cost_tradeoff` (0.5). Both were chosen
    on digits with a synthetic time per image (bench/_cost_tune.py, 8 seeds, median
    money to 95% of full accuracy: cost-blind 9.74, money per second 3.94, money 4.79):
    weighing the whole predicted money also buys the shortest items, which teach least. Cost-blind keeps
    the strategy's first picks. Before any model there is no benefit to weigh: the cut
    is cost-blind. Eval, control, queued and relabel items are kept as planned."""
    from longtail.costs.select import choose_cost_aware
    from longtail.engine import costs
    from longtail.engine.models import load_model
    from longtail.loop.simulate import predict_rows

    sel = np.flatnonzero(np.array([k == "selected" for k in planned.kinds], dtype=bool))
    keep_n = max(0, min(len(sel), budget - (len(planned.kinds) - len(sel))))
    if len(sel) <= keep_n:
        return planned
    rows = planned.rows[sel]
    with store.reading() as uow:
        model_meta = uow.models.latest()
        choice = choose_cost_aware(money_rounds(uow, settings))
    if model_meta is None or model_meta["encoder"] != planned.vs.directory.name:
        best = sel[:keep_n]
        info = {"applied": False, "why": "no model yet: nothing to weigh against cost"}
    elif not choice.cost_aware:
        best = sel[:keep_n]
        info = choice.to_dict()
    else:
        with store.reading() as uow:
            model = load_model(uow, model_meta, predict_only=True)
        benefit = 1.0 - np.asarray(predict_rows(model, planned.vs, rows)).max(1)
        fitted = fitted if fitted is not None else costs.cost_model(store, settings)
        try:
            cost = costs.selection_cost(store, settings, rows, fitted)
        except InputError:  # nothing priced: time is the cost
            cost = costs.predicted_costs(store, settings, rows, fitted.model)
        gamma = float(settings.cost_tradeoff)
        roi = np.maximum(benefit, 1e-6) / np.maximum(cost, 1e-12) ** gamma
        order = np.argsort(-roi, kind="stable")[:keep_n]
        best = sel[order]
        kept = np.isin(sel, best)
        info = {**choice.to_dict(), "gamma": gamma,
                "benefit_mean_kept": round(float(benefit[kept].mean()), 4) if keep_n else None,
                "cost_mean_kept": round(float(cost[kept].mean()), 6) if keep_n else None,
                "cost_mean_shortlist": round(float(cost.mean()), 6)}
    drop = np.setdiff1d(sel, best)
    mask = np.ones(len(planned.rows), dtype=bool)
    mask[drop] = False
    # The kept picks (in ROI order when cost-aware), after the other items in order.
    order = np.concatenate([np.flatnonzero(mask & ~np.isin(np.arange(len(mask)), sel)), best])
    record = {**planned.record, "cost_aware": {
        **info, "shortlist": int(len(sel)), "kept": int(keep_n)}}
    return replace(planned, rows=planned.rows[order],
                   kinds=[planned.kinds[i] for i in order.tolist()], record=record)


def _within_money(store: Store, settings: Settings, planned: _Planned, budget_money: float,
                  fitted: Any) -> _Planned:
    """The planned batch cut to what `budget_money` buys at predicted cost, in the plan's
    order (eval rows first, then the control slice and the strategy's picks); the cut
    and the predicted money go into the round's log ("money")."""
    from longtail.costs.select import BudgetTooSmall, fit_budget
    from longtail.engine import costs

    predicted = costs.predicted_money(store, settings, planned.rows, fitted)
    keep = fit_budget(predicted, budget_money)
    if not keep.any():
        cheapest = float(predicted.min()) if len(predicted) else float("nan")
        raise BudgetTooSmall(f"--budget-money {budget_money:g} buys no sample: the cheapest "
                         f"planned one is predicted at {cheapest:.4g}")
    kinds = [k for k, m in zip(planned.kinds, keep.tolist(), strict=True) if m]
    kept_rows = set(planned.rows[keep].tolist())
    record = {**planned.record, "money": {
        "budget": budget_money, "predicted": round(float(predicted[keep].sum()), 6),
        "kept": int(keep.sum()), "cut": int((~keep).sum()),
        "model": fitted.report.to_dict() if fitted else None}}
    return replace(planned, rows=planned.rows[keep], kinds=kinds, record=record,
                   relabel_rows=[x for x in planned.relabel_rows if x["row"] in kept_rows])


def _claim(store: Store, settings: Settings, planned: _Planned, params: dict,
           strategy: str, fired: TriggerMatches | None = None) -> int | None:
    """Record the planned batch as an open round, with the triggers' matches (`fired`)
    queued, in one transaction that takes the catalog's write lock before it reads:
    None (nothing written) when another round claimed one of its rows, or one of its
    rows got a label, since planning read them."""
    from dataclasses import replace as with_reason

    from longtail.engine.triggers import record_matches_in

    rows = planned.rows.astype(np.int64)
    fresh = rows[[k != "relabel" for k in planned.kinds]] if len(rows) else rows
    with store.unit_of_work(write_lock=True) as uow:
        if len(np.intersect1d(rows, uow.rounds.open_rows())) or \
                uow.labels.current(fresh.tolist()):
            return None
        items = [(int(r), i, k) for i, (r, k) in enumerate(zip(rows, planned.kinds, strict=True))]
        round_id = uow.rounds.add(strategy, params, planned.n_labels, planned.record, items,
                                  planned.model_id)
        met = eval_met_pool(uow, settings, planned.record["split"]["eval"])
        if met is not None:
            uow.settings.set("eval_met_pool", met)
        if fired is not None:
            record_matches_in(uow, with_reason(fired, reason=f"round {round_id}"))
    return round_id


def _relabel_slice(store: Store, settings: Settings, share: float, room: int, budget: int,
                   encoder: str | None) -> tuple[list[dict], dict | None]:
    """The batch's relabel rows (top suspects, see `engine.suspects.relabel_queue`) and
    their log: up to round(share·budget), within `room` (what the eval and control
    slices leave of the batch, one row kept for the strategy beside a control slice)."""
    if share <= 0:
        return [], None
    from longtail.engine.suspects import relabel_queue

    want = min(int(round(share * budget)), max(0, room))
    pick = relabel_queue(store, settings, want, encoder=encoder)
    picked, reason = pick.rows, pick.reason
    return picked, {"share": float(share), "requested": want, "rows": picked, "reason": reason}


def _empty_plan(strategy: str) -> Any:
    """The plan of a batch that is relabel rows only."""
    from longtail.loop.round import BatchPlan

    return BatchPlan(rows=np.empty(0, np.int64), kinds=[],
                     log={"strategy": strategy, "eval": 0, "control": 0})


def _column_order(uow: UnitOfWork) -> list[str]:
    """The pool's metadata columns in its files' order, for the batch file."""
    return uow.samples.column_order()


def _check_out(out: Path, overwrite: bool) -> None:
    from longtail.interop.batch_file import BATCH_SUFFIXES as EXPORT_SUFFIXES

    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise InputError(f"{out}: export as .csv or .jsonl")
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists: choose another --out or pass --force")


def _load_strategy_state(root: Path, vs: VectorSet) -> tuple[dict, dict]:
    """The strategies' saved indexes for this vector set, and what loading them cost.
    The strategies themselves decide whether what was loaded still fits the pool (and
    say so in their selection log)."""
    from longtail.store.state_files import load_state
    from longtail.strategies.state import from_arrays

    t0 = time.perf_counter()
    state = load_state(root, vs.directory.name, from_arrays)
    if state is None:
        return {}, {"loaded": False, "reason": "no saved state"}
    return state, {"loaded": True, "load_seconds": round(time.perf_counter() - t0, 3)}


def _name_pool(uow: UnitOfWork, vs: VectorSet, state: dict) -> None:
    """Tell the strategies which pool they run on: the vector set and a fingerprint of
    how its vectors were made (a re-embedding with another config invalidates indexes;
    appended rows only extend them)."""
    from longtail.strategies.state import set_pool

    set_pool(state, vs.directory.name, views.vectors_fingerprint(uow, vs.directory.name))


def _save_strategy_state(root: Path, vs: VectorSet, state: dict) -> None:
    from longtail.store.state_files import save_state
    from longtail.strategies.state import to_arrays

    if state:
        save_state(root, vs.directory.name, to_arrays(state))


@dataclass(frozen=True)
class RoundSummary(Record):
    """A round as `longtail rounds` and `GET /admin/rounds` list it: how many of its
    samples are labeled, and the arm that picked them."""

    id: int
    created_at: str
    strategy: str
    status: str
    size: int
    labeled: int
    arm: str


@dataclass(frozen=True)
class RoundChange(Record):
    """What a command did to a round (cancelled it, wrote its batch file to `out`)."""

    OPTIONAL = ("out",)

    round: int
    status: str
    size: int
    out: str | None = None


@dataclass(frozen=True)
class BatchSplit(Record):
    """How many of a batch go to the eval set and to the control slice, and why."""

    n_eval: int
    n_control: int
    why: dict[str, Any]


def export_round(store: Store, settings: Settings, round_id: int, out: str | Path, *,
                 overwrite: bool = False) -> RoundChange:
    """Write round `round_id`'s batch file again (the file `query --out` writes), e.g.
    after the file was lost or the command was killed between the round's commit and
    the file write. Reads only; O(batch)."""
    from longtail.interop.batch_file import write_batch_file

    with store.reading() as uow:
        found = {r["id"]: r for r in uow.rounds.list()}
        if round_id not in found:
            raise InputError(f"no round {round_id} (rounds: "
                             f"{', '.join(map(str, found)) or 'none'})")
        _check_out(Path(out), overwrite)
        items = uow.rounds.items(round_id)
        rows = np.array([row for row, _, _ in items], dtype=np.int64)
        batch = [b for chunk in uow.samples.iter(rows) for b in chunk] if len(rows) else []
        columns = _column_order(uow)
    write_batch_file(out, batch, [k for _, _, k in items], round_id,
                     column_order=columns,
                     overwrite=overwrite)
    return RoundChange(round_id, found[round_id]["status"], len(items), str(out))


def list_rounds(uow: UnitOfWork) -> list[RoundSummary]:
    """Every round, oldest first: id, time, strategy, status, size and how many of its
    samples are labeled."""
    current = uow.labels.current()
    out = []
    for r in uow.rounds.list():
        rows = [row for row, _, _ in uow.rounds.items(r["id"])]
        out.append(RoundSummary(r["id"], r["created_at"], r["strategy"], r["status"], len(rows),
                                sum(1 for row in rows if row in current),
                                RoundLog.from_dict(r["log"]).arm))
    return out


def cancel_round(uow: UnitOfWork, round_id: int) -> RoundChange:
    """Cancel an open round: its unlabeled samples go back to the candidates. Through
    the caller's unit of work, which commits."""
    found = {r["id"]: r for r in uow.rounds.list()}
    if round_id not in found:
        raise InputError(f"no round {round_id} (rounds: {', '.join(map(str, found)) or 'none'})")
    if found[round_id]["status"] != "open":
        raise ProjectError(f"round {round_id} is {found[round_id]['status']}, not open")
    uow.rounds.cancel(round_id)
    return RoundChange(round_id, "cancelled", found[round_id]["size"])


def batch_split(uow: UnitOfWork, settings: Settings, k: int, *, pending_eval: int,
                current: dict[int, str], model_id: int | None) -> BatchSplit:
    """How many eval and control rows batch of `k` takes, and why (for the round log
    and `status`): eval labels by need (`longtail.evaluation.budget.eval_need`), each
    share as a running allowance over the rounds so tiny batches stay fair. The counts
    come from `longtail.loop.policy.split_batch`, the function `simulate` uses too."""
    from longtail.loop.policy import PastBatch, split_batch

    need = eval_status(uow, settings, current=current, model_id=model_id,
                       pending=pending_eval, batch=k)
    past = []
    for r in uow.rounds.list():
        if r["status"] == "cancelled":
            continue
        log = RoundLog.from_dict(r["log"])
        past.append(PastBatch(size=r["size"], eval=log.eval, control=log.control,
                              eval_requested=log.split.get("eval", {}).get("request", 1) > 0,
                              control_on=log.split.get("control", {}).get("share", 1) > 0))
    control_share, control_reason = control_status(uow, settings)
    n_eval, n_control = split_batch(k, need, eval_share=settings.eval_share,
                                    control_share=control_share, past=past)
    split = {"eval": need.to_dict(), "control": {"share": control_share,
                                                 "reason": control_reason}}
    return BatchSplit(n_eval, n_control, split)


def eval_status(uow: UnitOfWork, settings: Settings, *, current: dict[int, str] | None = None,
                model_id: int | None = None, pending: int | None = None,
                batch: int = 0) -> EvalNeed:
    """The eval set's need as `status` and `query` see it (an EvalNeed). Reads only;
    `query` records when the target was met (`eval_met_pool`) in its round's transaction.
    `batch`: the rows `query` is about to hand out, counted as paid for the eval share."""
    from longtail.evaluation.budget import eval_need, wilson_halfwidth

    current = uow.labels.current() if current is None else current
    eval_rows = uow.samples.rows_by_split("eval")
    labeled_eval = [r for r in eval_rows.tolist() if r in current]
    if pending is None:
        queued = set(uow.rounds.open_rows().tolist())
        pending = sum(1 for r in eval_rows.tolist() if r not in current and r not in queued)
    if model_id is None:
        latest = uow.models.latest()
        model_id = latest["id"] if latest else None
    acc = [m for m in uow.metrics.list("accuracy")
           if m["model_id"] == model_id and m["eval_set"].startswith("managed")]
    last = acc[-1] if acc else None
    halfwidth = None
    if last is not None:
        # Accuracy's interval is Clopper-Pearson's; metrics recorded before it were a
        # bootstrap, which collapses on a small all-correct eval set, so Wilson's floor
        # stays for those.
        boot = (last["hi"] - last["lo"]) / 2 if last["lo"] is not None else 0.0
        halfwidth = max(boot, wilson_halfwidth(last["value"], len(labeled_eval)))
    # The project's estimator (PPI by default) decides the interval the budget reads;
    # it falls back to the exact interval itself where its large-sample one fails.
    est = None
    if model_id is not None and labeled_eval:
        from longtail.engine.estimates import managed_estimate

        meta = next((m for m in uow.models.list() if m["id"] == model_id), None)
        est = managed_estimate(uow, settings, meta, write_cache=False) if meta else None
    eval_set = set(eval_rows.tolist())
    eval_classes = {current[r] for r in labeled_eval}
    pool_classes = {lab for r, lab in current.items() if r not in eval_set}
    pool = int(uow.samples.split_counts().get("pool", 0))
    by = {}
    if est is not None:
        by = {"estimator": est.estimator, "estimate_note": est.note,
              "sd1": None if est.small_n_fallback else est.sd1}
        halfwidth = est.halfwidth
    return eval_need(labeled=len(labeled_eval), pending=int(pending),
                     accuracy=(est.value if est else last["value"] if last else None),
                     halfwidth=halfwidth,
                     target=settings.eval_halfwidth, has_model=model_id is not None,
                     new_classes=sorted(pool_classes - eval_classes) if labeled_eval else (),
                     pool=pool, pool_when_met=uow.settings.get("eval_met_pool"),
                     paid=len(current) + batch, max_share=settings.eval_share, **by)


def eval_met_pool(uow: UnitOfWork, settings: Settings, need: dict) -> int | None:
    """The pool size to remember as "when the eval target was met" (the drift check
    compares with it), or None to keep what is remembered: set when a batch's eval need
    (`EvalNeed.to_dict()`) found the target met and the pool grew by a quarter or
    shrank since. Reads through `uow`, in the round's transaction."""
    hw = need.get("halfwidth")
    if need.get("request", 1) != 0 or hw is None or hw > settings.eval_halfwidth:
        return None
    met = uow.settings.get("eval_met_pool")
    pool = int(uow.samples.split_counts().get("pool", 0))
    return pool if met is None or pool > 1.25 * met or pool < met else None


def control_status(uow: UnitOfWork, settings: Settings) -> tuple[float, str]:
    """The control slice's share this round and why: 0 unless the project asked for
    one; a fifth of it once the lift verdict's interval excludes zero, until the arm
    or the pool changes."""
    share = float(settings.control_share)
    if share <= 0:
        return 0.0, ("no control slice: the lift verdict cross-fits the eval set "
                     "(`init --control-share` adds a separate random arm)")
    verdict = uow.settings.get("arm_lift") or {}
    settled = verdict.get("lo") is not None and (verdict["lo"] > 0 or verdict["hi"] < 0)
    if not settled:
        return share, "the lift verdict is not settled yet"
    arms = [RoundLog.from_dict(r["log"]).arm for r in uow.rounds.list()
            if r["status"] != "cancelled"]
    if len(arms) >= 2 and arms[-1] != arms[-2]:
        return share, f"the strategy's arm changed ({arms[-2]} -> {arms[-1]})"
    pool = int(uow.samples.split_counts().get("pool", 0))
    at = verdict.get("pool")
    if at and pool > 1.25 * at:
        return share, f"the pool grew from {at} to {pool} since the verdict settled"
    return share / 5, "paused: the verdict's interval excludes zero (a fifth of the share)"
