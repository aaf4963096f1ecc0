"""Money use cases (issue 29): annotator pools, the labeling spend of every event, the
compute ledger, and the report `longtail costs` shows. Each takes a unit of work and
the project's settings; the arithmetic is in `longtail.costs` (pure).

Spend is attributed to rounds: an event to its `round_id` when the path recorded one
(the service), otherwise, like a compute record without a round, to the round open at
its time: the newest round created before it ("round 0" = before the first round, e.g.
seed labels). Every event is spend: a first answer, an overlap answer (another
annotator's answer to a row in the same round) and a relabel (any later answer), skips
and unsure answers too (they took the annotator's time).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from longtail.costs import ledger, observed
from longtail.costs.pools import (
    Pool,
    PoolIndex,
    check_name,
    event_pool,
    parse_rate,
    parse_where,
    pools_from_setting,
    pools_to_setting,
)
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store, UnitOfWork

if TYPE_CHECKING:  # the cost model loads where one is fitted, not for `status`
    from longtail.costs.model import CostModel, HoldoutError

# -- pools -------------------------------------------------------------------------------

def list_pools(uow: UnitOfWork) -> list[Pool]:
    """The project's pools, in the order they were added."""
    return pools_from_setting(uow.settings.get("pools", []))


def add_pool(uow: UnitOfWork, name: str, rate: str | float | None = None, *,
             members: Sequence[str] = (), where: Sequence[str] = (),
             default: bool | None = None) -> Pool:
    """Create pool `name` (a rate is then required) or update it: a new rate, more
    members, more `where` rules, default or not. An annotator belongs to one pool:
    adding them here takes them out of any other. The first pool made is the default."""
    check_name(name)
    pools = list_pools(uow)
    old = next((p for p in pools if p.name == name), None)
    if old is None and rate is None:
        raise InputError(f"pool {name!r} is new: give its rate (--rate 20/h)")
    value = parse_rate(rate) if rate is not None else old.rate
    rules = [parse_where(w) for w in where]
    members = [m.strip() for m in members if m and m.strip()]
    taken = set(members)
    pools = [Pool(p.name, p.rate, tuple(m for m in p.members if m not in taken), p.where,
                  p.default and not default) for p in pools]
    old = next((p for p in pools if p.name == name), None)
    new = Pool(name=name, rate=value,
               members=tuple(dict.fromkeys([*(old.members if old else ()), *members])),
               where=tuple(dict.fromkeys([*(old.where if old else ()), *rules])),
               default=bool(default) if default is not None else
               (old.default if old else not pools))
    pools = [new if p.name == name else p for p in pools] if old else [*pools, new]
    uow.settings.set("pools", pools_to_setting(pools))
    return new


def remove_pool(uow: UnitOfWork, name: str) -> None:
    """Remove pool `name`; events it priced become unpriced (or the default's)."""
    pools = list_pools(uow)
    if not any(p.name == name for p in pools):
        raise InputError(f"no pool {name!r} (pools: {', '.join(p.name for p in pools) or 'none'})")
    uow.settings.set("pools", pools_to_setting([p for p in pools if p.name != name]))


@dataclass(frozen=True)
class ComputeRates:
    """The compute prices: money per CPU-hour and per GPU-hour."""

    cpu_hour: float
    gpu_hour: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def set_compute_rates(uow: UnitOfWork, cpu: str | float | None = None,
                      gpu: str | float | None = None) -> ComputeRates:
    """Set the compute prices (money per CPU-hour, per GPU-hour); the prices now."""
    if cpu is not None:
        uow.settings.set("compute_rate_cpu_hour", parse_rate(cpu))
    if gpu is not None:
        uow.settings.set("compute_rate_gpu_hour", parse_rate(gpu))
    s = Settings.from_dict(uow.settings.all())
    return ComputeRates(cpu_hour=s.compute_rate_cpu_hour, gpu_hour=s.compute_rate_gpu_hour)


# -- labeling spend ----------------------------------------------------------------------

@dataclass
class EventCosts:
    """Per label event, aligned arrays (n events, oldest first)."""

    event_id: np.ndarray  # int64
    row: np.ndarray  # int64
    period: np.ndarray  # int64: the round the event is attributed to (0: before any)
    pool: list[str | None]
    seconds: np.ndarray  # trimmed, imputed where no time was recorded
    imputed: np.ndarray  # bool
    recorded: np.ndarray  # raw seconds as recorded (NaN: none)
    money: np.ndarray  # NaN where no pool prices the event
    what: list[str]  # first | overlap | relabel
    eval: np.ndarray  # bool: an eval row
    cap: float


def _periods(rounds: list[dict]) -> tuple[list[str], list[int]]:
    ordered = sorted(rounds, key=lambda r: (r["created_at"], r["id"]))
    return [r["created_at"] for r in ordered], [int(r["id"]) for r in ordered]


def _period_of(stamps: list[str], ids: list[int], created_at: str, round_id: Any) -> int:
    if round_id is not None:
        return int(round_id)
    i = bisect.bisect_right(stamps, created_at)
    return ids[i - 1] if i else 0


def event_costs(uow: UnitOfWork, settings: Settings, events: list[dict] | None = None) -> EventCosts:
    """Seconds and money of every label event (see the module docstring). O(events)
    plus, when a pool's rule names metadata, one read of the events' rows."""
    events = uow.labels.events() if events is None else events
    pools = pools_from_setting(settings.pools)
    index = PoolIndex(pools)
    rows = np.array([int(e["row"]) for e in events], dtype=np.int64)
    meta: dict[int, dict] = {}
    if any(k != "label" for p in pools for k, _ in p.where) and len(rows):
        for part in uow.samples.iter(np.unique(rows)):
            meta.update({r: m for r, _e, _t, m in part})
    eval_rows = set(uow.samples.rows_by_split("eval").tolist())
    stamps, ids = _periods(uow.rounds.list())
    recorded = np.array([np.nan if e["seconds"] is None else float(e["seconds"])
                         for e in events], dtype=float)
    cap = observed.idle_cap(recorded, settings.cost_seconds_cap)
    priced = [event_pool(index, e["annotator"], e["label"] or None, meta.get(int(e["row"])))
              for e in events]
    names = [p.name if p else None for p in priced]
    seconds, imputed = observed.impute(observed.trim(recorded, cap),
                                       np.array([n or "" for n in names], dtype=object))
    rate = np.array([p.rate if p else np.nan for p in priced], dtype=float)
    what: list[str] = []
    seen: dict[int, tuple[Any, Any]] = {}  # row -> (round of its first answer, annotators)
    for e in events:
        r = int(e["row"])
        if r not in seen:
            seen[r] = (e["round_id"], {e["annotator"]})
            what.append("first")
            continue
        first_round, who = seen[r]
        same_round = e["round_id"] is not None and e["round_id"] == first_round
        what.append("overlap" if same_round and e["annotator"] not in who else "relabel")
        who.add(e["annotator"])
    return EventCosts(
        event_id=np.array([int(e["id"]) for e in events], dtype=np.int64), row=rows,
        period=np.array([_period_of(stamps, ids, e["created_at"], e["round_id"])
                         for e in events], dtype=np.int64),
        pool=names, seconds=seconds, imputed=imputed, recorded=recorded,
        money=observed.money(seconds, rate), what=what,
        eval=np.array([int(r) in eval_rows for r in rows], dtype=bool), cap=cap)


# -- the compute ledger ------------------------------------------------------------------

def record_compute(uow: UnitOfWork, run: ledger.CommandRun) -> int | None:
    """Keep one metered command's record (nothing for a command nested in another)."""
    if run.nested:
        return None
    return uow.compute.add(run.record())


def metered(command: str, *, worth_recording: Callable[[Any], bool] | None = None
            ) -> Callable[[Callable], Callable]:
    """Decorate a `Project` method: meter it as `command` (longtail.costs.ledger) and,
    when it succeeds, keep its record in the ledger (its own small transaction, after
    the command's: a failed command changes nothing, not even the ledger). A command a
    metered command calls is counted in the caller's record only. `worth_recording`
    (result -> bool) leaves out runs that did nothing (a `run` pass over an unchanged
    folder must leave the project as it was)."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
            with ledger.command(command) as run:
                result = fn(self, *args, **kwargs)
            if not run.nested and (worth_recording is None or worth_recording(result)):
                run.round_id = getattr(result, "round_id", None)
                with self.store.unit_of_work() as uow:
                    record_compute(uow, run)
            return result

        return inner

    return wrap


def _compute_period(stamps: list[str], ids: list[int], rec: dict) -> int:
    return _period_of(stamps, ids, rec["created_at"], rec.get("round_id"))


# -- the report --------------------------------------------------------------------------

@dataclass
class Spend:
    """Labeling and compute spend of one round (or of the whole project)."""

    round: int | None = None
    events: int = 0
    first: int = 0
    overlap: int = 0
    relabel: int = 0
    eval_events: int = 0
    imputed: int = 0
    unpriced: int = 0
    label_seconds: float = 0.0
    label_money: float = 0.0
    eval_label_money: float = 0.0
    commands: int = 0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    compute_money: float = 0.0
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def total_money(self) -> float:
        return self.label_money + self.compute_money

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 6)
        d["total_money"] = round(self.total_money, 6)
        return d


@dataclass
class CostsReport:
    """What `longtail costs` shows: spend per round and in total, by pool, the pools,
    the idle cap in force and the prices."""

    rounds: list[Spend]
    total: Spend
    by_pool: dict[str, dict[str, float]]
    pools: list[Pool]
    cap_seconds: float
    rates: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"rounds": [r.to_dict() for r in self.rounds], "total": self.total.to_dict(),
                "by_pool": self.by_pool, "pools": [p.to_dict() for p in self.pools],
                "cap_seconds": round(self.cap_seconds, 3), "rates": self.rates}


def _add_events(spend: Spend, c: EventCosts, mask: np.ndarray) -> None:
    what = np.array(c.what, dtype=object)[mask] if len(c.what) else np.array([], dtype=object)
    money = c.money[mask]
    spend.events += int(mask.sum())
    spend.first += int((what == "first").sum())
    spend.overlap += int((what == "overlap").sum())
    spend.relabel += int((what == "relabel").sum())
    spend.eval_events += int(c.eval[mask].sum())
    spend.imputed += int(c.imputed[mask].sum())
    spend.unpriced += int((~np.isfinite(money)).sum())
    spend.label_seconds += observed.finite_sum(c.seconds[mask])
    spend.label_money += observed.finite_sum(money)
    spend.eval_label_money += observed.finite_sum(money[c.eval[mask]])


def _add_run(spend: Spend, rec: dict, settings: Settings) -> None:
    spend.commands += 1
    spend.cpu_seconds += float(rec["cpu_seconds"])
    spend.gpu_seconds += float(rec["gpu_seconds"])
    spend.wall_seconds += float(rec["wall_seconds"])
    spend.compute_money += ledger.compute_money(float(rec["cpu_seconds"]),
                                                float(rec["gpu_seconds"]),
                                                settings.compute_rate_cpu_hour,
                                                settings.compute_rate_gpu_hour)
    for name, p in (rec["phases"] or {}).items():
        mine = spend.phases.setdefault(name, {"cpu_seconds": 0.0, "wall_seconds": 0.0,
                                              "gpu_seconds": 0.0, "peak_rss_mb": 0.0})
        for k in ("cpu_seconds", "wall_seconds", "gpu_seconds"):
            mine[k] = round(mine[k] + float(p.get(k, 0.0)), 4)
        mine["peak_rss_mb"] = max(mine["peak_rss_mb"], float(p.get("peak_rss_mb", 0.0)))


def costs_report(uow: UnitOfWork, settings: Settings) -> CostsReport:
    """Labeling and compute spend per round and in total. O(events + commands)."""
    c = event_costs(uow, settings)
    runs = uow.compute.list()
    stamps, ids = _periods(uow.rounds.list())
    run_period = [_compute_period(stamps, ids, rec) for rec in runs]
    periods = sorted(set(c.period.tolist()) | set(run_period) | set(ids))
    out, total = [], Spend(round=None)
    for k in periods:
        spend = Spend(round=k)
        _add_events(spend, c, c.period == k)
        for rec, p in zip(runs, run_period, strict=True):
            if p == k:
                _add_run(spend, rec, settings)
        out.append(spend)
    _add_events(total, c, np.ones(len(c.row), dtype=bool))
    for rec in runs:
        _add_run(total, rec, settings)
    by_pool: dict[str, dict[str, float]] = {}
    for name in sorted({n or "(none)" for n in c.pool}):
        mask = np.array([(n or "(none)") == name for n in c.pool], dtype=bool)
        by_pool[name] = {"events": int(mask.sum()),
                         "seconds": round(observed.finite_sum(c.seconds[mask]), 3),
                         "money": round(observed.finite_sum(c.money[mask]), 6)}
    return CostsReport(rounds=out, total=total, by_pool=by_pool,
                       pools=pools_from_setting(settings.pools), cap_seconds=c.cap,
                       rates={"cpu_hour": settings.compute_rate_cpu_hour,
                              "gpu_hour": settings.compute_rate_gpu_hour})


@dataclass(frozen=True)
class SpendSummary:
    """The totals `status` and MLflow show (money rounded as shown)."""

    label_money: float
    eval_label_money: float
    compute_money: float
    total_money: float
    label_seconds: float
    cpu_seconds: float
    events: int
    unpriced: int
    imputed: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def spend_summary(uow: UnitOfWork, settings: Settings) -> SpendSummary:
    """The totals `status` and `history` show: label, eval-label and compute money."""
    t = costs_report(uow, settings).total
    return SpendSummary(
        label_money=round(t.label_money, 4), eval_label_money=round(t.eval_label_money, 4),
        compute_money=round(t.compute_money, 6), total_money=round(t.total_money, 4),
        label_seconds=round(t.label_seconds, 1), cpu_seconds=round(t.cpu_seconds, 2),
        events=t.events, unpriced=t.unpriced, imputed=t.imputed)


# -- predicted cost (longtail.costs.model) ------------------------------------------------

def _observed_per_row(uow: UnitOfWork, settings: Settings, unit: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray, str]:
    """(rows, cost) of each row's first timed answer: money when answers are priced,
    else trimmed seconds (`unit` "seconds" asks for seconds); and the unit."""
    c = event_costs(uow, settings)
    priced = bool(np.isfinite(c.money).any()) and unit != "seconds"
    value = c.money if priced else c.seconds
    rows, cost, seen = [], [], set()
    for r, v, imp in zip(c.row.tolist(), value.tolist(), c.imputed.tolist(), strict=True):
        if imp or r in seen or not np.isfinite(v):
            continue
        seen.add(r)
        rows.append(r)
        cost.append(v)
    return np.array(rows, dtype=np.int64), np.array(cost, dtype=float), \
        "money" if priced else "seconds"


def _features(store: Store, settings: Settings, rows: np.ndarray) -> np.ndarray:
    from longtail.costs.model import cost_features
    from longtail.engine import views

    with store.reading() as uow:
        vs = views.vectors(uow, settings, complete=False)
    lengths = np.zeros(len(rows))
    pos = {int(r): i for i, r in enumerate(rows.tolist())}
    with store.unit_of_work() as uow:
        for part in uow.samples.iter(rows):
            for r, _e, text, _m in part:
                lengths[pos[int(r)]] = len(text or "")
    return cost_features(vs.read(rows), lengths)


@dataclass(frozen=True)
class CostModelReport:
    """What `costs --model` shows of the cost model: the answers it learned from, its
    unit ("money" or "seconds"), the prior and its weight, and the held-out error
    (None with fewer than 10 answers)."""

    answers: int
    unit: str
    prior: float
    heldout: HoldoutError | None = None
    prior_weight: float | None = None
    mean_observed: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"answers": self.answers, "unit": self.unit, "prior": self.prior,
             "heldout": self.heldout.to_dict() if self.heldout else None}
        if self.prior_weight is not None:
            d |= {"prior_weight": self.prior_weight, "mean_observed": self.mean_observed}
        return d


class FittedCost(NamedTuple):
    """The cost model (None before any timed answer) and its report."""

    model: CostModel | None
    report: CostModelReport


def cost_model(store: Store, settings: Settings, unit: str | None = None) -> FittedCost:
    """The cost model fitted on every timed answer, and its report: answers, unit,
    prior, held-out error with its interval (None with fewer than 10 answers).
    `unit` "seconds": a model of time even where answers are priced."""
    from longtail.costs.model import fit_cost_model, holdout_error

    with store.unit_of_work() as uow:
        rows, cost, unit = _observed_per_row(uow, settings, unit)
    X = _features(store, settings, rows) if len(rows) else np.zeros((0, 1))
    model = fit_cost_model(X, cost) if len(rows) else None
    if model is None:
        from longtail.costs.model import DEFAULT_PRIOR

        return FittedCost(None, CostModelReport(answers=0, unit=unit, prior=DEFAULT_PRIOR))
    rng = np.random.default_rng([settings.seed, len(rows), 4])
    err = holdout_error(X, cost, rng)
    return FittedCost(model, CostModelReport(
        answers=int(len(rows)), unit=unit, prior=round(float(np.exp(model.log_prior)), 6),
        heldout=err.rounded() if err is not None else None,
        prior_weight=round(model.prior_strength / (model.n_obs + model.prior_strength), 3),
        mean_observed=round(float(cost.mean()), 6)))


def predicted_costs(store: Store, settings: Settings, rows: np.ndarray,
                    model: Any = None) -> np.ndarray:
    """Predicted cost (money when answers are priced, else seconds) of `rows`."""
    from longtail.costs.model import DEFAULT_PRIOR

    rows = np.asarray(rows, dtype=np.int64)
    if model is None:
        model, _ = cost_model(store, settings)
    if model is None:
        return np.full(len(rows), DEFAULT_PRIOR)
    return model.predict(_features(store, settings, rows))


CHUNK_ROWS = 65_536


def predicted_money(store: Store, settings: Settings, rows: np.ndarray,
                    fitted: FittedCost | None = None) -> np.ndarray:
    """Predicted money of labeling each of `rows` (n,), streamed in chunks. A model
    fitted on seconds (no answer priced yet) is priced at the pool a sample needs by
    its metadata, else the default pool; no pool to price with is an InputError."""
    from longtail.costs.model import DEFAULT_PRIOR
    from longtail.costs.pools import required_pool

    rows = np.asarray(rows, dtype=np.int64)
    model, report = fitted if fitted is not None else cost_model(store, settings)
    out = np.empty(len(rows))
    for i in range(0, len(rows), CHUNK_ROWS):
        part = rows[i:i + CHUNK_ROWS]
        out[i:i + len(part)] = (model.predict(_features(store, settings, part)) if model
                                else np.full(len(part), DEFAULT_PRIOR))
    if report.unit == "money" and model is not None:
        return out
    pools = pools_from_setting(settings.pools)
    default = PoolIndex(pools).default
    meta_rules = any(k != "label" for p in pools for k, _ in p.where)
    if default is None and not meta_rules:
        raise InputError("a money budget needs prices: add a pool with its rate "
                         "(`longtail pools add crowd --rate 20/h`)")
    rate = np.full(len(rows), default.rate if default else np.nan)
    if meta_rules:
        with store.unit_of_work() as uow:
            k = 0
            for part in uow.samples.iter(rows):
                for _r, _e, _t, meta in part:
                    need = required_pool(pools, None, meta)
                    if need is not None:
                        rate[k] = need.rate
                    k += 1
    if not np.isfinite(rate).all():
        raise InputError("a money budget needs prices: some samples are in no pool and "
                         "there is no default pool (`longtail pools add NAME --default`)")
    return out / 3600.0 * rate


def selection_cost(store: Store, settings: Settings, rows: np.ndarray,
                   fitted: FittedCost | None = None) -> np.ndarray:
    """What cost-aware selection weighs against the benefit, per row (n,). With pools
    at different rates: the predicted money per second of labeling (predicted money
    over predicted seconds), i.e. the rate of the pool a sample is expected to need:
    on digits (bench/_cost_tune.py) weighing the whole predicted money also bought the
    shortest items, which teach least. With one rate: the predicted money (time is all
    there is to weigh). InputError when nothing can be priced (as `predicted_money`)."""
    money = predicted_money(store, settings, rows, fitted)
    if len({p.rate for p in pools_from_setting(settings.pools)}) < 2:
        return money
    seconds = predicted_costs(store, settings, rows, cost_model(store, settings, "seconds").model)
    return money / np.maximum(seconds, 1e-9)


def count_for_money(store: Store, settings: Settings, candidates: np.ndarray, budget_money: float,
                    rng: np.random.Generator, fitted: FittedCost | None = None) -> int:
    """How many samples to ask a strategy for when `budget_money` is to be spent: from
    the predicted money of up to 2,000 random candidates."""
    from longtail.costs.select import count_for

    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) == 0:
        return 1
    probe = np.sort(rng.choice(candidates, size=min(2000, len(candidates)), replace=False))
    return min(len(candidates), count_for(predicted_money(store, settings, probe, fitted),
                                          budget_money))


@dataclass(frozen=True)
class WorkPackage:
    """One annotator's share of a batch: its name, positions in the batch, rows, and
    predicted seconds."""

    package: str
    positions: list[int]
    rows: list[int]
    predicted_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def work_packages(store: Store, settings: Settings, rows: np.ndarray, annotators: int,
                  overlap: float = 0.0, names: list[str] | None = None) -> list[WorkPackage]:
    """The batch `rows` split into `annotators` packages balanced by predicted seconds
    (`longtail.costs.packages`): per package its name, positions in the batch, rows and
    predicted seconds."""
    from longtail.costs.packages import split_packages

    rows = np.asarray(rows, dtype=np.int64)
    model, _ = cost_model(store, settings, unit="seconds")
    seconds = predicted_costs(store, settings, rows, model)
    parts = split_packages(seconds, annotators, overlap=overlap)
    names = names or [f"{k + 1:02d}" for k in range(annotators)]
    return [WorkPackage(package=names[k], positions=p.tolist(), rows=rows[p].tolist(),
                        predicted_seconds=round(float(seconds[p].sum()), 1))
            for k, p in enumerate(parts)]


def pool_members(store: Store, name: str) -> list[str]:
    """The members of pool `name` (an InputError naming the pools when there is none, or
    it has no members)."""
    with store.unit_of_work() as uow:
        pools = list_pools(uow)
    found = next((p for p in pools if p.name == name), None)
    if found is None:
        raise InputError(f"no pool {name!r} (pools: {', '.join(p.name for p in pools) or 'none'})")
    if not found.members:
        raise InputError(f"pool {name!r} has no members: `longtail pools add {name} --member NAME`")
    return list(found.members)
