"""Repositories of the annotation service: users (hashed bearer tokens) and task leases.

Like every repository these wrap the caller's connection and never commit. The lease
queries are written so that a claim is safe under concurrency on both dialects: on
SQLite the use case's first statement is a write (so the transaction holds the one
writer lock from its start); on PostgreSQL the next open slot is read `FOR UPDATE
SKIP LOCKED`, and every state change is a conditional UPDATE whose row count says
whether it won.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select
from sqlalchemy import insert as sa_insert

from longtail.store import schema as s
from longtail.store.repos import INSERT_ROWS, now


class UsersRepo:
    """Service users: name, role, and the SHA-256 of their token (never the token)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, name: str, role: str, token_sha256: str) -> int:
        res = self.conn.execute(sa_insert(s.users).values(
            name=name, role=role, token_sha256=token_sha256, created_at=now()))
        return int(res.inserted_primary_key[0])

    def by_name(self, name: str) -> dict | None:
        row = self.conn.execute(select(s.users).where(s.users.c.name == name)).mappings().first()
        return dict(row) if row else None

    def by_token_hash(self, token_sha256: str) -> dict | None:
        q = select(s.users.c.id, s.users.c.name, s.users.c.role).where(
            s.users.c.token_sha256 == token_sha256)
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def list(self) -> list[dict]:
        q = select(s.users.c.id, s.users.c.name, s.users.c.role, s.users.c.created_at).order_by(
            s.users.c.id)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def set_token(self, name: str, token_sha256: str) -> bool:
        res = self.conn.execute(s.users.update().where(s.users.c.name == name).values(
            token_sha256=token_sha256))
        return res.rowcount == 1

    def remove(self, user_id: int) -> None:
        self.conn.execute(s.task_leases.update().where(and_(
            s.task_leases.c.user_id == user_id, s.task_leases.c.state == "leased")).values(
            state="open", user_id=None, leased_at=None, expires_at=None))
        # Done slots keep their user id out of the foreign key's way: the label events
        # name the annotator, which is what the history needs.
        self.conn.execute(s.task_leases.update().where(s.task_leases.c.user_id == user_id)
                          .values(user_id=None))
        self.conn.execute(s.users.delete().where(s.users.c.id == user_id))

    def lock(self, user_id: int) -> None:
        """PostgreSQL: hold the user's row until the transaction ends, so two requests of
        one user claim one after the other (SQLite: a no-op, one writer anyway)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(s.users.c.id).where(s.users.c.id == user_id).with_for_update())

    def activity(self) -> list[dict]:
        """Per annotator name: events by kind, seconds spent (sum, over events that gave
        it), and the time of the latest event. From the label history, so labels given
        outside the service (imports) count too."""
        a = s.annotations
        q = (select(a.c.annotator, a.c.kind, func.count(), func.sum(a.c.seconds),
                    func.count(a.c.seconds), func.max(a.c.created_at))
             .where(a.c.annotator.is_not(None)).group_by(a.c.annotator, a.c.kind)
             .order_by(a.c.annotator, a.c.kind))
        out: dict[str, dict] = {}
        for name, kind, n, secs, n_secs, last in self.conn.execute(q):
            d = out.setdefault(name, {"annotator": name, "label": 0, "skip": 0, "unsure": 0,
                                      "seconds": 0.0, "timed": 0, "last": None})
            d[kind] = int(n)
            d["seconds"] += float(secs or 0.0)
            d["timed"] += int(n_secs)
            d["last"] = max(filter(None, (d["last"], last)), default=None)
        return list(out.values())


class LeasesRepo:
    """Task slots of open rounds: the queue, who holds what, and what is done."""

    def __init__(self, conn: Connection):
        self.conn = conn

    @property
    def _pg(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    # -- the queue ---------------------------------------------------------------------

    def has_round(self, round_id: int) -> bool:
        q = select(s.task_leases.c.id).where(s.task_leases.c.round_id == round_id).limit(1)
        return self.conn.execute(q).first() is not None

    def lock_round(self, round_id: int) -> None:
        """PostgreSQL: hold the round's row (two first claims on a new round then make
        its slots once); SQLite: a no-op."""
        if self._pg:
            self.conn.execute(select(s.rounds.c.id).where(s.rounds.c.id == round_id).with_for_update())

    def add_slots(self, round_id: int, items: Sequence[tuple[int, int]], overlap: int,
                  done: dict[int, int]) -> int:
        """The round's slots: `overlap` per (row, position) item, the first `done[row]`
        of them already done (answers given before the service saw the round)."""
        rows = [{"round_id": round_id, "row": int(r), "slot": k, "position": int(p),
                 "state": "done" if k < done.get(int(r), 0) else "open", "user_id": None,
                 "leased_at": None, "expires_at": None, "done_at": None}
                for r, p in items for k in range(overlap)]
        for i in range(0, len(rows), INSERT_ROWS):
            self.conn.execute(sa_insert(s.task_leases), rows[i : i + INSERT_ROWS])
        return len(rows)

    def answers_by_row(self, rows: Iterable[int]) -> dict[int, int]:
        """row -> number of label and unsure events (answers; a skip is none)."""
        a = s.annotations
        out: dict[int, int] = {}
        rows = [int(r) for r in rows]
        for i in range(0, len(rows), 20_000):
            q = (select(a.c.row, func.count()).where(a.c.row.in_(rows[i : i + 20_000]))
                 .where(a.c.kind.in_(("label", "unsure"))).group_by(a.c.row))
            out.update({int(r): int(n) for r, n in self.conn.execute(q)})
        return out

    def reclaim_expired(self, at: float) -> int:
        """Expired leases back to the queue; how many."""
        t = s.task_leases
        res = self.conn.execute(t.update().where(and_(t.c.state == "leased", t.c.expires_at <= at))
                                .values(state="open", user_id=None, leased_at=None, expires_at=None))
        return int(res.rowcount or 0)

    def held_by(self, user_id: int, at: float) -> dict | None:
        """The user's lease that is still valid at `at`, if any."""
        t = s.task_leases
        q = (select(t).where(and_(t.c.user_id == user_id, t.c.state == "leased",
                                  t.c.expires_at > at)).order_by(t.c.id).limit(1))
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def next_open(self, round_id: int, annotator: str) -> dict | None:
        """The round's first open slot (by position, then slot) of a row `annotator`
        has no event on: nobody answers a sample twice, and a sample someone skipped
        goes to the others. (A user holds one lease at a time, so an open slot of a row
        they hold cannot come up.)"""
        t, a = s.task_leases, s.annotations
        q = (select(t).where(and_(t.c.state == "open", t.c.round_id == round_id))
             .where(~exists().where(and_(a.c.row == t.c.row, a.c.annotator == annotator)))
             .order_by(t.c.position, t.c.slot).limit(1))
        if self._pg:
            q = q.with_for_update(of=t, skip_locked=True)
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def claim(self, slot_id: int, user_id: int, at: float, ttl: float) -> bool:
        """Lease an open slot to the user; False when someone took it first."""
        t = s.task_leases
        res = self.conn.execute(t.update().where(and_(t.c.id == slot_id, t.c.state == "open"))
                                .values(state="leased", user_id=user_id, leased_at=at,
                                        expires_at=at + ttl))
        return res.rowcount == 1

    # -- answers -----------------------------------------------------------------------

    def active(self, row: int, user_id: int, at: float) -> dict | None:
        """The user's valid lease on `row` (locked on PostgreSQL), if any."""
        t = s.task_leases
        q = select(t).where(and_(t.c.row == row, t.c.user_id == user_id, t.c.state == "leased",
                                 t.c.expires_at > at)).limit(1)
        if self._pg:
            q = q.with_for_update()
        row_ = self.conn.execute(q).mappings().first()
        return dict(row_) if row_ else None

    def slots_of_row(self, row: int) -> list[dict]:
        t = s.task_leases
        q = select(t).where(t.c.row == row).order_by(t.c.round_id.desc(), t.c.slot)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def finish(self, slot_id: int, user_id: int, at: float) -> bool:
        """Mark the user's valid lease done; False when it is not theirs or expired."""
        t = s.task_leases
        res = self.conn.execute(t.update().where(and_(
            t.c.id == slot_id, t.c.user_id == user_id, t.c.state == "leased", t.c.expires_at > at))
            .values(state="done", done_at=at))
        return res.rowcount == 1

    def reopen(self, slot_id: int, user_id: int) -> bool:
        """Give the user's lease back to the queue (release, skip); False when not theirs."""
        t = s.task_leases
        res = self.conn.execute(t.update().where(and_(
            t.c.id == slot_id, t.c.user_id == user_id, t.c.state == "leased"))
            .values(state="open", user_id=None, leased_at=None, expires_at=None))
        return res.rowcount == 1

    def remaining(self, round_id: int) -> int:
        """Slots of the round not done yet (open or leased)."""
        t = s.task_leases
        q = select(func.count()).select_from(t).where(and_(t.c.round_id == round_id,
                                                           t.c.state.in_(("open", "leased"))))
        return int(self.conn.execute(q).scalar())

    def close_round(self, round_id: int) -> bool:
        """Close the round if it is still open (every slot of it is done)."""
        res = self.conn.execute(s.rounds.update().where(and_(
            s.rounds.c.id == round_id, s.rounds.c.status == "open")).values(status="closed"))
        return res.rowcount == 1

    # -- reading -----------------------------------------------------------------------

    def counts(self, round_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        """round -> {state: slots} (every round with slots, or those given)."""
        t = s.task_leases
        q = select(t.c.round_id, t.c.state, func.count()).group_by(t.c.round_id, t.c.state)
        if round_ids is not None:
            q = q.where(t.c.round_id.in_([int(r) for r in round_ids]))
        out: dict[int, dict[str, int]] = {}
        for rid, state, n in self.conn.execute(q):
            out.setdefault(int(rid), {k: 0 for k in s.LEASE_STATES})[state] = int(n)
        return out

    def done_by_user(self, user_id: int) -> int:
        t = s.task_leases
        q = select(func.count()).select_from(t).where(and_(t.c.user_id == user_id, t.c.state == "done"))
        return int(self.conn.execute(q).scalar())

    def of_round(self, round_id: int, offset: int, limit: int) -> list[dict[str, Any]]:
        """The round's tasks by position, a page at a time: row, position, and slots by
        state with the leasing users' names."""
        t = s.task_leases
        page = (select(t.c.row, t.c.position).where(t.c.round_id == round_id)
                .group_by(t.c.row, t.c.position).order_by(t.c.position).offset(offset).limit(limit))
        items = [(int(r), int(p)) for r, p in self.conn.execute(page)]
        if not items:
            return []
        q = (select(t.c.row, t.c.state, s.users.c.name).select_from(
            t.outerjoin(s.users, s.users.c.id == t.c.user_id))
            .where(and_(t.c.round_id == round_id, t.c.row.in_([r for r, _ in items]))))
        by_row: dict[int, dict[str, Any]] = {r: {"row": r, "position": p, "open": 0, "leased": 0,
                                                 "done": 0, "holders": []} for r, p in items}
        for r, state, name in self.conn.execute(q):
            d = by_row[int(r)]
            d[state] += 1
            if state == "leased" and name:
                d["holders"].append(name)
        return [by_row[r] for r, _ in items]
