"""Evaluation use cases: eval-set versions and re-scoring, the control-arm lift per
round, learning curves, forecasts and stopping.

The estimators themselves are pure (`longtail.evaluation`); these functions only fetch
what they need from the catalog and record what they say. Each takes the caller's unit
of work (reads and writes go through its repositories; the caller commits once) and the
project's settings; none knows about `Project`, the CLI or the service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.eval_records import (
    ArmLift,
    Confusion,
    CurvePoint,
    EvalReport,
    ForecastReport,
    LearningCurves,
    LiftSummary,
    ManagedEstimate,
    Scores,
    StoppingAnswer,
    TargetAnswer,
    managed_eval_set,
)
from longtail.engine.models import load_model
from longtail.engine.records import RoundLog
from longtail.engine.settings import SMALL_EVAL, Settings, learner_spec
from longtail.errors import InputError
from longtail.evaluation import (
    BudgetSpent,
    LearningCurve,
    Lift,
    RemainingGain,
    TargetReached,
    crossfit_lift,
    cumulative_lift,
    evaluate_predictions,
    evaluate_stopping,
    fit_learning_curve,
    round_lift,
    verdict,
)
from longtail.evaluation.evalset import uniform_from_ids
from longtail.learners import make_learner
from longtail.store import UnitOfWork

SCALARS = ("accuracy", "macro_f1", "worst_class_recall")
STOP_SET_SIZE = 2000


FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
FitProba = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def fit_from_scratch(settings: Settings) -> FitPredict:
    """fit_predict(X, y, X_new) -> labels, training the project's learner from scratch
    (the lift estimators compare arms trained alike)."""
    spec = learner_spec(settings, from_scratch=True)

    def fit_predict(X: np.ndarray, y: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        model = make_learner(spec.learner, **spec.params)
        model.fit(X, y)
        return np.asarray(model.classes_)[model.predict_proba(X_new).argmax(1)]

    return fit_predict


def fit_proba_from_scratch(settings: Settings) -> FitProba:
    """fit_proba(X, y, X_new) -> (classes, probabilities of X_new), training the
    project's learner from scratch (the PPI lift needs the arms' probabilities)."""
    spec = learner_spec(settings, from_scratch=True)

    def fit_proba(X: np.ndarray, y: np.ndarray, X_new: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        model = make_learner(spec.learner, **spec.params)
        model.fit(X, y)
        probs = [model.predict_proba(X_new[i:i + _CHUNK]) for i in range(0, len(X_new), _CHUNK)]
        return np.asarray(model.classes_), np.concatenate(probs) if probs else np.zeros(
            (0, len(model.classes_)))

    return fit_proba


POP_CAP = 20_000  # unlabeled eval-split rows the PPI lift predicts (a uniform subsample)
_CHUNK = 65_536


def eval_population(uow: UnitOfWork, settings: Settings, eval_rows: np.ndarray,
                    n_rows: int) -> np.ndarray:
    """The unlabeled rows of the managed eval split (below ``n_rows``, the vectors'
    count), a seeded uniform subsample of at most POP_CAP: the population the PPI
    estimates speak about, beside the labeled eval rows. O(split)."""
    split = uow.samples.rows_by_split("eval")
    split = np.setdiff1d(split[split < n_rows], eval_rows)
    if len(split) > POP_CAP:
        rng = np.random.default_rng([settings.seed, len(split)])
        split = np.sort(rng.choice(split, POP_CAP, replace=False))
    return split


def current_eval_version(uow: UnitOfWork) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(version id, rows, labels) of the labeled managed eval set, making a new version
    when its content changed; None while no eval sample is labeled."""
    rows, labels = views.labeled(uow, "eval")
    if len(rows) == 0:
        return None
    version, _ = uow.eval_versions.get_or_create(views.labels_fingerprint(rows, labels), len(rows))
    return version, rows, labels.astype(str)


def score_model(uow: UnitOfWork, settings: Settings, model_meta: dict, X: np.ndarray, y: np.ndarray,
                eval_set: str) -> Scores:
    """Metrics of one saved model on (X, y), recorded under `eval_set`."""
    result = _predict_metrics(uow, settings, model_meta, X, y)
    uow.metrics.add(model_meta["id"], eval_set, model_meta["n_labels"], {
        k: (m["value"], m["lo"], m["hi"])
        for k in SCALARS if (m := getattr(result, k)) and m["value"] is not None})
    return result


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
    """Counts of (true, predicted) label pairs, rows the true labels. O(n + K²) for K
    labels."""
    labels = np.union1d(np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str))
    t = np.searchsorted(labels, np.asarray(y_true, dtype=str))
    p = np.searchsorted(labels, np.asarray(y_pred, dtype=str))
    k = len(labels)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    return Confusion(labels.tolist(), matrix.tolist())


def rescore_all(uow: UnitOfWork, settings: Settings, *,
                scored_now: dict[int, Scores] | None = None) -> str | None:
    """Score every saved model on the current eval version that has no metric on it yet,
    so the learning curve is always drawn on one set. Returns the eval-set name; the
    metrics of the models scored now go into `scored_now` (model id -> metrics) when
    the caller passes a dict."""
    cur = current_eval_version(uow)
    if cur is None:
        return None
    version, rows, labels = cur
    name = managed_eval_set(version)
    scored = {m["model_id"] for m in uow.metrics.list("accuracy") if m["eval_set"] == name}
    models = [m for m in uow.models.list() if m["id"] not in scored]
    cache: dict[str, np.ndarray] = {}
    for meta in models:
        if meta["encoder"] not in cache:
            cache[meta["encoder"]] = uow.vector_set(meta["encoder"]).read(rows)
        result = score_model(uow, settings, meta, cache[meta["encoder"]], labels, name)
        if scored_now is not None:
            scored_now[meta["id"]] = result
    return name


def learning_curves(uow: UnitOfWork, metric: str = "accuracy") -> LearningCurves:
    """Two curves by labels: "current" (every model on the latest eval version) and
    "as_of" (each model on the eval set as it was when the model was trained)."""
    # Eval versions by the name their metrics carry: the version is the catalog's id.
    version_of = {managed_eval_set(v["id"]): int(v["id"]) for v in uow.eval_versions.list()}
    rows = [m for m in uow.metrics.list(metric) if m["eval_set"] in version_of]
    if not rows:
        return LearningCurves([], [], None, None)
    latest = max(version_of[m["eval_set"]] for m in rows)
    first_by_model: dict[int, dict] = {}
    for m in rows:
        first_by_model.setdefault(m["model_id"], m)

    def point(m: dict) -> CurvePoint:
        return CurvePoint(m["model_id"], m["n_labels"], m["value"], m["lo"], m["hi"],
                          m["eval_set"], version_of[m["eval_set"]])

    def order(p: CurvePoint) -> tuple[int, int]:
        return p.n_labels, p.model_id or 0

    current = {m["model_id"]: point(m) for m in rows if version_of[m["eval_set"]] == latest}
    return LearningCurves(sorted(current.values(), key=order),
                          sorted((point(m) for m in first_by_model.values()), key=order),
                          managed_eval_set(latest), latest)


def update_round_lifts(uow: UnitOfWork, settings: Settings, *, n_repeats: int = 3) -> list[int]:
    """Estimate the control-arm lift of every round whose selected and control slices are
    labeled and that has none yet; stored in the round's log. Returns the round ids."""
    cur = current_eval_version(uow)
    if cur is None:
        return []
    version, eval_rows, eval_y = cur
    current = uow.labels.current()
    first = uow.labels.first_times()
    pool = set(uow.samples.rows_by_split("pool").tolist())
    vs = views.vectors(uow, settings, complete=False)
    X_eval = vs.read(eval_rows)
    fit_predict = fit_from_scratch(settings)

    done = []
    for rnd in uow.rounds.list():
        log = RoundLog.from_dict(rnd["log"])
        if log.lift is not None or log.annotations_before is None:
            continue
        items = uow.rounds.items(rnd["id"])
        sel = np.array([r for r, _, k in items if k == "selected"], dtype=np.int64)
        ctrl = np.array([r for r, _, k in items if k == "control"], dtype=np.int64)
        if not len(sel) or not len(ctrl) or not all(int(r) in current for r in (*sel, *ctrl)):
            continue
        in_round = set(sel.tolist()) | set(ctrl.tolist())
        prev = np.array(sorted(r for r, i in first.items() if i <= log.annotations_before
                               and r in pool and r not in in_round), dtype=np.int64)
        labels_of = np.vectorize(lambda r: current[int(r)], otypes=[object])
        rng = np.random.default_rng([settings.seed, rnd["id"]])
        lift = round_lift(
            fit_predict, vs.read(prev) if len(prev) else None,
            labels_of(prev).astype(str) if len(prev) else None,
            vs.read(sel), labels_of(sel).astype(str), vs.read(ctrl), labels_of(ctrl).astype(str),
            X_eval, eval_y, rng, n_repeats=n_repeats)
        log.lift = {**lift.__dict__, "eval_set": managed_eval_set(version)}
        uow.rounds.update_log(rnd["id"], {**rnd["log"], **log.to_dict()})
        done.append(rnd["id"])
    return done


MIN_CONTROL = 10
MIN_CROSSFIT = 20


def arm_lift(uow: UnitOfWork, settings: Settings) -> ArmLift | None:
    """The run so far against random at equal label count m, where m is the number of
    labeled control samples (all rounds together, a uniform random sample of the pool):
    the learner trained on the first m labels of the active run (rounds in order, the
    strategy's picks before the round's control slice) against the learner trained on
    the m control labels, both from scratch, scored on the current eval set with a
    paired bootstrap. The interval reflects eval-sample noise (one training draw per
    arm). Recorded in the project settings by `train`; None until m ≥ 10."""
    cur = current_eval_version(uow)
    if cur is None:
        return None
    version, eval_rows, eval_y = cur
    current = uow.labels.current()
    trajectory: list[int] = []
    controls: list[int] = []
    for rnd in uow.rounds.list():
        items = uow.rounds.items(rnd["id"])
        for kind in ("selected", "control"):
            rows = [r for r, _, k in items if k == kind and r in current]
            trajectory += rows
            if kind == "control":
                controls += rows
    m = len(controls)
    vs = views.vectors(uow, settings, complete=False)
    fit_predict = fit_from_scratch(settings)
    pool = int(uow.samples.split_counts().get("pool", 0))
    # the accuracy's estimator (engine/estimates.py) gives the lift's eval part too
    from longtail.engine.estimates import DEFAULT_ESTIMATOR

    asked = getattr(settings, "eval_estimator", None) or DEFAULT_ESTIMATOR
    ppi = {}
    if asked == "ppi":
        population = eval_population(uow, settings, eval_rows, vs.n_rows)
        ppi = {"estimator": "ppi", "fit_proba": fit_proba_from_scratch(settings),
               "X_pop": vs.read(population) if len(population) else None}

    def labels(rows: np.ndarray) -> np.ndarray:
        return np.array([current[int(r)] for r in rows]).astype(str)

    if m < MIN_CONTROL:
        # No control arm to speak of: the eval set, cross-fitted, is the random arm.
        selected = np.asarray([r for r in trajectory if r not in set(controls)], dtype=np.int64)
        if len(eval_rows) < MIN_CROSSFIT or len(selected) == 0:
            return None
        rng = np.random.default_rng([settings.seed, len(selected), len(eval_rows)])
        lift = crossfit_lift(fit_predict, vs.read(selected), labels(selected),
                             vs.read(eval_rows), eval_y, rng, **ppi)
        method = "crossfit"
    else:
        active = np.asarray(trajectory[:m], dtype=np.int64)
        random_arm = np.asarray(controls, dtype=np.int64)
        rng = np.random.default_rng([settings.seed, m])
        lift = round_lift(fit_predict, None, None, vs.read(active), labels(active),
                          vs.read(random_arm), labels(random_arm), vs.read(eval_rows), eval_y,
                          rng, n_repeats=1, **ppi)
        method = "control"
    n = lift.n_labels
    how = (f"{lift.estimator} on {lift.n_eval} eval labels"
           + (" (ppi asked: too few rows where the arms differ)"
              if asked == "ppi" and lift.estimator != "ppi" else ""))
    return ArmLift(lift=lift.lift, lo=lift.lo, hi=lift.hi, level=lift.level, n_labels=n,
                   acc_selected=lift.acc_selected, acc_control=lift.acc_control,
                   eval_set=managed_eval_set(version), method=method, pool=pool,
                   verdict=verdict(lift) + f", at {n} labels each"
                   + (" (random arm: half the eval set, cross-fitted)"
                      if method == "crossfit" else "") + f"; {how}",
                   estimator=lift.estimator, eval_labels=int(lift.n_eval), note=lift.note)


def combine_lifts(uow: UnitOfWork) -> LiftSummary | None:
    """The lift of selection over random: at equal label count (the verdict, computed
    by `train`) and the per-round marginal lifts combined. `train` records it; `status`
    reads the record (`status.recorded_lift`)."""
    logs = [RoundLog.from_dict(r["log"]) for r in uow.rounds.list()]
    lifts = [Lift(**{k: v for k, v in log.lift.items() if k != "eval_set"})
             for log in logs if log.lift is not None]
    arms = uow.settings.get("arm_lift")
    if not lifts and not arms:
        return None
    per_round = None
    if lifts:
        total = cumulative_lift(lifts)
        per_round = {"rounds": len(lifts), "lift": total.lift, "lo": total.lo,
                     "hi": total.hi, "level": total.level, "verdict": verdict(total),
                     "rounds_detail": [{"lift": x.lift, "lo": x.lo, "hi": x.hi} for x in lifts]}
    said = (arms or {}).get("verdict") or per_round["verdict"] + " (marginal, per round)"
    return LiftSummary(equal_count=arms, verdict=said, per_round=per_round)


def forecast(uow: UnitOfWork, settings: Settings, *, target: float | None = None, next_batch: int = 100,
             metric: str = "accuracy", level: float = 0.9) -> ForecastReport:
    """Fit the learning curve (current eval version) and answer: labels needed for
    `target`, and the expected gain of the next batch, with intervals."""
    curve, pts = _curve(uow, settings, metric, level)
    now = float(pts[-1].n_labels)
    gain = curve.expected_gain(next_batch, n_now=now)
    to_target = (asdict(labels_to_target(curve, pts[-1].to_dict(), target, now, next_batch,
                                         _pool_left(uow))) if target is not None else {})
    return ForecastReport(
        metric=metric, labels_now=int(now), points=len(pts),
        curve={"a": curve.a, "b": curve.b, "c": curve.c, "method": curve.method},
        next_batch=next_batch, expected_gain={"mean": gain.mean, "lo": gain.lo, "hi": gain.hi},
        level=level, **to_target)


def _curve(uow: UnitOfWork, settings: Settings, metric: str, level: float
           ) -> tuple[Any, list[CurvePoint]]:
    """The learning curve fitted to the current eval version's points (one per label
    count, the latest model's), and those points. Every point is scored on the same
    eval set, so its noise is fitted as shared (`fit_learning_curve(shared_noise=True)`):
    it moves the curve's level, not its shape."""
    points = learning_curves(uow, metric).current
    by_n: dict[int, CurvePoint] = {}
    for p in points:
        by_n[p.n_labels] = p  # the latest model at each label count
    pts = [by_n[n] for n in sorted(by_n) if n > 0]
    if len(pts) < 3:
        raise InputError(f"a forecast needs the eval metric at 3 or more label counts; there "
                         f"are {len(pts)} (train after each labeled batch)")
    return curve_from_points([(p.n_labels, p.value, p.lo, p.hi) for p in pts],
                             seed=settings.seed, level=level), pts


def curve_from_points(points: Sequence[tuple[float, float, float | None, float | None]],
                      *, seed: int = 0, level: float = 0.9) -> LearningCurve:
    """The learning curve `forecast` and `stopping` fit to (labels, value, lo, hi) points
    on one eval set, ascending by labels: each point's sd is its 95% interval's half-width
    / 1.96 (0.02 without one), its noise shared (one eval set)."""
    n = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    sd = np.array([max((p[3] - p[2]) / (2 * 1.96), 1e-3)
                   if p[2] is not None and p[3] is not None else 0.02 for p in points])
    return fit_learning_curve(n, y, sd, level=level, seed=seed, shared_noise=True)


def _pool_left(uow: UnitOfWork) -> int:
    """Pool rows still unlabeled: the most labels a forecast can count on buying."""
    labeled = len(views.labeled(uow, "pool")[0])
    return max(0, int(uow.samples.split_counts().get("pool", 0)) - labeled)


def labels_to_target(curve: LearningCurve, last: dict, target: float, now: float, next_batch: int,
                     pool_left: int | None = None) -> TargetAnswer:
    """Labels to `target`, honest about the eval set: 0 only when the latest point's
    95% interval lies above the target (the eval set shows it reached); otherwise an
    interval that is never zero-width: when the curve's fit says "reached" but the eval
    set cannot show it, at least one more batch is in the interval (the figure rests on
    a curve the eval set has not confirmed)."""
    shown = last["lo"] is not None and last["lo"] >= target
    if shown:
        return TargetAnswer(target=target, reached=True, shown=True,
                            labels_to_target={"n": now, "lo": now, "hi": now},
                            more_labels={"n": 0.0, "lo": 0.0, "hi": 0.0},
                            note=f"reached: the eval set's 95% interval starts at {last['lo']:.3f}")
    # Future readings come one batch apart, and only as long as the pool lasts.
    need = curve.labels_to_reach(target, step=next_batch,
                                 horizon=None if pool_left is None else max(pool_left, 1))
    # None means "possibly never" (not within the pool, or above the plausible asymptote).
    finite = {k: (v if np.isfinite(v) else None)
              for k, v in (("n", need.n), ("lo", need.lo), ("hi", need.hi))}
    more = {k: None if v is None else max(0.0, v - now) for k, v in finite.items()}
    note = None
    if more["hi"] is not None and more["hi"] < next_batch:
        more["hi"] = float(next_batch)
        note = (f"the curve puts the target within reach, but the eval set's 95% interval "
                f"({last['lo']:.3f} to {last['hi']:.3f}) cannot show it yet")
    return TargetAnswer(target=target, reached=last["value"] >= target, shown=False,
                        labels_to_target=finite, more_labels=more, note=note)


def stop_set(uow: UnitOfWork, settings: Settings) -> np.ndarray:
    """A fixed unlabeled sample of the pool (chosen by a hash of the ids, so it does not
    move as the pool grows little) on which successive models' predictions are compared."""
    rows = uow.samples.rows_by_split("pool")
    if len(rows) <= STOP_SET_SIZE:
        return rows
    ids = [b[1] for chunk in uow.samples.iter(rows) for b in chunk]
    u = uniform_from_ids(ids, seed=settings.seed + 1)
    return np.sort(rows[np.argsort(u)[:STOP_SET_SIZE]])


def stopping(uow: UnitOfWork, settings: Settings, *, target: float | None = None, budget: int | None = None,
             gain_threshold: float = 0.01, next_batch: int = 100) -> StoppingAnswer:
    """Every stopping rule's answer for the project as it stands. `gain_threshold`: the
    accuracy still reachable by labeling the whole pool (forecast, its 90% upper end
    included) under which `remaining_gain` stops; `next_batch` is the budget rule's."""
    labeled = len(views.labeled(uow, "pool")[0])
    pool_left = _pool_left(uow)
    try:
        fitted, pts = _curve(uow, settings, "accuracy", 0.9)
        left_gain = fitted.expected_gain(max(pool_left, 1), n_now=float(pts[-1].n_labels))
        gain, gain_hi = left_gain.mean, left_gain.hi
    except InputError:
        gain = gain_hi = None
    from longtail.engine.rounds import eval_status
    from longtail.evaluation import eval_evidence

    need = eval_status(uow, settings)
    evidence = eval_evidence(need.labeled, need.wanted, need.pending,
                             halfwidth=need.halfwidth, target=need.target)
    evidence_from = "eval set"
    if evidence and need.pending == 0 and need.labeled + labeled >= need.wanted:
        # A small pool: the eval split is used up before its target size. Every labeled
        # row, cross-fitted (`small_pool_estimate`), is then the evidence.
        evidence, evidence_from = None, "every labeled row, cross-fitted"
    curve = learning_curves(uow).current
    metric = curve[-1] if curve else None
    # The default is RemainingGain alone; its threshold is the accuracy a stop gives up.
    # Not among the defaults (bench/results/honest_numbers.json, issue 26): the per-batch
    # ForecastGain, whose threshold means a different slope for each batch size, and
    # StabilizingPredictions (kappa > 0.99 over 3 models), which stopped Banking77 with
    # 2.4 points still reachable and Fashion-MNIST with up to 1.4 (digits: 0.85 on mean).
    rules: list = [RemainingGain(gain_threshold)]
    if target is not None:
        # The target counts as reached when the eval interval's lower end reaches it:
        # that is the evidence, whatever the eval set's size.
        rules.append(TargetReached(target, use_lower=True, needs_evidence=False))
    if budget is not None:
        rules.append(BudgetSpent(budget))
    report = evaluate_stopping(rules, remaining_gain=gain,
                               remaining_gain_hi=gain_hi, pool_left=pool_left,
                               evidence=evidence,
                               metric=metric and {"value": metric.value, "lo": metric.lo,
                                                  "hi": metric.hi},
                               spent=labeled, budget=budget, next_batch_cost=next_batch)
    return StoppingAnswer(
        report.stop, report.reason, [d.__dict__ for d in report.decisions],
        evidence={"enough": evidence is None, "why": evidence, "from": evidence_from,
                  "eval_labeled": need.labeled, "eval_wanted": need.wanted,
                  "eval_pending": need.pending,
                  "eval_labels_to_resolve": max(0, need.wanted - need.labeled)
                  if evidence else 0})


def evaluate(uow: UnitOfWork, settings: Settings, test: Any = None, *, model_id: int | None = None,
             id: str = "id", text: str | None = "text", label: str = "label",
             vector: str | None = None, vector_prefix: str | None = None,
             crossfit: bool = True) -> EvalReport | None:
    """Score a model on the managed eval set (default) or on a labeled file outside the
    pool. Metrics carry bootstrap 95% intervals and are recorded in the catalog; a test
    file's figures are kept under its own eval-set name, never as the managed ones.
    `crossfit=False`: a small pool's cross-fitted estimate is left out and a warning says
    how to get it (`train` does so where it would cost many fits of a slow learner)."""
    from longtail.errors import ProjectError

    models = {m["id"]: m for m in uow.models.list()}
    if not models:
        raise ProjectError("no model yet: run `longtail train` first")
    if model_id is not None and model_id not in models:
        raise InputError(f"no model {model_id} (models: {', '.join(map(str, models))})")
    meta = models[model_id] if model_id is not None else models[max(models)]
    if test is None:
        scored_now: dict[int, Scores] = {}
        eval_set = rescore_all(uow, settings, scored_now=scored_now)
        if eval_set is None:
            return None
        cur = current_eval_version(uow)
        assert cur is not None
        version, rows, labels = cur
        # The model was just scored (a new model, or a new eval version): use those
        # figures; else score it again for its per-class figures and confusion matrix.
        result = scored_now.get(meta["id"]) or _predict_metrics(
            uow, settings, meta, uow.vector_set(meta["encoder"]).read(rows), labels)
        from longtail.engine.estimates import managed_estimate

        return _small_pool(uow, settings, crossfit, _report(
            result, eval_set, version, meta["id"],
            # the project's estimator (PPI by default) over the whole eval split
            estimate=managed_estimate(uow, settings, meta)))
    from pathlib import Path

    from longtail.filehash import file_sha256
    from longtail.ingest.labeled_file import read_labeled_file
    from longtail.store.files import labeled_file_cache

    info = uow.vectors.info(meta["encoder"])
    X, y = read_labeled_file(test, encoder_name=meta["encoder"], encoder_config=info["config"],
                             dim=info["dim"], id=id, text=text, label=label, vector=vector,
                             vector_prefix=vector_prefix, cache=labeled_file_cache(uow.root))
    eval_set = f"file:{file_sha256(Path(test))[:12]}"
    result = score_model(uow, settings, meta, X, y.astype(str), eval_set)
    return _report(result, eval_set, None, meta["id"])


def _report(result: Scores, eval_set: str, version: int | None, model_id: int, *,
            estimate: ManagedEstimate | None = None) -> EvalReport:
    return EvalReport(eval_set=eval_set, eval_version=version, n=result.n, model_id=model_id,
                      accuracy=result.accuracy, macro_f1=result.macro_f1,
                      worst_class_recall=result.worst_class_recall, per_class=result.per_class,
                      confusion=result.confusion,
                      warnings=small_eval_warnings(result.n, len(result.per_class)),
                      estimate=estimate)


def _small_pool(uow: UnitOfWork, settings: Settings, crossfit: bool, out: EvalReport
                ) -> EvalReport:
    """When the eval split cannot reach its target size (a small pool), add the estimate
    from every labeled row by cross-fitting (`_crossfit_estimate`; with `crossfit` False
    a warning naming `longtail evaluate` instead) and say what the eval set resolves;
    figures say which estimate is which and on how many labels."""
    from longtail.evaluation.resolution import eval_resolution

    splits = uow.samples.split_counts()
    res = eval_resolution(int(splits.get("eval", 0)), int(sum(splits.values())),
                          target=settings.eval_halfwidth, accuracy=out.accuracy["value"])
    if res.enough:
        return out
    if not crossfit:
        return replace(out, resolution=res.to_dict(), warnings=[
            *out.warnings, res.text(), "the estimate from every labeled row, cross-fitted, "
            "was left out here (it refits this slow learner once per fold): `longtail "
            "evaluate` gives it"])
    return replace(out, resolution=res.to_dict(), warnings=[*out.warnings, res.text()],
                   crossfit=_crossfit_estimate(uow, settings))


def _crossfit_estimate(uow: UnitOfWork, settings: Settings, *, folds: int = 5) -> dict | None:
    """Accuracy estimated from every labeled row (pool and eval) by `folds`-fold
    cross-fitting, as `train --release` does over the eval set: each row predicted by
    the project's learner fitted on the other folds. More labels than the eval set, but
    the pool rows were picked by the strategy, not at random, so the figure can lean
    low where selection picks hard rows. Clopper-Pearson 95% interval. None below
    2·folds labeled rows. O(folds) fits."""
    from longtail.evaluation.metrics import proportion_interval
    from longtail.learners.crossfit import cross_fit_probs, stratified_folds

    vs = views.vectors(uow, settings, complete=False)
    pool_rows, pool_y = views.labeled(uow, "pool")
    eval_rows, eval_y = views.labeled(uow, "eval")
    rows = np.concatenate([pool_rows, eval_rows]).astype(np.int64)
    y = np.concatenate([pool_y, eval_y]).astype(str)
    keep = rows < vs.n_rows
    rows, y = rows[keep], y[keep]
    if len(rows) < 2 * folds or len(np.unique(y)) < 2:
        return None
    learner, params = settings.learner, dict(settings.learner_params or {})
    if learner == "linear":
        params["warm_start"] = False
    rng = np.random.default_rng([settings.seed, len(rows), 11])
    fold_of = stratified_folds(y, folds, rng)
    classes = np.unique(y)
    probs = cross_fit_probs(lambda: make_learner(learner, **params), vs.read(rows), y,
                            fold_of, classes=classes)
    correct = int(np.sum(classes[probs.argmax(1)] == y))
    lo, hi = proportion_interval(correct, len(y))
    return {"accuracy": {"value": correct / len(y), "lo": float(lo), "hi": float(hi)},
            "n": int(len(y)), "pool_labels": int(keep[:len(pool_rows)].sum()),
            "eval_labels": int(keep[len(pool_rows):].sum()),
            "method": f"{folds}-fold cross-fitting over every labeled row",
            "caveat": "pool rows were picked by the strategy, not at random: the figure "
                      "can lean low where selection picks hard rows"}


def _predict_metrics(uow: UnitOfWork, settings: Settings, meta: dict, X: np.ndarray,
                     y: np.ndarray) -> Scores:
    model = load_model(uow, meta, predict_only=True)
    proba = np.concatenate([model.predict_proba(X[i:i + 65_536]) for i in range(0, len(X), 65_536)])
    pred = np.asarray(model.classes_)[proba.argmax(1)].astype(str)
    return Scores.of(evaluate_predictions(y, pred, n_boot=1000, seed=settings.seed),
                     confusion(y, pred))


def small_eval_warnings(n: int, n_classes: int) -> list[str]:
    """Warnings a person should see next to eval figures measured on few samples."""
    out = []
    if n < SMALL_EVAL:
        out.append(f"the eval set has only {n} labeled samples: its figures move by several "
                   "points from one sample to the next (label more eval rows: `query` puts "
                   "them first)")
    if n_classes and n < 5 * n_classes:
        out.append(f"{n} eval samples for {n_classes} classes: fewer than 5 per class, so "
                   "per-class figures are not reliable")
    return out
