"""Standing triggers: saved rules (``longtail.discovery.triggers``) run on the rows of
every ingest and, after every round, on the unlabeled pool; matches join the discovery
queue under the trigger's name, so the next round takes them first.

Triggers are one project setting (``triggers``: name, rule, priority, counts), so adding
or removing one is one transaction and nothing new on disk.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store, UnitOfWork

KEY = "triggers"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEEP_RUNS = 20  # runs remembered per trigger (hits per ingest and round)


@dataclass
class Trigger(Record):
    """A standing trigger: its rule, the priority its matches are queued with, when it
    was added, its total hits and its last KEEP_RUNS runs (at, on, rows, hits)."""

    name: str
    rule: str
    priority: float = 1.0
    created_at: str = ""
    hits: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, t: dict[str, Any]) -> Trigger:
        return cls(name=str(t["name"]), rule=str(t["rule"]),
                   priority=float(t.get("priority", 1.0)), created_at=str(t.get("created_at", "")),
                   hits=int(t.get("hits", 0)), runs=list(t.get("runs") or []))


@dataclass
class Removed(Record):
    """The trigger removed."""

    removed: str


@dataclass
class RuleTest(Record):
    """What a rule matches now: the rule's text, the eligible rows it ran over, how many
    it matched, the first matches (row, id, text, metadata) and the seconds it took."""

    rule: str
    rows: int
    hits: int
    examples: list[dict[str, Any]]
    seconds: float


@dataclass
class TriggerRun(Record):
    """One run of the saved triggers: hits per trigger name (every rule that ran, 0
    included; empty without triggers) and the eligible rows they ran over."""

    hits: dict[str, int] = field(default_factory=dict)
    rows: int = 0

    def __bool__(self) -> bool:
        return bool(self.hits)


@dataclass
class TriggerLine(Record):
    """For `status`: a trigger's total hits and its last run (None before any)."""

    name: str
    hits: int
    last: dict[str, Any] | None


@dataclass
class Frame:
    """The columns a set of rules reads, one value per row: ``columns`` maps a field
    name ("confidence", "meta.source", "similar:a,b") to an (n,) array. A rule reads it
    by field name (``frame["confidence"]``; ``frame["__n__"]`` is n)."""

    n: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.n if name == "__n__" else self.columns[name]


def _saved(uow: UnitOfWork) -> list[dict]:
    return [dict(t) for t in (uow.settings.get(KEY) or [])]


def list_triggers(store: Store) -> list[Trigger]:
    """Every trigger: name, rule, priority, total hits and its recent runs."""
    with store.reading() as uow:
        return [Trigger.from_dict(t) for t in _saved(uow)]


def _check_exemplars(uow: UnitOfWork, rule: Any) -> None:
    ids = sorted({i for group in rule.exemplars for i in group})
    if ids:
        found = uow.samples.ids_to_rows(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise InputError(f"trigger rule: similar() names unknown sample id(s) "
                             f"{', '.join(map(repr, missing[:5]))}")


def add_trigger(store: Store, name: str, rule: str, *, priority: float = 1.0) -> Trigger:
    """Save a trigger (the rule parsed and checked first); InputError for a bad name, a
    name in use, or a bad rule."""
    from longtail.discovery.triggers import parse

    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"trigger name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
    if not np.isfinite(priority):
        raise InputError(f"--priority must be a finite number, got {priority}")
    parsed = parse(rule)
    with store.unit_of_work() as uow:
        saved = _saved(uow)
        if any(t["name"] == name for t in saved):
            raise InputError(f"a trigger named {name!r} exists: remove it first")
        _check_exemplars(uow, parsed)
        t = {"name": name, "rule": rule, "priority": float(priority),
             "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "hits": 0, "runs": []}
        uow.settings.set(KEY, [*saved, t])
    return Trigger.from_dict(t)


def remove_trigger(store: Store, name: str) -> Removed:
    """Delete a trigger (rows it queued stay queued)."""
    with store.unit_of_work() as uow:
        saved = _saved(uow)
        if not any(t["name"] == name for t in saved):
            raise InputError(f"no trigger named {name!r} (triggers: "
                             f"{', '.join(t['name'] for t in saved) or 'none'})")
        uow.settings.set(KEY, [t for t in saved if t["name"] != name])
    return Removed(removed=name)


# --------------------------------------------------------------------------- evaluation


def frame(store: Store, settings: Settings, rows: np.ndarray, rules: list[Any]) -> Frame:
    """The columns the rules read, for `rows` (sorted pool rows): metadata, text, id,
    split, label; the latest model's prediction, confidence and energy; novelty; the
    similarity to each exemplar group. O(rows · (C + L + E) · d) for what is needed."""
    from longtail.discovery import signals as sig
    from longtail.discovery.search import normalise

    fields = set().union(*(r.fields for r in rules)) if rules else set()
    n = len(rows)
    f: dict[str, Any] = {}
    need_catalog = {x for x in fields if x.startswith("meta.")} | (
        fields & {"text", "id", "split", "label"})
    with store.reading() as uow:
        labels = uow.labels.current()
        eval_rows = uow.samples.rows_by_split("eval") if "split" in fields else None
        meta = uow.models.latest() if fields & {"predicted", "confidence", "energy"} else None
        arrays = uow.models.arrays(meta) if meta is not None else None
        pool = uow.samples.rows_by_split("pool") if "novelty" in fields else None
        ex_rows = {}
        for r in rules:
            for group in r.exemplars:
                found = uow.samples.ids_to_rows(group)
                ex_rows["similar:" + "\x00".join(group)] = np.array(
                    [found[i] for i in group if i in found], np.int64)
        if need_catalog and n:
            texts, ids, metas = [], [], []
            for batch in uow.samples.iter(rows):
                for _, ext, text, m in batch:
                    ids.append(ext)
                    texts.append(text)
                    metas.append(m)
            for x in need_catalog:
                if x.startswith("meta."):
                    k = x[5:]
                    f[x] = np.array([m.get(k) for m in metas], dtype=object)
            f["text"] = np.array(texts, dtype=object)
            f["id"] = np.array(ids, dtype=object)
    if "label" in fields:
        f["label"] = np.array([labels.get(int(r), "") for r in rows], dtype=object)
    if "split" in fields:
        f["split"] = np.where(np.isin(rows, eval_rows), "eval", "pool").astype(object)
    vector_fields = fields & {"predicted", "confidence", "energy", "novelty"} or ex_rows
    if not vector_fields or not n:
        return Frame(n, _fill_missing(f, fields, n))
    with store.reading() as uow:
        vs = views.vectors(uow, settings, complete=False)
    has_vec = rows < vs.n_rows
    vrows = rows[has_vec]
    model = None
    if arrays is not None and meta["encoder"] == vs.directory.name:
        from longtail.learners.persist import load

        arrays.pop("__spec__", None)
        model = load(arrays, predict_only=True)
    pred = np.full(n, None, dtype=object)
    conf = np.full(n, np.nan)
    energy = np.full(n, np.nan)
    nov = np.full(n, np.nan)
    sims = {k: np.full(n, np.nan) for k in ex_rows}
    scorer = None
    if "novelty" in fields:
        from longtail.engine.discovery import NoveltyScorer

        pool = pool[pool < vs.n_rows]
        lab = np.array([r for r in pool.tolist() if r in labels], np.int64)
        if len(lab):
            scorer = NoveltyScorer(vs, pool, lab, settings.seed)
    ex_vecs = {k: normalise(vs.read(v[v < vs.n_rows])) for k, v in ex_rows.items()}
    where = np.flatnonzero(has_vec)
    pos = 0
    for _, X in vs.iter_chunks(vrows):
        at = where[pos:pos + len(X)]
        pos += len(X)
        if model is not None:
            P = model.predict_proba(X)
            pred[at] = np.asarray(model.classes_).astype(str)[P.argmax(axis=1)]
            conf[at] = P.max(axis=1)
            z = sig.logits(model, X)
            energy[at] = sig.energy(z) if z is not None else -np.log(P.max(axis=1))
        if scorer is not None:
            nov[at] = scorer.percentile(scorer.distance(X))
        if ex_vecs:
            Xn = normalise(X)
            for k, E in ex_vecs.items():
                if len(E):
                    sims[k][at] = (Xn @ E.T).max(axis=1)
    f.update({"predicted": pred, "confidence": conf, "energy": energy, "novelty": nov, **sims})
    return Frame(n, f)


def _fill_missing(f: dict, fields: set, n: int) -> dict:
    for x in fields:
        if x not in f:
            f[x] = np.full(n, np.nan) if x in ("confidence", "energy", "novelty") or \
                x.startswith("similar:") else np.full(n, None, dtype=object)
    return f


def _eligible(store: Store, rows: np.ndarray) -> np.ndarray:
    """Of `rows`, the unlabeled pool rows not in an open round (what a round may take)."""
    with store.reading() as uow:
        labels = uow.labels.current()
        pool = uow.samples.rows_by_split("pool")
        held = uow.rounds.open_rows()
    rows = np.asarray(rows, np.int64)
    rows = rows[np.isin(rows, pool)]
    rows = rows[~np.isin(rows, held)]
    return np.sort(np.array([r for r in rows.tolist() if r not in labels], np.int64))


def test_rule(store: Store, settings: Settings, rule: str, *, examples: int = 5,
              rows: np.ndarray | None = None) -> RuleTest:
    """How many unlabeled pool rows (or `rows`) the rule matches now, with examples;
    queues nothing. `rule`: a rule, or a saved trigger's name."""
    from longtail.discovery.triggers import parse

    saved = {t.name: t for t in list_triggers(store)}
    text = saved[rule].rule if rule in saved else rule
    parsed = parse(text)
    with store.reading() as uow:
        _check_exemplars(uow, parsed)
        if rows is None:
            rows = uow.samples.rows_by_split("pool")
    rows = _eligible(store, rows)
    t0 = time.perf_counter()
    hit = rows[parsed(frame(store, settings, rows, [parsed]))] if len(rows) else rows
    out = []
    if examples and len(hit):
        with store.reading() as uow:
            for batch in uow.samples.iter(hit[:examples]):
                out += [{"row": r, "id": e, "text": (t or "")[:200], "metadata": m}
                        for r, e, t, m in batch]
    return RuleTest(rule=text, rows=int(len(rows)), hits=int(len(hit)), examples=out,
                    seconds=round(time.perf_counter() - t0, 3))


@dataclass(frozen=True)
class TriggerMatches:
    """What the saved triggers matched in one run (an ingest batch or a round), not
    written yet: the rows they ran over, each trigger's matching rows and priority.
    `record_matches_in` queues the matches and records the run in the caller's
    transaction."""

    reason: str
    rows: int
    matches: dict[str, np.ndarray] = field(default_factory=dict)
    priorities: dict[str, float] = field(default_factory=dict)

    @property
    def hits(self) -> dict[str, int]:
        """Rows each trigger matched, by name (every rule that ran, 0 included)."""
        return {name: int(len(m)) for name, m in self.matches.items()}


def match_triggers(store: Store, settings: Settings, rows: np.ndarray | None, reason: str,
                   *, held: np.ndarray | None = None) -> TriggerMatches | None:
    """Run every saved trigger over `rows` (default: the unlabeled pool), leaving out
    rows labeled, in an open round or in `held` (a round about to be claimed); reads
    only. None without triggers."""
    saved = list_triggers(store)
    if not saved:
        return None  # every round asks: the rule language loads only when there are rules
    from longtail.discovery.triggers import parse

    if rows is None:
        with store.reading() as uow:
            rows = uow.samples.rows_by_split("pool")
    rows = _eligible(store, rows)
    if held is not None and len(held):
        rows = rows[~np.isin(rows, held)]
    rules = []
    for t in saved:
        try:
            rules.append((t, parse(t.rule)))
        except InputError:
            continue  # a rule saved by an older grammar: `triggers test` says why
    matches: dict[str, np.ndarray] = {t.name: np.zeros(0, np.int64) for t, _ in rules}
    if len(rows) and rules:
        f = frame(store, settings, rows, [r for _, r in rules])
        for t, r in rules:
            matches[t.name] = rows[r(f)]
    return TriggerMatches(reason, int(len(rows)), matches,
                          {t.name: float(t.priority) for t, _ in rules})


def record_matches_in(uow: UnitOfWork, found: TriggerMatches) -> None:
    """Queue each trigger's matches under its name and add this run to its counts, in
    the caller's unit of work (a round's claim, or a transaction of its own)."""
    from longtail.engine.discovery import enqueue_in

    for name, rows in found.matches.items():
        if len(rows):
            enqueue_in(uow, rows, f"trigger:{name}", found.priorities[name])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    current = _saved(uow)
    for t in current:
        if t["name"] in found.matches:
            h = int(len(found.matches[t["name"]]))
            t["hits"] = int(t.get("hits", 0)) + h
            t["runs"] = [*t.get("runs", []), {"at": now, "on": found.reason,
                                              "rows": found.rows, "hits": h}][-KEEP_RUNS:]
    uow.settings.set(KEY, current)


def run_triggers(store: Store, settings: Settings, rows: np.ndarray | None, reason: str
                 ) -> TriggerRun:
    """Run every saved trigger over `rows` (default: the unlabeled pool) and queue the
    matches under the trigger's name; record each trigger's hits for this run (an
    ingest batch, or `triggers run`), in one transaction. Nothing to do without
    triggers (an empty, false run). A round runs them in its claim instead
    (`match_triggers`, `record_matches_in`)."""
    found = match_triggers(store, settings, rows, reason)
    if found is None:
        return TriggerRun()
    with store.unit_of_work() as uow:
        record_matches_in(uow, found)
    return TriggerRun(hits=found.hits, rows=found.rows)


def status_lines(store: Store) -> list[TriggerLine]:
    """For `status`: each trigger's total hits and its last run."""
    return [TriggerLine(name=t.name, hits=t.hits, last=(t.runs or [None])[-1])
            for t in list_triggers(store)]
