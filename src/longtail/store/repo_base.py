"""What every repository shares: the base class holding the caller's connection, the
time stamp, and the settings repository (read by the others)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy import insert as sa_insert

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
