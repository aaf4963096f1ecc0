"""The project store: the only code that touches the project directory.

A project is a directory holding `vectors/<set>/chunk-*.npy`, `models/<id>.npz` and
`columns/batch-<id>/part-*.arrow` (the samples' texts and metadata),
and a catalog: `catalog.db` in the directory (SQLite in WAL mode, the default), or a
PostgreSQL database named by the SQLAlchemy URL in `catalog.url`
(`postgresql+psycopg://user@host/db`, optionally `?options=-csearch_path%3Dschema`).

Transactions belong to the caller. `Store.unit_of_work()` opens one transaction and
hands out repositories over it, `Store.reading()` one snapshot that never commits
(`longtail.store.uow`); every caller (engine, CLI, service, tests, benchmarks) reads
and writes the catalog through the repositories of one of those. `Store` itself keeps
only the lifecycle (create, open, migrate, close) and the files beside the catalog
(vector writers, the redo journal of vector rewrites).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    column,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy import table as sa_table
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from longtail.errors import ProjectError
from longtail.store import columns, redo
from longtail.store import schema as s
from longtail.store.repo_base import forget_prepared
from longtail.store.repos import now  # noqa: F401  (kept importable from here)
from longtail.store.repos_versions import migrate_3
from longtail.store.uow import UnitOfWork
from longtail.store.vectors import VectorSet

CATALOG = "catalog.db"
CATALOG_URL = "catalog.url"  # the catalog's SQLAlchemy URL, when it is not catalog.db


def _migrate_2(conn: Connection) -> None:
    """v1 -> v2: annotation event kinds (old events are labels), models.meta, and on
    PostgreSQL a rounds.status wide enough for 'cancelled' (SQLite ignores lengths).
    Each step checks first, so a half-applied upgrade (SQLite runs ALTER outside the
    transaction) can be run again."""
    insp = inspect(conn)
    have = {c["name"] for c in insp.get_columns("annotations")}
    if "kind" not in have:
        conn.execute(text("ALTER TABLE annotations ADD COLUMN kind VARCHAR(8) DEFAULT 'label' NOT NULL"))
    if "meta" not in {c["name"] for c in insp.get_columns("models")}:
        conn.execute(text("ALTER TABLE models ADD COLUMN meta TEXT"))
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE rounds ALTER COLUMN status TYPE VARCHAR(16)"))


def _migrate_4(conn: Connection) -> None:
    """v3 -> v4: the service's tables (users, task_leases) with their indexes; tables
    already there are left alone, so the step can run again."""
    for table in (s.users, s.task_leases):
        table.create(conn, checkfirst=True)


def _migrate_5(conn: Connection) -> None:
    """v4 -> v5: the compute ledger's table (issue 29); left alone when there."""
    s.compute_runs.create(conn, checkfirst=True)


def _migrate_6(conn: Connection) -> None:
    """v5 -> v6: the audit log of admin actions (issue 27); left alone when there."""
    s.audit_log.create(conn, checkfirst=True)


def _migrate_7(conn: Connection, root: Path) -> None:
    """v6 -> v7: texts and metadata move from the catalog to column files beside it
    (`longtail.store.columns`); each sample gets its position there (`samples.pos`),
    then the catalog's `text` and `meta` columns are dropped. Streams the samples in
    row order, a part per batch per piece, so memory stays bounded at any pool size.
    Runs again from the start if interrupted before the drop (the parts are rewritten)."""
    have = {c["name"] for c in inspect(conn).get_columns("samples")}
    if "pos" not in have:
        conn.execute(text("ALTER TABLE samples ADD COLUMN pos INTEGER"))
    if "text" not in have:
        return
    old = sa_table("samples", column("row"), column("batch_id"), column("text"), column("meta"))
    next_pos: dict[int, int] = {}
    last = -1
    while True:
        got = conn.execute(select(old.c.row, old.c.batch_id, old.c.text, old.c.meta)
                           .where(old.c.row > last).order_by(old.c.row).limit(100_000)).all()
        if not got:
            break
        last = int(got[-1][0])
        by_batch: dict[int, list] = {}
        for g in got:
            if g[2] is not None or g[3] is not None:
                by_batch.setdefault(int(g[1]), []).append(g)
        updates = []
        for batch_id, part in by_batch.items():
            first = next_pos.get(batch_id)
            if first is None:
                columns.clear_batch(root, batch_id)
                first = 0
            columns.write_part(root, batch_id, first, [g[2] for g in part], [g[3] for g in part],
                               len(part))
            next_pos[batch_id] = first + len(part)
            updates += [{"r": int(g[0]), "p": first + i} for i, g in enumerate(part)]
        if updates:
            conn.execute(s.samples.update().where(s.samples.c.row == bindparam("r"))
                         .values(pos=bindparam("p")), updates)
    for col in ("text", "meta"):
        conn.execute(text(f"ALTER TABLE samples DROP COLUMN {col}"))


def _migrate_8(conn: Connection) -> None:
    """v7 -> v8, PostgreSQL's bulk ingest: drop the foreign key from samples.batch_id to
    ingest_batches (a check query per ingested row; see `schema.samples`) and make
    ix_samples_split index the rows outside the pool only. SQLite keeps both: dropping
    a constraint there rebuilds the table, and its check is an index probe in process.
    Run again, it finds nothing to drop and builds the same index."""
    if conn.dialect.name != "postgresql":
        return
    q = conn.dialect.identifier_preparer.quote
    for fk in inspect(conn).get_foreign_keys("samples"):
        if fk["referred_table"] == "ingest_batches" and fk["name"]:
            conn.execute(text(f"ALTER TABLE samples DROP CONSTRAINT {q(fk['name'])}"))
    conn.execute(text("DROP INDEX IF EXISTS ix_samples_split"))
    next(i for i in s.samples.indexes if i.name == "ix_samples_split").create(conn)


# version -> function(conn) upgrading the catalog from version-1 to version; the steps
# in NEEDS_ROOT also take the project directory (they move data to files beside it).
MIGRATIONS: dict[int, Callable[..., None]] = {2: _migrate_2, 3: migrate_3, 4: _migrate_4,
                                              5: _migrate_5, 6: _migrate_6, 7: _migrate_7,
                                              8: _migrate_8}
NEEDS_ROOT = frozenset({7})


def _engine(url: str | URL) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "postgresql":
        forget_prepared(engine)  # the service's direct statements (store.repo_base)
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


def parse_db_url(db_url: str) -> URL:
    """A catalog URL, checked; `postgresql://` means psycopg 3 (the driver longtail
    depends on)."""
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise ProjectError(f"{db_url!r} is not a database URL (e.g. "
                           "postgresql+psycopg://user@127.0.0.1:5432/longtail)") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ProjectError(f"catalog URL {url.render_as_string()}: longtail keeps its "
                           "catalog in SQLite or PostgreSQL")
    return url


def _connect(url: URL) -> tuple[Engine, bool]:
    """An engine for the catalog at `url` and whether it holds a longtail catalog
    already; a missing driver or a server that does not answer is one ProjectError."""
    shown = url.render_as_string()  # password hidden
    try:
        engine = _engine(url)
    except (ImportError, NoSuchModuleError) as e:
        raise ProjectError(f"cannot open the catalog database {shown}: its driver is not "
                           f"installed ({e}); longtail's PostgreSQL driver is psycopg 3, "
                           "`pip install 'psycopg[binary]'`") from None
    try:
        return engine, inspect(engine).has_table("settings")
    except (OperationalError, DBAPIError) as e:
        engine.dispose()
        lines = str(getattr(e, "orig", e)).strip().splitlines()
        raise ProjectError(f"cannot open the catalog database {shown}: "
                           f"{lines[0] if lines else type(e).__name__}") from None


def _lock_for_claim(conn: Connection) -> None:
    """The first statement of a claiming transaction: see `Store.unit_of_work`."""
    if conn.dialect.name == "sqlite":
        # pysqlite starts no transaction before a SELECT; an explicit BEGIN IMMEDIATE
        # takes the write lock now, and the driver's commit ends it.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        table = conn.dialect.identifier_preparer.format_table(s.rounds)
        # SHARE ROW EXCLUSIVE conflicts with itself and with row writes, not with reads.
        conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


class Store:
    """Catalog and vector sets of one project directory."""

    def __init__(self, root: Path, engine: Engine):
        self.root = Path(root)
        self.engine = engine

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | Path, settings: dict[str, Any], db_url: str | None = None) -> Store:
        """A new project at `root` with these settings. The catalog is `root/catalog.db`,
        or the database at `db_url` (remembered in `root/catalog.url`), which must not
        hold a longtail catalog already."""
        root = Path(root)
        if (root / CATALOG).exists() or (root / CATALOG_URL).exists():
            raise ProjectError(f"{root} already holds a longtail project")
        url = parse_db_url(db_url) if db_url else make_url(f"sqlite:///{root / CATALOG}")
        # The project's files are its owner's alone: a folder we make is 0700 (what is
        # made inside it is out of others' reach), the SQLite catalog 0600 (its WAL and
        # shared-memory files take the catalog's mode).
        sqlite_file = (Path(url.database) if url.get_backend_name() == "sqlite" and url.database
                       and url.database != ":memory:" else None)
        if sqlite_file is not None:
            sqlite_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not sqlite_file.exists():
                sqlite_file.touch(mode=0o600)
        engine, has_catalog = _connect(url)
        if has_catalog:
            engine.dispose()
            raise ProjectError(f"the database {url.render_as_string()} already holds a "
                               "longtail catalog (use another database or schema)")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = cls(root, engine)
        s.metadata.create_all(store.engine)
        with store.unit_of_work() as uow:
            uow.settings.set("schema_version", s.SCHEMA_VERSION)
            for k, v in settings.items():
                uow.settings.set(k, v)
        if db_url:
            # Written last: a project whose catalog could not be made has no URL file.
            path = root / CATALOG_URL
            path.write_text(url.render_as_string(hide_password=False) + "\n")
            os.chmod(path, 0o600)  # it may hold a password
        return store

    @classmethod
    def open(cls, root: str | Path) -> Store:
        """The project at `root` (its catalog found through `catalog.url` or
        `catalog.db`), upgraded to this version's schema."""
        root = Path(root)
        if (root / CATALOG_URL).exists():
            url = parse_db_url((root / CATALOG_URL).read_text().strip())
        elif (root / CATALOG).exists():
            url = make_url(f"sqlite:///{root / CATALOG}")
        else:
            raise ProjectError(
                f"no longtail project at {root.resolve()} (run `longtail init {root}` first, "
                "or pass --project PATH)"
            )
        engine, has_catalog = _connect(url)
        if not has_catalog:
            engine.dispose()
            raise ProjectError(f"{root}: the database {url.render_as_string()} holds no "
                               "longtail catalog")
        store = cls(root, engine)
        store._migrate()
        store.recover_vector_rewrites()
        return store

    @property
    def dialect(self) -> str:
        """The catalog's SQL dialect: 'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def _migrate(self) -> None:
        with self.reading() as uow:
            version = int(uow.settings.get("schema_version"))
        if version > s.SCHEMA_VERSION:
            raise ProjectError(
                f"project {self.root} has schema version {version}; this longtail knows "
                f"{s.SCHEMA_VERSION}: upgrade longtail"
            )
        while version < s.SCHEMA_VERSION:
            with self.unit_of_work() as uow:
                step = MIGRATIONS[version + 1]
                step(uow.conn, self.root) if version + 1 in NEEDS_ROOT else step(uow.conn)
                uow.settings.set("schema_version", version + 1)
            version += 1

    def close(self) -> None:
        """Release the catalog's connections."""
        self.engine.dispose()

    def checkpoint_wal(self) -> None:
        """SQLite: copy what the write-ahead log holds into the database file, without
        waiting for anyone (PASSIVE: writers and readers go on beside it); a no-op on
        PostgreSQL. For a writer that leaves checkpoints to a thread of its own
        (`LeasesRepo.defer_checkpoints`)."""
        if self.dialect != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def unit_of_work(self, *, write_lock: bool = False) -> Iterator[UnitOfWork]:
        """One transaction with every repository over it: commits when the block ends
        normally, rolls back (and re-raises) on any exception.

        `write_lock` takes the lock that serialises claims before the first read, so
        what the block reads no other claimer changes until it commits: on SQLite the
        database's write lock (BEGIN IMMEDIATE: other writers wait, readers go on); on
        PostgreSQL a lock on the rounds table that only another claim (or a write to
        rounds) waits for. Held for the block only: keep the block short."""
        with self.engine.begin() as conn:
            if write_lock:
                _lock_for_claim(conn)
            yield UnitOfWork(conn, self.root)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """A unit of work that reads one snapshot and writes nothing: a read transaction
        on SQLite (WAL: writers go on beside it), REPEATABLE READ, READ ONLY on
        PostgreSQL. Rolled back at the end, so it never commits."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                              postgresql_readonly=True)
            trans = conn.begin()
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")  # pysqlite would read outside a transaction
            try:
                yield UnitOfWork(conn, self.root)
            finally:
                trans.rollback()

    # -- vectors -----------------------------------------------------------------------

    def journal_vector_rewrite(self, name: str, batch_id: int, file_sha256: str,
                               rows: np.ndarray, vectors: np.ndarray) -> Path:
        """Inside ingest batch `batch_id`'s transaction, before it commits: journal the
        new vectors of rows already in set `name` (see `store.redo`)."""
        return redo.write(self.root, name, batch_id, file_sha256, rows, vectors)

    def apply_vector_rewrite(self, journal: Path) -> None:
        """After the commit: write the journaled vectors, fsync, drop the journal."""
        j = redo.read(journal)
        with self.reading() as uow:
            vs = uow.vector_set(j["vector_set"])
        for row, v in zip(j["rows"].tolist(), j["vectors"], strict=True):
            vs.write(row, v[None, :])
        vs.sync()
        redo.remove(journal)

    def drop_vector_rewrite(self, journal: Path) -> None:
        """The transaction rolled back: its journal goes."""
        redo.remove(journal)

    def recover_vector_rewrites(self) -> int:
        """Finish what a killed `ingest --update` left: apply each journal whose batch
        committed, drop the others. Journals of a process still running are left to it.
        Returns how many were applied. A stat of one folder when there is nothing."""
        applied = 0
        for journal in redo.pending(self.root):
            j = redo.read(journal)
            if redo.writer_alive(j["pid"]):
                continue
            with self.reading() as uow:
                committed = uow.samples.batch_checksum(j["batch_id"])
            if committed == j["file_sha256"]:
                self.apply_vector_rewrite(journal)
                applied += 1
            else:
                redo.remove(journal)
        return applied

    def vector_writer(self, name: str, dim: int, dtype: str) -> VectorSet:
        """A vector set `name` to append to (its files; the catalog's row count is the
        caller's to commit, after the vectors are on disk)."""
        return VectorSet(self.root / "vectors" / name, dim, dtype, 0)
