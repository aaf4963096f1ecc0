"""What every repository shares: the base class holding the caller's connection, the
time stamp, and the settings repository (read by the others)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import DBAPIError

from longtail.store import schema as s


def now() -> str:
    """UTC time stamp, milliseconds, ISO 8601 (sorts as text)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


# The key under which a batch of the service keeps, for its one transaction, reads that
# none of its requests changes (settings, the open rounds, ...): `UnitOfWork.batch_reads`.
BATCH_READS = "longtail.batch_reads"


def batch_memo(conn: Connection) -> dict | None:
    """The reads memo of the batch whose transaction runs on `conn`, None outside one
    (every read then goes to the catalog)."""
    return conn.info.get(BATCH_READS)


class Direct:
    """A Core statement compiled once per dialect and run straight on the DBAPI cursor
    of the caller's connection, inside its transaction: for the service's per-request
    statements (a lease, an answer), where SQLAlchemy's work per execution (cache key,
    parameter and result processing) cost several times the statement itself, on
    SQLite as on PostgreSQL. Only for statements whose parameters and columns need no
    type conversion (integers, floats, strings) and no IN list (expanding, even of
    literals). A database
    error is raised as SQLAlchemy's would be (`DBAPIError` with `.orig`), so callers
    (a deadlock retried, a constraint named) see no difference; SQLAlchemy's cursor
    events do not see these statements."""

    def __init__(self, stmt: Any):
        self.stmt = stmt
        self.keys = list(stmt.exported_columns.keys()) if stmt.exported_columns else []
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        got = self._compiled.get(dialect.name)
        if got is None:
            c = self.stmt.compile(dialect=dialect)
            # Values the statement binds itself (a literal state, a LIMIT) are defaults.
            got = (str(c), tuple(c.positiontup) if c.positional else None, dict(c.params))
            self._compiled[dialect.name] = got
        return got

    def run(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """The executed DBAPI cursor (fetch from it, or read its rowcount)."""
        sql, order, defaults = self._for(conn.dialect)
        args: Any = {**defaults, **params} if params else defaults
        if order is not None:
            args = tuple(args[k] for k in order)
        cur = _cursor(conn)
        try:
            cur.execute(sql, args)
        except conn.dialect.loaded_dbapi.Error as e:
            raise DBAPIError.instance(sql, args, e, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from e
        return cur

    def first(self, conn: Connection, params: dict[str, Any] | None = None) -> dict | None:
        """The first row as a dict of the statement's column keys, or None."""
        row = self.run(conn, params).fetchone()
        return None if row is None else dict(zip(self.keys, row, strict=True))

    def scalar(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        row = self.run(conn, params).fetchone()
        return None if row is None else row[0]

    def all(self, conn: Connection, params: dict[str, Any] | None = None) -> list[tuple]:
        return list(self.run(conn, params).fetchall())

    def rowcount(self, conn: Connection, params: dict[str, Any] | None = None) -> int:
        return int(self.run(conn, params).rowcount)


def _cursor(conn: Connection) -> Any:
    """A DBAPI cursor of `conn`'s driver connection, made once per driver connection (the
    pool keeps it with the connection; a statement's rows are read before the next)."""
    driver = conn.connection.driver_connection
    info = conn.connection.info
    got = info.get(_CURSOR)
    if got is None or got[0] is not driver:
        got = info[_CURSOR] = (driver, driver.cursor())
    return got[1]


_CURSOR = "longtail.direct_cursor"


class Repo:
    """A repository over ONE connection that the caller owns: it never opens, commits or
    rolls back a transaction itself."""

    def __init__(self, conn: Connection):
        self.conn = conn


# Built once: the service reads a setting on every label request, and building a Core
# expression costs several times what running it on SQLite does.
_SETTING = select(s.settings.c.value).where(s.settings.c.key == bindparam("k"))


class SettingsRepo(Repo):
    """Project settings: JSON values by key."""

    def get(self, key: str, default: Any = None) -> Any:
        memo = batch_memo(self.conn)
        if memo is not None and ("setting", key) in memo:
            value = memo[("setting", key)]
        else:
            value = self.conn.execute(_SETTING, {"k": key}).scalar()
            if memo is not None:
                memo[("setting", key)] = value
        return default if value is None else value

    def all(self) -> dict[str, Any]:
        q = select(s.settings.c.key, s.settings.c.value).order_by(s.settings.c.key)
        return {k: v for k, v in self.conn.execute(q)}

    def set(self, key: str, value: Any) -> None:
        # Delete then insert: the same two statements on every dialect (no ON CONFLICT).
        self.conn.execute(s.settings.delete().where(s.settings.c.key == key))
        self.conn.execute(sa_insert(s.settings).values(key=key, value=value))
        memo = batch_memo(self.conn)
        if memo is not None:
            memo.pop(("setting", key), None)
