"""Repositories: the catalog's queries, one small class per kind of record.

Each repository wraps ONE connection that the caller owns (a `UnitOfWork`'s, or
`Store.unit_of_work()`'s): it never opens, commits or rolls back a transaction itself. SQLAlchemy
Core only, and every query runs unchanged on SQLite and PostgreSQL: ids come from
`inserted_primary_key`, upserts are delete-then-insert (no `ON CONFLICT`), `IN` lists
are chunked, results that callers turn into arrays are ordered explicitly. One
exception: ingest's sample rows go to PostgreSQL by COPY (`longtail.store.pg_copy`).
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import DataError

from longtail.crashpoints import crashpoint
from longtail.errors import InputError, ProjectError
from longtail.filehash import file_sha256
from longtail.store import columns
from longtail.store import schema as s
from longtail.store.columns import ColumnReader
from longtail.store.repo_base import Direct, Repo, SettingsRepo, batch_memo, now
from longtail.store.repos_versions import ConsensusRepo, DatasetVersionsRepo, resolve_labels

IN_CHUNK = 20_000  # ids per IN (...): under SQLite's 32,766 and PostgreSQL's 65,535 binds
INSERT_ROWS = 500  # rows per multi-row INSERT: 2,500 bound values
LABEL_SET_KEY = "label_set"


def _chunks(values: Sequence, size: int | None = None) -> Iterator[list]:
    size = size or IN_CHUNK  # read at call time, so a test can make the chunks small
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


# Statements on the service's hot path (a label request), built once: building a Core
# expression costs several times what running it on SQLite does.
_LATEST_OF = (select(s.annotations.c.row, func.max(s.annotations.c.id).label("id"))
              .where(s.annotations.c.kind == "label",
                     s.annotations.c.row.in_(bindparam("rows", expanding=True)))
              .group_by(s.annotations.c.row).subquery())
_CURRENT_OF = (select(s.annotations.c.row, s.annotations.c.label)
               .join(_LATEST_OF, s.annotations.c.id == _LATEST_OF.c.id))
# Read once per batch of the service's answers: straight on the driver.
_ANY_CANCELLED = Direct(select(s.rounds.c.id).where(s.rounds.c.status == "cancelled").limit(1))
_OPEN_IDS = Direct(select(s.rounds.c.id).where(s.rounds.c.status == "open")
                   .order_by(s.rounds.c.id))
# engine -> round id -> whether the round has relabel items (fixed once it is planned).
_has_relabel: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forget_rounds(conn: Connection) -> None:
    """A round was planned, closed or cancelled: a batch reads the rounds again."""
    memo = batch_memo(conn)
    if memo is not None:
        for key in ("open_rounds", "relabel_rounds", "any_cancelled"):
            memo.pop(key, None)


_SEEN = (select(s.annotations.c.id).where(s.annotations.c.kind == "label",
                                          s.annotations.c.label == bindparam("lab")).limit(1))
# One sample by row (the service's task page, on every claim).
_ADD_EVENTS = sa_insert(s.annotations)
_EVENT_COLUMNS = ("row", "label", "kind", "annotator", "seconds", "source", "round_id",
                  "created_at")
_EVENT_KEYS = frozenset(_EVENT_COLUMNS)
_ADD_EVENT = Direct(sa_insert(s.annotations).values(
    {c: bindparam(f"p_{c}") for c in _EVENT_COLUMNS}))
_SEEN = Direct(_SEEN)
_ONE = Direct(select(s.samples.c.row, s.samples.c.external_id, s.samples.c.batch_id,
                     s.samples.c.pos).where(s.samples.c.row == bindparam("row")))


class LabelSetRepo(Repo):
    """The label schema: an ordered list of allowed labels, or None (open schema: any
    label is accepted). Kept as the setting `label_set`."""

    def get(self) -> list[str] | None:
        value = SettingsRepo(self.conn).get(LABEL_SET_KEY)
        return None if value is None else list(value)

    def set(self, labels: Sequence[str] | None) -> list[str] | None:
        """Replace the schema (None opens it). Labels must be non-empty and distinct."""
        if labels is None:
            SettingsRepo(self.conn).set(LABEL_SET_KEY, None)
            return None
        labels = _check_labels(labels)
        SettingsRepo(self.conn).set(LABEL_SET_KEY, labels)
        return labels

    def add(self, labels: Sequence[str]) -> list[str]:
        """Append labels not in the schema yet (in the given order); returns the schema.
        On an open schema this starts a fixed one with these labels."""
        have = self.get() or []
        new = [lab for lab in _check_labels(labels) if lab not in have]
        return self.set(have + new)  # type: ignore[return-value]

    def allows(self, label: str) -> bool:
        allowed = self.get()
        return allowed is None or label in allowed


def _check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str):
        raise InputError(f"a label set is a list of labels, not the string {labels!r}")
    out: list[str] = []
    for lab in labels:
        if not isinstance(lab, str) or not lab.strip():
            raise InputError(f"label set: {lab!r} is not a label (a non-empty string)")
        if lab in out:
            raise InputError(f"label set: {lab!r} is given twice")
        out.append(lab)
    return out


class SamplesRepo(Repo):
    """Samples and their ingest batches. Rows are dense, 0-based and never reused.

    `root`, the project directory, is where the texts and metadata live (column files,
    `longtail.store.columns`); without it only the catalog's fields can be read."""

    def __init__(self, conn: Connection, root: Path | None = None):
        super().__init__(conn)
        self.root = None if root is None else Path(root)
        self._columns: ColumnReader | None = None
        self._next_pos: dict[int, int] = {}  # batch id -> its next free column position

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(s.samples)).scalar())

    def next_row(self) -> int:
        top = self.conn.execute(select(func.max(s.samples.c.row))).scalar()
        return 0 if top is None else int(top) + 1

    def lookup_ids(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """external_id -> (row, content_hash) for those of `ids` already in the catalog."""
        found: dict[str, tuple[int, str]] = {}
        cols = (s.samples.c.external_id, s.samples.c.row, s.samples.c.content_hash)
        for piece in _chunks(list(ids)):
            try:
                got = self.conn.execute(select(*cols).where(s.samples.c.external_id.in_(piece)))
            except DataError as e:
                raise _nul_error(e, piece) from None
            for ext, row, h in got:
                found[ext] = (int(row), h)
        return found

    def ids_to_rows(self, ids: Sequence[str]) -> dict[str, int]:
        return {k: v[0] for k, v in self.lookup_ids(ids).items()}

    def rows_by_split(self, split: str) -> np.ndarray:
        """Rows of the split ('pool' or 'eval'), ascending, int64.

        The pool is most of the catalog (millions of rows) and rows are dense from 0:
        it is read as the complement of the other splits (a few thousand rows) rather
        than row by row. O(n) numpy, O(other splits) from the catalog. Read once per
        snapshot under `UnitOfWork.batch_reads` (a copy each time)."""
        memo = batch_memo(self.conn)
        if memo is not None:
            if ("split_rows", split) not in memo:
                memo[("split_rows", split)] = self._rows_of_split(split)
            return memo[("split_rows", split)].copy()
        return self._rows_of_split(split)

    def _rows_of_split(self, split: str) -> np.ndarray:
        if split == "pool":
            n = self.count()
            top = self.conn.execute(select(func.max(s.samples.c.row))).scalar()
            if top is not None and int(top) == n - 1:
                other = self._rows_where(s.samples.c.split != "pool")
                keep = np.ones(n, dtype=bool)
                keep[other] = False
                return np.flatnonzero(keep).astype(np.int64)
        return self._rows_where(s.samples.c.split == split)

    def _rows_where(self, cond: Any) -> np.ndarray:
        q = select(s.samples.c.row).where(cond).order_by(s.samples.c.row)
        rows = self.conn.execute(q).scalars().all()
        return np.asarray(rows, dtype=np.int64)

    def splits_of(self, rows: Sequence[int]) -> dict[int, str]:
        """row -> split of those of `rows` in the catalog (a page of results, not the pool)."""
        out: dict[int, str] = {}
        for piece in _chunks([int(r) for r in rows]):
            q = select(s.samples.c.row, s.samples.c.split).where(s.samples.c.row.in_(piece))
            out.update({int(r): sp for r, sp in self.conn.execute(q)})
        return out

    def split_counts(self) -> dict[str, int]:
        memo = batch_memo(self.conn)
        if memo is not None and "split_counts" in memo:
            return dict(memo["split_counts"])
        q = (select(s.samples.c.split, func.count()).group_by(s.samples.c.split)
             .order_by(s.samples.c.split))
        out = {k: int(v) for k, v in self.conn.execute(q)}
        if memo is not None:
            memo["split_counts"] = dict(out)
        return out

    def without_text(self, start: int = 0, limit: int = 5) -> tuple[int, list[tuple[int, str]]]:
        """Samples from row `start` on whose text is missing or blank: how many, and the
        first `limit` as (row, external_id). Streams the catalog's (row, batch, pos) in
        pieces and tests the texts in the column files, vectorised."""
        n, first = 0, []
        cols = (s.samples.c.row, s.samples.c.batch_id, s.samples.c.pos)
        last = start - 1
        while True:
            q = select(*cols).where(s.samples.c.row > last).order_by(s.samples.c.row)
            got = self.conn.execute(q.limit(200_000)).all()
            if not got:
                break
            rows, batches, pos = _arrays(got)
            blank = self.columns.blank_text(batches, pos)
            n += int(blank.sum())
            if len(first) < limit and blank.any():
                want = rows[blank][: limit - len(first)].tolist()
                q = (select(s.samples.c.row, s.samples.c.external_id)
                     .where(s.samples.c.row.in_(want)).order_by(s.samples.c.row))
                first += [(int(r), str(e)) for r, e in self.conn.execute(q)]
            last = int(rows[-1])
        return n, first

    @property
    def columns(self) -> ColumnReader:
        """The reader of the project's column files (texts and metadata)."""
        if self._columns is None:
            if self.root is None:
                raise ProjectError("this repository was made without the project directory")
            self._columns = ColumnReader(self.root)
        return self._columns

    def _with_columns(self, got: Sequence[tuple]) -> list[tuple[int, str, str | None, dict]]:
        """(row, external_id, batch_id, pos) catalog rows -> (row, id, text, metadata)."""
        if not got:
            return []
        rows, batches, pos = _arrays([(r, b, p) for r, _, b, p in got])
        texts, metas = self.columns.read(batches, pos)
        return [(int(r[0]), r[1], t, json.loads(m) if m else {})
                for r, t, m in zip(got, texts, metas, strict=True)]

    def iter(self, rows: np.ndarray | None = None, start: int = 0, batch_rows: int = 4096
             ) -> Iterator[list[tuple[int, str, str | None, dict]]]:
        """Yield lists of (row, external_id, text, metadata) ordered by row from `start`,
        or in the order of `rows`. Consume it while the connection is open. The catalog
        gives each row's batch and position; its text and metadata come from the column
        files (O(rows read), memory-mapped)."""
        cols = (s.samples.c.row, s.samples.c.external_id, s.samples.c.batch_id, s.samples.c.pos)
        if rows is None:
            last = start - 1
            while True:
                q = select(*cols).where(s.samples.c.row > last).order_by(s.samples.c.row)
                got = self.conn.execute(q.limit(batch_rows)).all()
                if not got:
                    return
                last = got[-1][0]
                yield self._with_columns(got)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            for i in range(0, len(rows), batch_rows):
                piece = [int(r) for r in rows[i : i + batch_rows]]
                got = self.conn.execute(select(*cols).where(s.samples.c.row.in_(piece))).all()
                by_row = {g[0]: g for g in got}
                missing = [r for r in piece if r not in by_row]
                if missing:
                    raise ProjectError(f"no sample at row {missing[0]} (the catalog has "
                                       f"{self.count()} samples)")
                yield self._with_columns([by_row[r] for r in piece])

    def locations(self, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(batch id, position) in the column files of every row from `start` on, in row
        order, int64 (position -1: nothing stored). What a remote worker needs to read
        the texts itself; O(rows) integers, streamed from the catalog."""
        cols = (s.samples.c.row, s.samples.c.batch_id, s.samples.c.pos)
        q = select(*cols).where(s.samples.c.row >= start).order_by(s.samples.c.row)
        got = self.conn.execute(q).all()
        _, batches, pos = _arrays(got)
        return batches, pos

    def one(self, row: int) -> tuple[str, str | None, dict] | None:
        """(external id, text, metadata) of the sample at `row`, or None."""
        got = _ONE.first(self.conn, {"row": int(row)})
        if got is None:
            return None
        return (got["external_id"], *self.content(got["batch_id"], got["pos"]))

    def content(self, batch_id: int, pos: int | None) -> tuple[str | None, dict]:
        """(text, metadata) of the sample stored at `pos` of batch `batch_id` (the catalog
        row's columns), from the column files: one row, no arrays (the service's lease)."""
        text, meta = self.columns.one(int(batch_id), -1 if pos is None else int(pos))
        return text, json.loads(meta) if meta else {}

    def first_mapping(self) -> dict | None:
        """The column mapping of the project's first ingest (`ColumnMapping.to_dict()`),
        or None before any ingest."""
        q = select(s.ingest_batches.c.mapping).order_by(s.ingest_batches.c.id).limit(1)
        got = self.conn.execute(q).scalar()
        return dict(got) if got else None

    def column_order(self) -> list[str]:
        """The pool's metadata columns in the order its files first showed them (each
        ingest batch records its file's order); empty for batches from before that."""
        order: dict[str, None] = {}
        q = select(s.ingest_batches.c.mapping).order_by(s.ingest_batches.c.id)
        for (mapping,) in self.conn.execute(q):
            order.update(dict.fromkeys((mapping or {}).get("columns") or []))
        return list(order)

    def add_batch(self, source_file: str, file_sha256: str, mapping: dict) -> int:
        """A new ingest batch record (counts filled in by `finish_batch`); its id. Column
        files a rolled-back batch of the same id left behind are cleared."""
        res = self.conn.execute(sa_insert(s.ingest_batches).values(
            source_file=source_file, file_sha256=file_sha256, created_at=now(),
            n_new=0, n_updated=0, n_unchanged=0, mapping=mapping))
        batch_id = int(res.inserted_primary_key[0])
        if self.root is not None:
            columns.clear_batch(self.root, batch_id)
        self._next_pos[batch_id] = 0
        return batch_id

    def finish_batch(self, batch_id: int, n_new: int, n_updated: int, n_unchanged: int,
                     file_sha256: str) -> None:
        self.conn.execute(s.ingest_batches.update().where(s.ingest_batches.c.id == batch_id).values(
            n_new=n_new, n_updated=n_updated, n_unchanged=n_unchanged, file_sha256=file_sha256))

    def batch_checksum(self, batch_id: int) -> str | None:
        """The committed checksum of ingest batch `batch_id`; None when there is none."""
        q = select(s.ingest_batches.c.file_sha256).where(s.ingest_batches.c.id == batch_id)
        return self.conn.execute(q).scalar()

    def _take_pos(self, batch_id: int, n: int) -> int:
        """The first of `n` fresh positions in batch `batch_id`'s column files."""
        first = self._next_pos.get(batch_id)
        if first is None:
            top = self.conn.execute(select(func.max(s.samples.c.pos))
                                    .where(s.samples.c.batch_id == batch_id)).scalar()
            if top is None and self.root is not None:
                columns.clear_batch(self.root, batch_id)
            first = 0 if top is None else int(top) + 1
        self._next_pos[batch_id] = first + n
        return first

    def _store_columns(self, batch_id: int, text: Any, meta: Any, n: int) -> list | None:
        """Write `text` and `meta` (string arrays or lists; None: none) of `n` rows to a new
        part of the batch's column files; their positions (None when both are None)."""
        if text is None and meta is None:
            return None
        if self.root is None:
            raise ProjectError("this repository was made without the project directory")
        first = self._take_pos(batch_id, n)
        columns.write_part(self.root, batch_id, first, text, meta, n)
        return list(range(first, first + n))

    def insert(self, batch_id: int, rows: list[tuple], eval_rows: Sequence[int] = ()) -> None:
        """Insert (row, external_id, content_hash, text, meta_json) tuples of ingest batch
        `batch_id` into the pool split, then move `eval_rows` to the eval split."""
        if not rows:
            return
        r, e, h, t, m = (list(c) for c in zip(*rows, strict=True))
        self.insert_columns(batch_id, r, e, h,
                            t if any(v is not None for v in t) else None,
                            m if any(v is not None for v in m) else None, eval_rows)

    def insert_columns(self, batch_id: int, rows: Sequence[int], ids: Sequence[str],
                       hashes: Sequence[str], text: Any, meta: Any,
                       eval_rows: Sequence[int] = ()) -> None:
        """Insert rows of ingest batch `batch_id` into the pool split, then move
        `eval_rows` to the eval split. `text` and `meta` (JSON text): string arrays or
        lists aligned with `rows`, or None; they go to a new part of the batch's column
        files (written before the catalog rows that point at it).

        The ingest hot loop: the catalog gets four values a row (row, id, hash, pos).
        On PostgreSQL (psycopg) one COPY (`longtail.store.pg_copy`); elsewhere through
        the DBAPI, `INSERT_ROWS` rows per statement (multi-row VALUES), with the batch
        id and split written into the statement, the placeholder the driver's."""
        if not len(rows):
            return
        pos = self._store_columns(batch_id, text, meta, len(rows))
        if self.conn.dialect.driver == "psycopg":
            # PostgreSQL: one COPY of the rows, eval rows already in their split. (Imported
            # here: it needs pyarrow, which commands that only read never load.)
            from longtail.store import pg_copy

            pg_copy.copy_in(self.conn, "samples", pg_copy.COLUMNS,
                            pg_copy.sample_rows(batch_id, rows, ids, hashes, pos, eval_rows))
            return
        tuples = list(zip(rows, ids, hashes, pos if pos is not None else [None] * len(rows),
                          strict=True))
        try:
            self._insert(batch_id, tuples)
        except DataError as e:
            raise _nul_error(e, ids) from None
        for part in _chunks([int(r) for r in eval_rows]):
            self.conn.execute(s.samples.update().where(s.samples.c.row.in_(part)).values(split="eval"))

    def _insert(self, batch_id: int, rows: list[tuple]) -> None:
        dialect = self.conn.dialect
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if mark is None:  # a driver with named placeholders: the Core statement instead
            self.conn.execute(sa_insert(s.samples), [
                {"row": r, "external_id": e, "content_hash": h, "batch_id": batch_id,
                 "split": "pool", "pos": p} for r, e, h, p in rows])
        else:
            q = dialect.identifier_preparer.quote
            cols = ", ".join(q(c) for c in ("row", "external_id", "content_hash", "batch_id",
                                             "split", "pos"))
            head = f"INSERT INTO {q('samples')} ({cols}) VALUES "
            one = f"({mark}, {mark}, {mark}, {int(batch_id)}, 'pool', {mark})"
            k = INSERT_ROWS  # read at call time (tests shrink it)
            whole = len(rows) // k * k
            if whole:
                flat = chain.from_iterable(rows[:whole])
                self.conn.exec_driver_sql(head + ", ".join([one] * k),
                                          list(zip(*[flat] * (4 * k), strict=False)))
            if whole < len(rows):
                self.conn.exec_driver_sql(head + one, [tuple(r) for r in rows[whole:]])

    def update(self, rows: list[dict]) -> None:
        """rows: dicts with row, content_hash, text, meta (JSON text), batch_id. The new
        text and metadata go to a new part of the batch's column files."""
        if not rows:
            return
        by_batch: dict[int, list[dict]] = {}
        for r in rows:
            by_batch.setdefault(int(r["batch_id"]), []).append(r)
        for batch_id, part in by_batch.items():
            texts, metas = [r["text"] for r in part], [r["meta"] for r in part]
            pos = self._store_columns(batch_id, texts if any(v is not None for v in texts) else None,
                                      metas if any(v is not None for v in metas) else None,
                                      len(part))
            self.conn.execute(
                s.samples.update().where(s.samples.c.row == bindparam("b_row")).values(
                    content_hash=bindparam("content_hash"), pos=bindparam("pos"),
                    batch_id=bindparam("batch_id")),
                [{"b_row": r["row"], "content_hash": r["content_hash"], "batch_id": batch_id,
                  "pos": None if pos is None else pos[i]} for i, r in enumerate(part)])


def _arrays(got: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, batch_id, pos) catalog rows as int64 arrays; a NULL pos becomes -1."""
    rows = np.fromiter((g[0] for g in got), dtype=np.int64, count=len(got))
    batches = np.fromiter((g[1] for g in got), dtype=np.int64, count=len(got))
    pos = np.fromiter((-1 if g[2] is None else g[2] for g in got), dtype=np.int64, count=len(got))
    return rows, batches, pos


def _nul_error(e: DataError, ids: Iterable[str]) -> Exception:
    """PostgreSQL cannot store a NUL character in text (SQLite can): name the sample
    whose id holds one instead of a driver traceback (texts and metadata live in the
    column files, which keep any character). Any other data error is re-raised."""
    for ext in ids:
        if ext and "\x00" in ext:
            return InputError(f"sample id {ext!r} holds a NUL character (\\x00), which a "
                              "PostgreSQL catalog cannot store; remove it")
    return e


class LabelsRepo(Repo):
    """Annotation events: an append-only history. Each event is a 'label' (gives the
    row a class), a 'skip' or an 'unsure'; a row's current label is its latest *label*
    event, whatever skip/unsure events came after it."""

    def add(self, events: Iterable[dict]) -> int:
        """Append events (dicts with row, label, source, and optionally kind, annotator,
        seconds, round_id); returns how many. A skip/unsure event may omit the label."""
        memo = batch_memo(self.conn)
        if memo is not None:
            memo.pop("current_labels", None)
        rows = []
        stamp = now()
        for e in events:
            kind = e.get("kind", "label")
            if kind not in s.EVENT_KINDS:
                raise InputError(f"row {e.get('row')}: event kind {kind!r} is not one of "
                                 f"{', '.join(s.EVENT_KINDS)}")
            label = e.get("label")
            if kind == "label" and (label is None or label == ""):
                raise InputError(f"row {e.get('row')}: a label event needs a label")
            rows.append({"annotator": None, "seconds": None, "round_id": None, "created_at": stamp,
                         **e, "kind": kind, "label": "" if label is None else label})
        if rows:
            # One event (a service answer): a plain execute, cheaper than executemany.
            if len(rows) == 1 and rows[0].keys() <= _EVENT_KEYS:  # a service answer
                _ADD_EVENT.run(self.conn, {f"p_{c}": rows[0].get(c) for c in _EVENT_COLUMNS})
            else:
                self.conn.execute(_ADD_EVENTS, rows)
        crashpoint("labels:in_tx")
        return len(rows)

    def current(self, rows: Sequence[int] | None = None) -> dict[int, str]:
        """row -> label of its latest 'label' event (human, import or oracle), by row;
        under another consensus policy (majority, trusted), the label it resolves to.
        With `rows`, only those rows (a label request touches a few rows, not all).
        Every row's: read once per snapshot under `UnitOfWork.batch_reads`."""
        memo = batch_memo(self.conn)
        if rows is None and memo is not None:
            if "current_labels" not in memo:
                memo["current_labels"] = self._current(None)
            return dict(memo["current_labels"])
        return self._current(rows)

    def _current(self, rows: Sequence[int] | None) -> dict[int, str]:
        consensus = ConsensusRepo(self.conn)
        if consensus.policy()["policy"] != "latest":
            events = consensus.label_events(rows=rows)
            return resolve_labels(events, consensus.policy())
        a = s.annotations
        if rows is not None:
            out: dict[int, str] = {}
            wanted = sorted({int(r) for r in rows})
            for start in range(0, len(wanted), 20_000):
                part = wanted[start:start + 20_000]
                out.update({int(r): lab for r, lab in self.conn.execute(_CURRENT_OF,
                                                                        {"rows": part})})
            return dict(sorted(out.items()))
        latest = (select(a.c.row, func.max(a.c.id).label("id")).where(a.c.kind == "label")
                  .group_by(a.c.row).subquery())
        q = select(a.c.row, a.c.label).join(latest, a.c.id == latest.c.id).order_by(a.c.row)
        return {int(r): lab for r, lab in self.conn.execute(q)}

    def classes(self) -> set[str]:
        """Every label any 'label' event ever gave (the classes seen so far)."""
        a = s.annotations
        return {lab for (lab,) in self.conn.execute(
            select(a.c.label).where(a.c.kind == "label").distinct())}

    def rows_with_label(self, label: str) -> list[int]:
        """Rows any 'label' event ever gave `label`, ascending (one scan of the events)."""
        a = s.annotations
        q = (select(a.c.row).where(a.c.kind == "label", a.c.label == label).distinct()
             .order_by(a.c.row))
        return [int(r) for (r,) in self.conn.execute(q)]

    def seen(self, labels: Sequence[str]) -> set[str]:
        """Those of `labels` some 'label' event gave: one probe per label that stops at
        the first event (there is no index on labels; reading every distinct label is
        a scan of the whole history); many labels at once: that one scan."""
        if len(labels) > 32:
            return self.classes() & set(labels)
        memo = batch_memo(self.conn)
        known: set[str] = set() if memo is None else memo.setdefault("seen_labels", set())
        found = {lab for lab in labels
                 if lab in known or _SEEN.first(self.conn, {"lab": lab})}
        known |= found  # a label once given stays given for the batch
        return found

    def latest_answer(self, row: int, annotator: str, round_id: int) -> dict | None:
        """The annotator's latest answer (a label or unsure event) on `row` in the round:
        id, label, kind, seconds, created_at."""
        a = s.annotations
        q = (select(a.c.id, a.c.label, a.c.kind, a.c.seconds, a.c.created_at)
             .where(a.c.row == row, a.c.annotator == annotator, a.c.round_id == round_id,
                    a.c.kind.in_(("label", "unsure")))
             .order_by(a.c.id.desc()).limit(1))
        got = self.conn.execute(q).mappings().first()
        return dict(got) if got else None

    def withdraw(self, event_id: int) -> None:
        """Remove one event (an answer its annotator took back while their lease held,
        before any dataset version counted it; the audit log keeps what it was)."""
        self.conn.execute(s.annotations.delete().where(s.annotations.c.id == int(event_id)))
        memo = batch_memo(self.conn)
        if memo is not None:
            memo.pop("seen_labels", None)
            memo.pop("current_labels", None)

    def count(self, kind: str | None = None) -> int:
        """Number of events (of `kind` when given)."""
        q = select(func.count()).select_from(s.annotations)
        if kind is not None:
            q = q.where(s.annotations.c.kind == kind)
        return int(self.conn.execute(q).scalar())

    def first_times(self) -> dict[int, int]:
        """row -> id of its first 'label' event (ids order events in time), by row."""
        a = s.annotations
        q = (select(a.c.row, func.min(a.c.id)).where(a.c.kind == "label").group_by(a.c.row)
             .order_by(a.c.row))
        return {int(r): int(i) for r, i in self.conn.execute(q)}

    def max_id(self) -> int:
        """Id of the latest event of any kind (0 when none)."""
        return int(self.conn.execute(select(func.max(s.annotations.c.id))).scalar() or 0)

    def events(self, rows: Sequence[int] | None = None) -> list[dict]:
        """The full history (every kind), oldest first, of `rows` or of every row."""
        q = select(s.annotations).order_by(s.annotations.c.id)
        if rows is None:
            return [dict(r) for r in self.conn.execute(q).mappings()]
        out = []
        for piece in _chunks([int(r) for r in rows]):
            out += [dict(r) for r in self.conn.execute(q.where(s.annotations.c.row.in_(piece))).mappings()]
        return sorted(out, key=lambda e: e["id"])

    def resolved_rows(self) -> set[int]:
        """Rows with any event (label, skip or unsure): nothing more is awaited of them."""
        return {int(r) for (r,) in self.conn.execute(select(s.annotations.c.row).distinct())}


class RoundsRepo(Repo):
    """Rounds (a planned batch to label) and their items (row, position, kind)."""

    def add(self, strategy: str, params: dict, n_labels: int, log: dict,
            items: list[tuple[int, int, str]], model_id: int | None) -> int:
        """Open a round with `items` as (row, position, kind); its id."""
        res = self.conn.execute(sa_insert(s.rounds).values(
            created_at=now(), strategy=strategy, params=params, model_id=model_id,
            status="open", n_labels=n_labels, log=log))
        _forget_rounds(self.conn)
        round_id = int(res.inserted_primary_key[0])
        if items:
            self.conn.execute(sa_insert(s.round_items), [
                {"round_id": round_id, "row": int(r), "position": int(p), "kind": k}
                for r, p, k in items])
        crashpoint("round:in_tx")
        # Every round commits a dataset version in its own transaction (issue 20).
        DatasetVersionsRepo(self.conn).commit("round", round_id)
        return round_id

    def get(self, round_id: int) -> dict | None:
        row = self.conn.execute(select(s.rounds).where(s.rounds.c.id == round_id)).mappings().first()
        return dict(row) if row else None

    def list(self) -> list[dict]:
        """Every round, oldest first, each with "size" (its number of items)."""
        out = [dict(r) for r in self.conn.execute(select(s.rounds).order_by(s.rounds.c.id)).mappings()]
        counts = dict(self.conn.execute(select(s.round_items.c.round_id, func.count())
                                        .group_by(s.round_items.c.round_id)).all())
        for r in out:
            r["size"] = int(counts.get(r["id"], 0))
        return out

    def items(self, round_id: int) -> list[tuple[int, int, str]]:
        """(row, position, kind) of the round, by position."""
        q = (select(s.round_items.c.row, s.round_items.c.position, s.round_items.c.kind)
             .where(s.round_items.c.round_id == round_id).order_by(s.round_items.c.position))
        return [(int(r), int(p), k) for r, p, k in self.conn.execute(q)]

    def open_rows(self) -> np.ndarray:
        """Rows queued in open rounds (labeled or not), by round then position, int64.
        A cancelled or closed round's rows are candidates again."""
        q = (select(s.round_items.c.row).join(s.rounds, s.rounds.c.id == s.round_items.c.round_id)
             .where(s.rounds.c.status == "open")
             .order_by(s.round_items.c.round_id, s.round_items.c.position))
        return np.asarray([r for (r,) in self.conn.execute(q)], dtype=np.int64)

    def open_ids(self) -> list[int]:
        return [int(r) for (r,) in _OPEN_IDS.all(self.conn)]

    def _answered_after(self) -> dict[int, int]:
        """Open round id -> the latest event id before it was planned (its log's
        `annotations_before`): a relabel item is answered by a later event only."""
        q = (select(s.rounds.c.id, s.rounds.c.log).where(s.rounds.c.status == "open")
             .order_by(s.rounds.c.id))
        return {int(rid): int((log or {}).get("annotations_before") or 0)
                for rid, log in self.conn.execute(q)}

    def planned_after(self) -> dict[int, int]:
        """Open round -> the last event id before it was planned (its relabel items
        are answered by later events only)."""
        return self._answered_after()

    def awaiting_relabel(self, rows: Sequence[int]) -> set[int]:
        """Of `rows`, those queued as relabel items in an open round with no event since
        the round was planned: a label equal to the current one is an answer for them.
        One indexed probe of `rows` when none is a relabel item (a label request's
        usual case); the rounds' logs are read only when one is."""
        a, ri, rd = s.annotations, s.round_items, s.rounds
        if batch_memo(self.conn) is not None and not self._open_relabel_rounds():
            return set()  # no open round has relabel items: no probe per request
        hits: list[tuple[int, int]] = []
        for piece in _chunks([int(r) for r in rows]):
            q = (select(ri.c.row, ri.c.round_id).join(rd, rd.c.id == ri.c.round_id)
                 .where(rd.c.status == "open", ri.c.kind == "relabel", ri.c.row.in_(piece)))
            hits += [(int(r), int(rid)) for r, rid in self.conn.execute(q)]
        if not hits:
            return set()
        before = self._answered_after()
        out: set[int] = set()
        for row, rid in hits:
            q = select(a.c.id).where(a.c.row == row, a.c.id > before.get(rid, 0)).limit(1)
            if self.conn.execute(q).first() is None:
                out.add(row)
        return out

    def _open_relabel_rounds(self) -> list[int]:
        """The open rounds with relabel items (a round's items never change after it is
        planned: known once per round per process); read once per batch."""
        memo = batch_memo(self.conn)
        if memo is not None and "relabel_rounds" in memo:
            return memo["relabel_rounds"]
        known = _has_relabel.setdefault(self.conn.engine, {})
        out = []
        for rid in self.open_ids():
            if rid not in known:
                q = (select(s.round_items.c.row).where(s.round_items.c.round_id == rid,
                                                        s.round_items.c.kind == "relabel")
                     .limit(1))
                known[rid] = self.conn.execute(q).first() is not None
            if known[rid]:
                out.append(rid)
        if memo is not None:
            memo["relabel_rounds"] = out
        return out

    def _any_cancelled(self) -> bool:
        """Whether some round was cancelled: read once per batch."""
        memo = batch_memo(self.conn)
        if memo is not None and "any_cancelled" in memo:
            return memo["any_cancelled"]
        found = _ANY_CANCELLED.first(self.conn) is not None
        if memo is not None:
            memo["any_cancelled"] = found
        return found

    def cancelled_of(self, rows: Sequence[int]) -> dict[int, int]:
        """Of `rows`, those planned in a cancelled round and queued in no open one: row
        -> the latest such round. O(rows) indexed probes (none when no round was
        cancelled)."""
        if not self._any_cancelled():
            return {}
        ri, rd = s.round_items, s.rounds
        out: dict[int, int] = {}
        queued: set[int] = set()
        for piece in _chunks([int(r) for r in rows]):
            q = (select(ri.c.row, ri.c.round_id, rd.c.status).join(rd, rd.c.id == ri.c.round_id)
                 .where(rd.c.status.in_(("cancelled", "open")), ri.c.row.in_(piece)))
            for row, rid, status in self.conn.execute(q):
                if status == "open":
                    queued.add(int(row))
                else:
                    out[int(row)] = max(int(rid), out.get(int(row), 0))
        return {r: rid for r, rid in out.items() if r not in queued}

    def close_done(self) -> list[int]:
        """Close every open round none of whose items awaits an answer (each has a label,
        skip or unsure event, from any time; a relabel item, one since the round was
        planned); return their ids. A skipped item does not hold its round open forever.
        Rounds the service made task slots for are left out: they close when their
        slots are done (overlap answers per task, skips not counted)."""
        closed = []
        a, ri = s.annotations, s.round_items
        for rid, before in self._answered_after().items():
            if self.conn.execute(select(s.task_leases.c.id).where(
                    s.task_leases.c.round_id == rid).limit(1)).first() is not None:
                continue  # a service round: closed by its task slots (LeasesRepo.settle_and_close)
            # Items with no (new enough) event: one indexed probe per item, in SQL.
            waiting = self.conn.execute(
                select(func.count()).select_from(ri).where(
                    ri.c.round_id == rid,
                    ~select(a.c.id).where(a.c.row == ri.c.row,
                                          or_(ri.c.kind != "relabel", a.c.id > before)
                                          ).exists())).scalar()
            if not waiting:
                self.conn.execute(s.rounds.update().where(s.rounds.c.id == rid).values(status="closed"))
                _forget_rounds(self.conn)
                closed.append(rid)
        return closed

    def update_log(self, round_id: int, log: dict) -> None:
        self.conn.execute(s.rounds.update().where(s.rounds.c.id == round_id).values(log=log))

    def cancel(self, round_id: int) -> None:
        """Mark an open round 'cancelled': its rows become candidates again (labels
        already recorded for them stay). ProjectError for an unknown or non-open id."""
        rnd = self.get(round_id)
        if rnd is None:
            known = self.open_ids()
            raise ProjectError(f"no round {round_id} (open rounds: "
                               f"{', '.join(map(str, known)) if known else 'none'})")
        if rnd["status"] != "open":
            raise ProjectError(f"round {round_id} is {rnd['status']}, not open: only an open "
                               "round can be cancelled")
        self.conn.execute(s.rounds.update().where(s.rounds.c.id == round_id).values(status="cancelled"))
        _forget_rounds(self.conn)


class ModelsRepo(Repo):
    """Saved models: a catalog row and the learner's arrays in `models/<id>.npz`."""

    def __init__(self, conn: Connection, root: Path):
        super().__init__(conn)
        self.root = Path(root)

    def add(self, learner: str, encoder: str, n_labels: int, classes: Sequence,
            arrays: dict[str, np.ndarray], fit_seconds: float, meta: dict | None = None) -> int:
        """Record a model and write its arrays (no pickle: object arrays are refused).

        The file is written before the transaction commits, through a temporary file
        renamed into place: a failed commit leaves at most a file no row points to (and
        on SQLite the next model, which gets the same id, replaces it)."""
        for k, v in arrays.items():
            if np.asarray(v).dtype.hasobject:
                raise ProjectError(f"model array {k!r} holds Python objects, which cannot be "
                                   "saved without pickle")
        res = self.conn.execute(sa_insert(s.models).values(
            created_at=now(), learner=learner, encoder=encoder, n_labels=int(n_labels),
            classes=[str(c) for c in classes], path="", fit_seconds=float(fit_seconds), meta=meta))
        model_id = int(res.inserted_primary_key[0])
        models_dir = self.root / "models"
        models_dir.mkdir(exist_ok=True)
        path = models_dir / f"{model_id:06d}.npz"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            sha256 = file_sha256(tmp)  # `longtail check` compares the file against it
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        crashpoint("train:model_file_written")
        self.conn.execute(s.models.update().where(s.models.c.id == model_id).values(
            path=path.relative_to(self.root).as_posix(), meta={**(meta or {}), "sha256": sha256}))
        return model_id

    def get(self, model_id: int) -> dict | None:
        row = self.conn.execute(select(s.models).where(s.models.c.id == model_id)).mappings().first()
        return dict(row) if row else None

    def latest(self) -> dict | None:
        q = select(s.models).order_by(s.models.c.id.desc()).limit(1)
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def list(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute(select(s.models).order_by(s.models.c.id)).mappings()]

    def arrays(self, meta: dict) -> dict[str, np.ndarray]:
        """The arrays saved with the model row `meta` (a dict from `latest`/`list`)."""
        return load_model_arrays(self.root, meta)




def load_model_arrays(root: Path, meta: dict) -> dict[str, np.ndarray]:
    """The arrays of the model row `meta`, read from its file under `root` (no pickle)."""
    path = Path(root) / meta["path"]
    if not path.exists():
        raise ProjectError(f"model {meta['id']}: its file {path} is missing")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class MetricsRepo(Repo):
    """Evaluation figures: (value, lo, hi) by name, per model and eval set."""

    def add(self, model_id: int | None, eval_set: str, n_labels: int,
            values: dict[str, tuple[float, float | None, float | None]]) -> None:
        if not values:
            return
        stamp = now()
        self.conn.execute(sa_insert(s.metrics), [
            {"model_id": model_id, "created_at": stamp, "eval_set": eval_set,
             "n_labels": int(n_labels), "name": k, "value": float(v),
             "lo": None if lo is None else float(lo), "hi": None if hi is None else float(hi)}
            for k, (v, lo, hi) in values.items()])

    def list(self, name: str | None = None) -> list[dict]:
        q = select(s.metrics).order_by(s.metrics.c.id)
        if name:
            q = q.where(s.metrics.c.name == name)
        return [dict(r) for r in self.conn.execute(q).mappings()]


class EvalVersionsRepo(Repo):
    """Versions of the managed eval set's labeled content."""

    def get_or_create(self, fingerprint: str, n_labeled: int) -> tuple[int, bool]:
        """The version with this fingerprint, created when new: (id, created)."""
        ev = s.eval_versions
        found = self.conn.execute(select(ev.c.id).where(ev.c.fingerprint == fingerprint)).scalar()
        if found is not None:
            return int(found), False
        res = self.conn.execute(sa_insert(ev).values(
            created_at=now(), n_labeled=int(n_labeled), fingerprint=fingerprint))
        return int(res.inserted_primary_key[0]), True

    def list(self) -> list[dict]:
        q = select(s.eval_versions).order_by(s.eval_versions.c.id)
        return [dict(r) for r in self.conn.execute(q).mappings()]


class VectorSetsRepo(Repo):
    """Catalog records of vector sets: dim, dtype, valid row count, encoder config."""

    def info(self, name: str) -> dict | None:
        row = self.conn.execute(select(s.vector_sets).where(s.vector_sets.c.name == name)
                                ).mappings().first()
        return dict(row) if row else None

    def names(self) -> list[str]:
        q = select(s.vector_sets.c.name).order_by(s.vector_sets.c.name)
        return [r for (r,) in self.conn.execute(q)]

    def ensure(self, name: str, dim: int, dtype: str, config: dict) -> dict:
        """The set's record, created (with 0 valid rows) when it does not exist."""
        info = self.info(name)
        if info is None:
            self.conn.execute(sa_insert(s.vector_sets).values(
                name=name, dim=int(dim), dtype=dtype, n_rows=0, config=config))
            info = {"name": name, "dim": int(dim), "dtype": dtype, "n_rows": 0, "config": config}
        return info

    def set_rows(self, name: str, n_rows: int, config: dict | None = None) -> None:
        values: dict[str, Any] = {"n_rows": int(n_rows)}
        if config is not None:
            values["config"] = config
        self.conn.execute(s.vector_sets.update().where(s.vector_sets.c.name == name).values(**values))
