"""The project store: the only code that touches the project directory.

A project is a directory holding `catalog.db` (SQLite in WAL mode, through SQLAlchemy
Core so PostgreSQL can take its place), `vectors/<set>/chunk-*.npy` and
`models/<id>.npz`. Every multi-row change runs in one transaction (`Store.tx()`);
a failed command leaves the project as it was.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy import insert as sa_insert

from longtail.errors import ProjectError
from longtail.store import schema as s
from longtail.store.vectors import VectorSet

CATALOG = "catalog.db"
_IN_CHUNK = 20_000  # ids per IN (...) query; well under SQLite's 32,766 variables
_INSERT_ROWS = 500  # rows per multi-row INSERT: 3,500 variables

# version -> function(conn) upgrading the catalog from version-1 to version.
MIGRATIONS: dict[int, Any] = {}


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _engine(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # 16 KiB pages for a new catalog (a no-op on an existing one; it must come
            # before WAL): a bulk ingest writes and checkpoints a quarter as many pages,
            # while a small transaction still touches only a few.
            cur.execute("PRAGMA page_size=16384")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


class Store:
    """Catalog and vector sets of one project directory."""

    def __init__(self, root: Path, engine: Engine):
        self.root = Path(root)
        self.engine = engine
        self._vector_sets: dict[str, VectorSet] = {}

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | Path, settings: dict[str, Any]) -> Store:
        root = Path(root)
        if (root / CATALOG).exists():
            raise ProjectError(f"{root} already holds a longtail project")
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root, _engine(f"sqlite:///{root / CATALOG}"))
        s.metadata.create_all(store.engine)
        with store.tx() as conn:
            rows = [{"key": "schema_version", "value": s.SCHEMA_VERSION}]
            rows += [{"key": k, "value": v} for k, v in settings.items()]
            conn.execute(sa_insert(s.settings), rows)
        return store

    @classmethod
    def open(cls, root: str | Path) -> Store:
        root = Path(root)
        if not (root / CATALOG).exists():
            raise ProjectError(
                f"no longtail project at {root.resolve()} (run `longtail init {root}` first, "
                "or pass --project PATH)"
            )
        store = cls(root, _engine(f"sqlite:///{root / CATALOG}"))
        store._migrate()
        return store

    def _migrate(self) -> None:
        version = int(self.setting("schema_version"))
        if version > s.SCHEMA_VERSION:
            raise ProjectError(
                f"project {self.root} has schema version {version}; this longtail knows "
                f"{s.SCHEMA_VERSION}: upgrade longtail"
            )
        while version < s.SCHEMA_VERSION:
            with self.tx() as conn:
                MIGRATIONS[version + 1](conn)
                self._set(conn, "schema_version", version + 1)
            version += 1

    def close(self) -> None:
        for vs in self._vector_sets.values():
            vs.close()
        self.engine.dispose()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction: commits on success, rolls back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    # -- settings ----------------------------------------------------------------------

    def setting(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            value = conn.execute(select(s.settings.c.value).where(s.settings.c.key == key)).scalar()
        return default if value is None else value

    def settings(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return {k: v for k, v in conn.execute(select(s.settings.c.key, s.settings.c.value))}

    @staticmethod
    def _set(conn: Connection, key: str, value: Any) -> None:
        conn.execute(s.settings.delete().where(s.settings.c.key == key))
        conn.execute(sa_insert(s.settings).values(key=key, value=value))

    def set_setting(self, key: str, value: Any) -> None:
        with self.tx() as conn:
            self._set(conn, key, value)

    # -- samples -----------------------------------------------------------------------

    def n_samples(self, conn: Connection | None = None) -> int:
        q = select(func.count()).select_from(s.samples)
        if conn is not None:
            return int(conn.execute(q).scalar())
        with self.engine.connect() as c:
            return int(c.execute(q).scalar())

    def next_row(self, conn: Connection) -> int:
        top = conn.execute(select(func.max(s.samples.c.row))).scalar()
        return 0 if top is None else int(top) + 1

    def lookup_ids(self, conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """external_id -> (row, content_hash) for those of `ids` already in the catalog."""
        found: dict[str, tuple[int, str]] = {}
        ids = list(ids)
        for start in range(0, len(ids), _IN_CHUNK):
            piece = ids[start : start + _IN_CHUNK]
            q = select(s.samples.c.external_id, s.samples.c.row, s.samples.c.content_hash).where(
                s.samples.c.external_id.in_(piece)
            )
            for ext, row, h in conn.execute(q):
                found[ext] = (int(row), h)
        return found

    def add_batch(self, conn: Connection, source_file: str, file_sha256: str, mapping: dict) -> int:
        res = conn.execute(
            sa_insert(s.ingest_batches).values(
                source_file=source_file, file_sha256=file_sha256, created_at=now(),
                n_new=0, n_updated=0, n_unchanged=0, mapping=mapping,
            )
        )
        return int(res.inserted_primary_key[0])

    def finish_batch(self, conn: Connection, batch_id: int, n_new: int, n_updated: int,
                     n_unchanged: int, file_sha256: str) -> None:
        conn.execute(
            s.ingest_batches.update().where(s.ingest_batches.c.id == batch_id).values(
                n_new=n_new, n_updated=n_updated, n_unchanged=n_unchanged,
                file_sha256=file_sha256,
            )
        )

    def insert_samples(self, conn: Connection, batch_id: int, rows: list[tuple],
                       eval_rows: Sequence[int] = ()) -> None:
        """Bulk insert (row, external_id, content_hash, text, meta_json) tuples of ingest
        batch `batch_id` into the pool split, then move `eval_rows` to the eval split.

        The ingest hot loop: goes through the DBAPI, `_INSERT_ROWS` rows per statement
        (multi-row VALUES), with the batch id and split written into the statement
        rather than bound per row: five bound values a row instead of seven."""
        if not rows:
            return
        mark = "?" if self.engine.dialect.name == "sqlite" else "%s"
        head = ("INSERT INTO samples (row, external_id, content_hash, batch_id, split, text, "
                "meta) VALUES ")
        one = f"({mark}, {mark}, {mark}, {int(batch_id)}, 'pool', {mark}, {mark})"
        k = _INSERT_ROWS
        whole = len(rows) // k * k
        if whole:
            flat = chain.from_iterable(rows[:whole])
            conn.exec_driver_sql(head + ", ".join([one] * k),
                                 list(zip(*[flat] * (5 * k), strict=False)))
        if whole < len(rows):
            conn.exec_driver_sql(head + one, rows[whole:])
        eval_rows = [int(r) for r in eval_rows]
        for i in range(0, len(eval_rows), _IN_CHUNK):
            part = eval_rows[i : i + _IN_CHUNK]
            conn.execute(s.samples.update().where(s.samples.c.row.in_(part)).values(split="eval"))

    def update_samples(self, conn: Connection, rows: list[dict]) -> None:
        """rows: dicts with row, content_hash, text, meta (JSON text), batch_id."""
        from sqlalchemy import bindparam

        if rows:
            conn.execute(
                s.samples.update().where(s.samples.c.row == bindparam("b_row")).values(
                    content_hash=bindparam("content_hash"), text=bindparam("text"),
                    meta=bindparam("meta"), batch_id=bindparam("batch_id"),
                ),
                [{**r, "b_row": r["row"]} for r in rows],
            )

    def rows_by_split(self, split: str) -> np.ndarray:
        with self.engine.connect() as conn:
            q = select(s.samples.c.row).where(s.samples.c.split == split).order_by(s.samples.c.row)
            return np.fromiter((r for (r,) in conn.execute(q)), dtype=np.int64)

    def iter_samples(self, rows: np.ndarray | None = None, start: int = 0,
                     batch_rows: int = 4096) -> Iterator[list[tuple[int, str, str | None, dict]]]:
        """Yield lists of (row, external_id, text, metadata) ordered by row, from `start`,
        or for the given rows."""
        cols = (s.samples.c.row, s.samples.c.external_id, s.samples.c.text, s.samples.c.meta)
        with self.engine.connect() as conn:
            if rows is None:
                last = start - 1
                while True:
                    q = select(*cols).where(s.samples.c.row > last).order_by(s.samples.c.row)
                    got = conn.execute(q.limit(batch_rows)).all()
                    if not got:
                        return
                    last = got[-1][0]
                    yield [(r, e, t, json.loads(m) if m else {}) for r, e, t, m in got]
            else:
                rows = np.asarray(rows, dtype=np.int64)
                for i in range(0, len(rows), batch_rows):
                    piece = [int(r) for r in rows[i : i + batch_rows]]
                    got = conn.execute(select(*cols).where(s.samples.c.row.in_(piece))).all()
                    by_row = {r: (r, e, t, json.loads(m) if m else {}) for r, e, t, m in got}
                    yield [by_row[r] for r in piece]

    def ids_to_rows(self, ids: Sequence[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {k: v[0] for k, v in self.lookup_ids(conn, ids).items()}

    def split_counts_conn(self, conn: Connection) -> dict[str, int]:
        q = select(s.samples.c.split, func.count()).group_by(s.samples.c.split)
        return {k: int(v) for k, v in conn.execute(q)}

    def split_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return self.split_counts_conn(conn)

    # -- vectors -----------------------------------------------------------------------

    def vector_set_info(self, name: str, conn: Connection | None = None) -> dict | None:
        q = select(s.vector_sets).where(s.vector_sets.c.name == name)
        if conn is None:
            with self.engine.connect() as c:
                row = c.execute(q).mappings().first()
        else:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def vector_set_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r for (r,) in conn.execute(select(s.vector_sets.c.name))]

    def ensure_vector_set(self, conn: Connection, name: str, dim: int, dtype: str,
                          config: dict) -> dict:
        info = self.vector_set_info(name, conn)
        if info is None:
            conn.execute(sa_insert(s.vector_sets).values(
                name=name, dim=dim, dtype=dtype, n_rows=0, config=config))
            info = {"name": name, "dim": dim, "dtype": dtype, "n_rows": 0, "config": config}
        return info

    def set_vector_rows(self, conn: Connection, name: str, n_rows: int, config: dict | None = None
                        ) -> None:
        values: dict[str, Any] = {"n_rows": n_rows}
        if config is not None:
            values["config"] = config
        conn.execute(s.vector_sets.update().where(s.vector_sets.c.name == name).values(**values))

    def vectors(self, name: str, *, writable_rows: int | None = None) -> VectorSet:
        """The vector set `name`; its valid row count is read from the catalog."""
        info = self.vector_set_info(name)
        if info is None:
            raise ProjectError(f"no vectors for encoder {name!r} yet (run `longtail embed`)")
        vs = VectorSet(self.root / "vectors" / name, info["dim"], info["dtype"], info["n_rows"])
        self._vector_sets[name] = vs
        return vs

    def vector_writer(self, name: str, dim: int, dtype: str) -> VectorSet:
        return VectorSet(self.root / "vectors" / name, dim, dtype, 0)

    # -- annotations -------------------------------------------------------------------

    def add_annotations(self, conn: Connection, events: Iterable[dict]) -> int:
        events = list(events)
        if events:
            stamp = now()
            conn.execute(sa_insert(s.annotations), [
                {"annotator": None, "seconds": None, "round_id": None, "created_at": stamp, **e}
                for e in events
            ])
        return len(events)

    def current_labels(self, conn: Connection | None = None) -> dict[int, str]:
        """row -> label of its latest annotation event (human, import or oracle)."""
        latest = (select(s.annotations.c.row, func.max(s.annotations.c.id).label("id"))
                  .group_by(s.annotations.c.row).subquery())
        q = select(s.annotations.c.row, s.annotations.c.label).join(
            latest, s.annotations.c.id == latest.c.id)
        if conn is None:
            with self.engine.connect() as c:
                return {int(r): lab for r, lab in c.execute(q)}
        return {int(r): lab for r, lab in conn.execute(q)}

    def annotation_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(s.annotations)).scalar())

    # -- rounds ------------------------------------------------------------------------

    def open_round_rows(self, conn: Connection | None = None) -> np.ndarray:
        """Rows queued in open rounds and not labeled since."""
        q = (select(s.round_items.c.row).join(s.rounds, s.rounds.c.id == s.round_items.c.round_id)
             .where(s.rounds.c.status == "open"))
        if conn is None:
            with self.engine.connect() as c:
                rows = [r for (r,) in c.execute(q)]
        else:
            rows = [r for (r,) in conn.execute(q)]
        return np.asarray(rows, dtype=np.int64)

    def add_round(self, conn: Connection, strategy: str, params: dict, n_labels: int, log: dict,
                  items: list[tuple[int, int, str]], model_id: int | None) -> int:
        res = conn.execute(sa_insert(s.rounds).values(
            created_at=now(), strategy=strategy, params=params, model_id=model_id,
            status="open", n_labels=n_labels, log=log))
        round_id = int(res.inserted_primary_key[0])
        if items:
            conn.execute(sa_insert(s.round_items), [
                {"round_id": round_id, "row": r, "position": p, "kind": k} for r, p, k in items])
        return round_id

    def close_rounds_done(self, conn: Connection) -> list[int]:
        """Close every open round whose items all have a label; return their ids."""
        labeled = set(self.current_labels(conn))
        closed = []
        open_ids = [r for (r,) in conn.execute(select(s.rounds.c.id).where(s.rounds.c.status == "open"))]
        for rid in open_ids:
            rows = [r for (r,) in conn.execute(
                select(s.round_items.c.row).where(s.round_items.c.round_id == rid))]
            if all(r in labeled for r in rows):
                conn.execute(s.rounds.update().where(s.rounds.c.id == rid).values(status="closed"))
                closed.append(rid)
        return closed

    def rounds(self) -> list[dict]:
        with self.engine.connect() as conn:
            out = [dict(r) for r in conn.execute(select(s.rounds).order_by(s.rounds.c.id)).mappings()]
            counts = dict(conn.execute(select(s.round_items.c.round_id, func.count())
                                       .group_by(s.round_items.c.round_id)).all())
        for r in out:
            r["size"] = int(counts.get(r["id"], 0))
        return out

    def round_items(self, round_id: int) -> list[tuple[int, int, str]]:
        with self.engine.connect() as conn:
            q = (select(s.round_items.c.row, s.round_items.c.position, s.round_items.c.kind)
                 .where(s.round_items.c.round_id == round_id).order_by(s.round_items.c.position))
            return [tuple(r) for r in conn.execute(q)]

    def update_round_log(self, round_id: int, log: dict) -> None:
        with self.tx() as conn:
            conn.execute(s.rounds.update().where(s.rounds.c.id == round_id).values(log=log))

    # -- models and metrics ------------------------------------------------------------

    def save_model(self, learner_name: str, encoder: str, n_labels: int, classes: list,
                   arrays: dict[str, np.ndarray], fit_seconds: float) -> int:
        models_dir = self.root / "models"
        models_dir.mkdir(exist_ok=True)
        with self.tx() as conn:
            res = conn.execute(sa_insert(s.models).values(
                created_at=now(), learner=learner_name, encoder=encoder, n_labels=n_labels,
                classes=[str(c) for c in classes], path="", fit_seconds=fit_seconds))
            model_id = int(res.inserted_primary_key[0])
            path = models_dir / f"{model_id:06d}.npz"
            np.savez(path, **arrays)
            conn.execute(s.models.update().where(s.models.c.id == model_id).values(
                path=str(path.relative_to(self.root))))
        return model_id

    def latest_model(self) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.models).order_by(s.models.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def models(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(s.models).order_by(s.models.c.id)).mappings()]

    def load_model_arrays(self, model: dict) -> dict[str, np.ndarray]:
        with np.load(self.root / model["path"], allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def add_metrics(self, model_id: int | None, eval_set: str, n_labels: int,
                    values: dict[str, tuple[float, float | None, float | None]]) -> None:
        with self.tx() as conn:
            stamp = now()
            conn.execute(sa_insert(s.metrics), [
                {"model_id": model_id, "created_at": stamp, "eval_set": eval_set,
                 "n_labels": n_labels, "name": k, "value": v, "lo": lo, "hi": hi}
                for k, (v, lo, hi) in values.items()])

    def eval_version(self, fingerprint: str, n_labeled: int) -> tuple[int, bool]:
        """The eval version with this fingerprint, created when new: (id, created)."""
        with self.tx() as conn:
            found = conn.execute(select(s.eval_versions.c.id).where(
                s.eval_versions.c.fingerprint == fingerprint)).scalar()
            if found is not None:
                return int(found), False
            res = conn.execute(sa_insert(s.eval_versions).values(
                created_at=now(), n_labeled=n_labeled, fingerprint=fingerprint))
            return int(res.inserted_primary_key[0]), True

    def eval_versions(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(s.eval_versions).order_by(s.eval_versions.c.id)).mappings()]

    def first_label_times(self) -> dict[int, int]:
        """row -> id of its first annotation event (ids order events in time)."""
        with self.engine.connect() as conn:
            q = select(s.annotations.c.row, func.min(s.annotations.c.id)).group_by(
                s.annotations.c.row)
            return {int(r): int(i) for r, i in conn.execute(q)}

    def max_annotation_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(s.annotations.c.id))).scalar() or 0)

    def metrics(self, name: str | None = None) -> list[dict]:
        with self.engine.connect() as conn:
            q = select(s.metrics).order_by(s.metrics.c.id)
            if name:
                q = q.where(s.metrics.c.name == name)
            return [dict(r) for r in conn.execute(q).mappings()]
