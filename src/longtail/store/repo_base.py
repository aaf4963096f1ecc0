"""What every repository shares: the base class holding the caller's connection, the
time stamp, and the settings repository (read by the others)."""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import re
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


_DIRECT_INDEX = itertools.count()


class Direct:
    """A Core statement compiled once per dialect and run straight on the DBAPI cursor
    of the caller's connection, inside its transaction: for the service's per-request
    statements (a lease, an answer), where SQLAlchemy's work per execution (cache key,
    parameter and result processing) cost several times the statement itself, on
    SQLite as on PostgreSQL. Only for statements whose parameters and columns need no
    type conversion (integers, floats, strings) and no IN list (expanding, even of
    literals). On PostgreSQL, inside an open transaction, it goes one step further
    down: a statement prepared once per connection, run by name on libpq (`_pq_run`),
    psycopg's cursor costing more than the rest of a lease. A database
    error is raised as SQLAlchemy's would be (`DBAPIError` with `.orig`), so callers
    (a deadlock retried, a constraint named) see no difference; SQLAlchemy's cursor
    events do not see these statements."""

    def __init__(self, stmt: Any):
        self.stmt = stmt
        self.index = next(_DIRECT_INDEX)  # names its prepared statement on PostgreSQL
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
        try:
            if conn.dialect.name == "postgresql":
                got = _pq_run(self, conn, sql, args)
                if got is not None:
                    return got
            if order is not None:
                args = tuple(args[k] for k in order)
            cur = _cursor(conn)
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
_PQ = "longtail.direct_pq"
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


class _Rows:
    """The rows of a statement run on libpq, read as from a DBAPI cursor."""

    __slots__ = ("_i", "rowcount", "rows")

    def __init__(self, rows: list[tuple], rowcount: int):
        self.rows, self.rowcount, self._i = rows, rowcount, 0

    def fetchone(self) -> tuple | None:
        if self._i >= len(self.rows):
            return None
        self._i += 1
        return self.rows[self._i - 1]

    def fetchall(self) -> list[tuple]:
        out, self._i = self.rows[self._i :], len(self.rows)
        return out


def _text(v: Any, encoding: str) -> bytes | None:
    """A parameter in PostgreSQL's text format (the statement's casts give its type)."""
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode(encoding)
    if isinstance(v, bool):
        return b"t" if v else b"f"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        if math.isfinite(v):
            return repr(v).encode()  # the shortest text that reads back as the same float
        return b"NaN" if math.isnan(v) else b"Infinity" if v > 0 else b"-Infinity"
    raise TypeError(f"a direct statement takes int, float, str or None, not {type(v).__name__}")


class _Prepared:
    """One connection's direct statements prepared on the server: Direct index -> (name,
    parameter names). `stale`: psycopg may have deallocated them since (see
    `forget_prepared`): the server is asked which are still there before the next use."""

    def __init__(self, driver: Any):
        from psycopg.adapt import Transformer

        self.pgconn = driver.pgconn
        self.tx = Transformer.from_context(driver)
        self.encoding = driver.info.encoding
        self.names: dict[int, tuple[bytes, tuple[str, ...]]] = {}
        self.stale = False

    def check(self) -> None:
        from psycopg import pq

        res = self.pgconn.exec_(b"SELECT name FROM pg_prepared_statements "
                                b"WHERE name LIKE 'lt\\_direct\\_%'")
        if res.status != pq.ExecStatus.TUPLES_OK:
            return  # the next statement says what went wrong
        there = {res.get_value(i, 0) for i in range(res.ntuples)}
        self.names = {k: v for k, v in self.names.items() if v[0] in there}
        self.stale = False


def _pq_run(direct: Direct, conn: Connection, sql: str, args: dict[str, Any]) -> _Rows | None:
    """PostgreSQL: `direct` as a statement prepared once per connection and run by name
    on libpq (the GIL released while it waits), inside the transaction psycopg began:
    psycopg's cursor spent more of the interpreter per statement than everything else
    a lease or an answer does. None when no transaction is open yet (psycopg's own
    path then begins it, with the connection's isolation level)."""
    from psycopg import errors as pg_errors
    from psycopg import pq

    driver = conn.connection.driver_connection
    pgconn = driver.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.INTRANS:
        return None
    info = conn.connection.info
    state = info.get(_PQ)
    if state is None or state.pgconn is not pgconn:
        state = info[_PQ] = _Prepared(driver)
    if state.stale:
        state.check()
    got = state.names.get(direct.index)
    if got is None:
        names: list[str] = []

        def number(m: Any) -> str:  # %(name)s -> $n, %% -> %
            if m.group(1) is None:
                return "%"
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        name = f"lt_direct_{direct.index}".encode()
        res = pgconn.prepare(name, _PYFORMAT.sub(number, sql).encode(state.encoding))
        if res.status != pq.ExecStatus.COMMAND_OK:
            state.stale = True
            raise pg_errors.error_from_result(res, encoding=state.encoding)
        got = state.names[direct.index] = (name, tuple(names))
    name, names = got
    res = pgconn.exec_prepared(name, [_text(args[k], state.encoding) for k in names])
    if res.status == pq.ExecStatus.TUPLES_OK:
        state.tx.set_pgresult(res)
        return _Rows(state.tx.load_rows(0, res.ntuples, tuple), res.ntuples)
    if res.status == pq.ExecStatus.COMMAND_OK:
        return _Rows([], res.command_tuples or 0)
    error = pg_errors.error_from_result(res, encoding=state.encoding)
    if error.sqlstate == "26000":  # deallocated by something we did not see
        state.stale = True
    raise error


def forget_prepared(engine: Any) -> None:
    """PostgreSQL: psycopg deallocates every prepared statement of a connection (ours
    too) when it rolls back a transaction or to a savepoint, if it had prepared some of
    its own: after one, the connection's direct statements are looked up again."""
    from sqlalchemy import event

    def forget(conn: Connection, *_args: Any) -> None:
        try:
            state = conn.connection.info.get(_PQ)
        except Exception:  # noqa: BLE001 - a connection already closed keeps nothing
            return
        if state is not None:
            state.stale = True

    def reset(dbapi_conn: Any, record: Any, _reset_state: Any) -> None:
        # The pool's rollback on check-in, of a transaction still open.
        state = record.info.get(_PQ)
        if state is not None and dbapi_conn.pgconn.transaction_status != 0:  # not IDLE
            state.stale = True

    event.listen(engine, "rollback", forget)
    event.listen(engine, "rollback_savepoint", forget)
    event.listen(engine, "reset", reset)


class Repo:
    """A repository over ONE connection that the caller owns: it never opens, commits or
    rolls back a transaction itself."""

    def __init__(self, conn: Connection):
        self.conn = conn


# Built once: the service reads a setting on every label request, and building a Core
# expression costs several times what running it on SQLite does.
_SETTING = select(s.settings.c.value).where(s.settings.c.key == bindparam("k"))
# ...and run straight on the driver (the value is JSON text, read as the column type does).
_SETTING_DIRECT = Direct(_SETTING)
_VALUE = s.settings.c.value.type.process_result_value


class SettingsRepo(Repo):
    """Project settings: JSON values by key."""

    def get(self, key: str, default: Any = None) -> Any:
        memo = batch_memo(self.conn)
        if memo is not None and ("setting", key) in memo:
            value = memo[("setting", key)]
        else:
            value = _VALUE(_SETTING_DIRECT.scalar(self.conn, {"k": key}), None)
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
