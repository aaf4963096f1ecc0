"""`longtail run`: the loop without a person at the keyboard.

A watched folder holds three subfolders: `data/` (new pool files: CSV, JSONL, Parquet),
`labels/` (answered batches or any label file) and `batches/` (where the next batch
to label is written, `round-NNNN.csv`). Each pass: ingest new data files, import new
label files, embed rows without vectors, retrain when `retrain_every` labels arrived
since the latest model, stop when a stopping rule fires, and write the next batch when
no round is open.

Every step is idempotent and the loop keeps nothing in memory between passes: which
files were handled is in the catalog (the setting `run_files`, name -> size and
modification time, committed in the same transaction as the file's rows or labels),
ingest and label import skip what they already hold, `train` skips when nothing is new, and an open
round whose batch file is missing (a kill after its commit) has the file written
again from the catalog. Kill it anywhere and start it again.

One commit per step: a data file's rows, settings and mark; a label file's events,
closed rounds and mark; a model with its metrics; a round's claim with the triggers'
matches queued. `embed` commits per durable chunk (the vectors of 512 rows), and the
standing triggers an ingest fires queue their matches in one transaction after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longtail.crashpoints import crashpoint
from longtail.engine.records import Record
from longtail.errors import EmptyPoolError, InputError, ProjectError
from longtail.store import Store, UnitOfWork

if TYPE_CHECKING:
    from longtail.engine.labels import LabelsRecorded

FILES_KEY = "run_files"
SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".pq")


def _new_files(store: Store, folder: Path, kind: str) -> list[Path]:
    """Files of `folder` not handled yet, or changed since (size or mtime), by name."""
    if not folder.exists():
        return []
    with store.reading() as uow:
        seen = uow.settings.get(FILES_KEY) or {}
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
            continue
        st = path.stat()
        if seen.get(f"{kind}/{path.name}") != [st.st_size, st.st_mtime_ns]:
            out.append(path)
    return out


def _marker(path: Path, kind: str) -> Callable[[UnitOfWork], None]:
    """Marks `path` handled (its size and mtime now) in the caller's unit of work: the
    step that handled the file commits the mark with its own writes."""
    st = path.stat()

    def mark(uow: UnitOfWork) -> None:
        seen = uow.settings.get(FILES_KEY) or {}
        seen[f"{kind}/{path.name}"] = [st.st_size, st.st_mtime_ns]
        uow.settings.set(FILES_KEY, seen)

    return mark


def _import_labels(store: Store, path: Path, annotator: str | None, seconds: str | None
                   ) -> LabelsRecorded:
    """A label file's events recorded and the file marked handled, in one transaction."""
    from longtail.engine.labels import LabelEvent, record_labels
    from longtail.ingest.labels import read_label_records

    # A label file names its samples by `id` (the batch files do) or, failing that, by
    # the id column of the project's first ingest (`msg_id`).
    id_column = "id"
    if not _has_column(path, "id"):
        with store.reading() as uow:
            id_column = (uow.samples.first_mapping() or {}).get("id") or "id"
    records = read_label_records(path, id=id_column, label="label", annotator=annotator,
                                 seconds=seconds)
    events = [LabelEvent(id=r.id, label=r.label, kind=r.kind, annotator=r.annotator,
                         seconds=r.seconds) for r in records]
    mark = _marker(path, "labels")
    with store.unit_of_work() as uow:
        done = record_labels(None, events, where=str(path), uow=uow)
        mark(uow)
    return done


def _export_missing(store: Store, batches: Path) -> list[int]:
    """Write the batch file of every open round that has none (killed after its commit)."""
    import numpy as np

    from longtail.interop.batch_file import write_batch_file

    written = []
    with store.reading() as uow:
        for r in uow.rounds.list():
            out = batches / f"round-{r['id']:04d}.csv"
            if r["status"] != "open" or out.exists():
                continue
            items = uow.rounds.items(r["id"])
            rows = np.array([row for row, _, _ in items], dtype=np.int64)
            batch = [b for chunk in uow.samples.iter(rows) for b in chunk]
            write_batch_file(out, batch, [k for _, _, k in items], r["id"],
                             column_order=uow.samples.column_order(), overwrite=True)
            written.append(r["id"])
    return written


@dataclass(frozen=True)
class RunReport(Record):
    """`longtail run`: why it stopped (None when it was interrupted), how many passes
    over the folder it made, and each step it took (`step` and what it did)."""

    stopped: str | None
    passes: int
    events: list[dict[str, Any]]


def run(store: Store, watch: str | Path, *, batch: int = 100, retrain_every: int = 50,
        strategy: str = "auto", target: float | None = None, budget: int | None = None,
        text: str | None = None, vector_prefix: str | None = None,
        annotator: str | None = "annotator", seconds: str | None = None,
        poll: float = 2.0, max_passes: int | None = None,
        on_event: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep, mlflow: str | bool | None = None,
        relabel: float = 0.0, ignore_stopping: bool = False,
        budget_money: float | None = None) -> RunReport:
    """Run passes over `watch` until a stopping rule fires (or `max_passes`). Returns
    why it stopped, the passes and every step taken ({"step", ...}). `mlflow` is
    `train`'s (log each model), `relabel` is `query`'s (a share for label errors).
    Data files are read with the column mapping of the project's first ingest (`text`
    and `vector_prefix` override it). `ignore_stopping` leaves out the rules that judge
    the model (stabilising predictions, forecast gain): only `target` and `budget`
    stop the loop then. `budget_money`: stop once the money spent (labels, eval labels,
    compute: `longtail costs`) reaches it; each batch is cut to what is left of it at
    predicted cost, so the labels asked for never take the spend past it."""
    if budget_money is not None and not (isinstance(budget_money, (int, float))
                                         and 0 < budget_money < float("inf")):
        raise InputError(f"--budget-money must be a positive amount, got {budget_money}")
    from longtail.costs.select import BudgetTooSmall
    from longtail.engine import data, evaluation, rounds, training, views
    from longtail.engine.settings import Settings

    watch = Path(watch)
    if not watch.is_dir():
        raise InputError(f"{watch}: no such folder to watch (make it with data/ and labels/)")
    batches = watch / "batches"
    batches.mkdir(exist_ok=True)
    events: list[dict] = []

    def note(step: str, **info: Any) -> None:
        events.append({"step": step, **info})
        if on_event:
            on_event(f"{step}: " + ", ".join(f"{k} {_shown(v)}" for k, v in info.items()))
        crashpoint("run:step")

    passes, stopped = 0, None
    while stopped is None:
        passes += 1
        for path in _new_files(store, watch / "data", "data"):
            mark = _marker(path, "data")
            rep = data.ingest(store, Settings.load(store), path, also=mark,
                              **_mapping_for(store, path, text=text, vector_prefix=vector_prefix))
            if not (rep.new or rep.updated or rep.labels):  # nothing changed: no ingest commit
                with store.unit_of_work() as uow:
                    mark(uow)
            note("ingest", file=path.name, new=rep.new, updated=rep.updated)
        for path in _new_files(store, watch / "labels", "labels"):
            got = _import_labels(store, path, annotator if _has_column(path, annotator) else None,
                                 seconds if _has_column(path, seconds) else None)
            note("labels", file=path.name, new=got.new_labels, changed=got.changed)
        settings = Settings.load(store)
        if settings.encoder and settings.encoder != "precomputed":
            with store.reading() as uow:
                vs, n = uow.vectors.info(settings.encoder), uow.samples.count()
            if vs is None or vs["n_rows"] < n:
                got = data.embed(store, settings, settings.encoder)
                note("embed", encoder=settings.encoder, rows=got.embedded)
        with store.reading() as uow:
            labeled = len(views.labeled(uow, "pool")[0])
            latest = uow.models.latest()
        since = labeled - (latest["n_labels"] if latest else 0)
        if labeled and (latest is None or since >= retrain_every):
            got = training.train(store, Settings.load(store), mlflow=mlflow)
            if not got.skipped:
                acc = got.eval.accuracy if got.eval else {}
                if acc.get("value") is None:
                    note("train", model=got.model_id, labels=got.labels,
                         accuracy="not measured (no eval labels yet)")
                else:
                    note("train", model=got.model_id, labels=got.labels,
                         accuracy=acc["value"])
        with store.reading() as uow:
            has_model = uow.models.latest() is not None
        if has_model:
            settings = Settings.load(store)
            with store.reading() as uow:
                rule = evaluation.stopping(uow, settings, target=target, budget=budget,
                                           next_batch=batch).to_dict()
            if ignore_stopping:
                explicit = [d for d in rule["rules"]
                            if d["rule"] in ("target_reached", "budget_spent") and d["stop"]]
                rule = {"stop": bool(explicit),
                        "reason": explicit[0]["reason"] if explicit else None}
            if rule["stop"]:
                stopped = rule["reason"]
                note("stop", reason=stopped)
                break
        for rid in _export_missing(store, batches):
            note("batch", round=rid, rewritten=True)
        left = None
        if budget_money is not None:
            from longtail.engine.costs import costs_report

            with store.reading() as uow:
                report = costs_report(uow, Settings.load(store))
            spent = report.total.total_money
            # The next round's compute is spent after its labels are asked for: keep
            # back the most compute any round has cost so far.
            reserve = max((r.compute_money for r in report.rounds), default=0.0)
            left = budget_money - spent - reserve
            if left <= 0:
                stopped = f"money budget spent ({spent:,.2f} of {budget_money:,.2f})"
                note("stop", reason=stopped)
                break
        with store.reading() as uow:
            all_rounds = uow.rounds.list()
        if not any(r["status"] == "open" for r in all_rounds):
            try:
                nxt = len(all_rounds) + 1
                q = rounds.plan_round(store, Settings.load(store), batch, strategy=strategy,
                                      out=batches / f"round-{nxt:04d}.csv", overwrite=True,
                                      relabel=relabel, budget_money=left)
            except EmptyPoolError:
                stopped = "nothing left to label"
                note("stop", reason=stopped)
                break
            except BudgetTooSmall:
                stopped = f"money budget spent: what is left ({left:,.2f}) buys no sample"
                note("stop", reason=stopped)
                break
            except ProjectError as e:  # no vectors yet: wait for data
                note("wait", reason=str(e))
            else:
                if q.round_id != nxt:  # a round id is never reused; keep the file's name true
                    Path(q.out).rename(batches / f"round-{q.round_id:04d}.csv")
                note("batch", round=q.round_id, size=len(q.rows),
                     file=f"round-{q.round_id:04d}.csv")
        if max_passes is not None and passes >= max_passes:
            stopped = f"pass limit reached ({passes})"
            break
        sleep(poll)
    return RunReport(stopped, passes, events)


def _shown(value: Any) -> str:
    """A figure as a person reads it: a fraction to 3 decimals, never a raw float."""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _mapping_for(store: Store, path: Path, *, text: str | None, vector_prefix: str | None
                 ) -> dict:
    """`ingest` options for a data file of `run`: the first ingest's mapping (id, text,
    vectors, metadata), `text` / `vector_prefix` when given, and the first ingest's label
    column when this file has it."""
    from longtail.ingest.readers import TableSource

    with store.reading() as uow:
        first = uow.samples.first_mapping() or {}
    names = set(TableSource(path).schema.names)
    out: dict[str, Any] = {"id": first.get("id") or "id",
                           "text": text if text is not None else first.get("text"),
                           "vector": first.get("vector"),
                           "vector_prefix": vector_prefix if vector_prefix is not None
                           else first.get("vector_prefix")}
    if vector_prefix is not None:
        out["vector"] = None
    if first.get("label") and first["label"] in names:
        out["label"] = first["label"]
    if first.get("metadata") is not None:
        out["metadata"] = [c for c in first["metadata"] if c in names]
    return out


def _has_column(path: Path, name: str | None) -> bool:
    """Whether a label file has the column `name` (optional columns of `run`)."""
    if not name:
        return False
    from longtail.ingest.readers import TableSource

    return name in TableSource(path).schema.names
