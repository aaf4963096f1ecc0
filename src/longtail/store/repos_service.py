"""Repositories of the annotation service: users (hashed bearer tokens) and task leases.

Like every repository these wrap the caller's connection and never commit. The lease
queries are written so that a claim is safe under concurrency on both dialects: on
SQLite the use case's first statement is a write (so the transaction holds the one
writer lock from its start); on PostgreSQL the next open slot is read `FOR UPDATE
SKIP LOCKED`, and every state change is a conditional UPDATE whose row count says
whether it won.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, false, func, select
from sqlalchemy import insert as sa_insert

from longtail.store import schema as s
from longtail.store.repo_base import Direct, batch_memo, now
from longtail.store.repos import INSERT_ROWS

_t, _a, _u = s.task_leases, s.annotations, s.users
# The hot statements (two requests per submission), built once: building a Core
# expression costs more than running it.
_BY_TOKEN = select(_u.c.id, _u.c.name, _u.c.role).where(_u.c.token_sha256 == bindparam("h"))
_RECLAIM = (_t.update().where(and_(_t.c.state == "leased", _t.c.expires_at <= bindparam("at")))
            .values(state="open", user_id=None, leased_at=None, expires_at=None))
_HELD = (select(_t).where(and_(_t.c.user_id == bindparam("u"), _t.c.state == "leased",
                               _t.c.expires_at > bindparam("at"))).order_by(_t.c.id).limit(1))
_NEXT = (select(_t).where(and_(_t.c.state == "open", _t.c.round_id == bindparam("r")))
         .where(~exists().where(and_(_a.c.row == _t.c.row, _a.c.annotator == bindparam("name"))))
         .order_by(_t.c.position, _t.c.slot).limit(1))
_NEXT_PG = _NEXT.with_for_update(of=_t, skip_locked=True)
# The same, among the rows of one work package (issue 29: a package is leased as a unit).
_NEXT_AMONG = _NEXT.where(_t.c.row.in_(bindparam("rows", expanding=True)))
_NEXT_AMONG_PG = _NEXT_AMONG.with_for_update(of=_t, skip_locked=True)
_HOLDERS = (select(_t.c.row, _t.c.user_id).where(and_(_t.c.round_id == bindparam("r"),
                                                      _t.c.user_id.is_not(None))).distinct())
# Lease the next slot in one statement: the first open slot of the round (by position,
# then slot) of a row the annotator has no event on, claimed and returned. The inner
# select reads an alias, so it does not correlate with the updated table.
_q = _t.alias("nxt")
_NEXT_ID = (select(_q.c.id).where(and_(_q.c.state == "open", _q.c.round_id == bindparam("r")))
            .where(~exists().where(and_(_a.c.row == _q.c.row, _a.c.annotator == bindparam("name"))))
            .order_by(_q.c.position, _q.c.slot).limit(1))
# PostgreSQL: the claimed slot comes back with where its sample's text is
# (`SamplesRepo.content`), saving the lease a round trip. (Not on SQLite, whose
# RETURNING did not correlate the subquery with the updated row.)
_SAMPLE = [select(c).where(s.samples.c.row == _t.c.row).scalar_subquery().label(c.name)
           for c in (s.samples.c.external_id, s.samples.c.batch_id, s.samples.c.pos)]
_CLAIM_NEXT = (_t.update().where(and_(_t.c.id == _NEXT_ID.scalar_subquery(), _t.c.state == "open"))
               .values(state="leased", user_id=bindparam("u"), leased_at=bindparam("at"),
                       expires_at=bindparam("exp"))
               .returning(_t.c.id, _t.c.round_id, _t.c.row, _t.c.slot, _t.c.position,
                          _t.c.state, _t.c.user_id, _t.c.expires_at))
_CLAIM_NEXT_PG = (_t.update().where(and_(_t.c.id == _NEXT_ID.with_for_update(
    of=_q, skip_locked=True).scalar_subquery(), _t.c.state == "open"))
                  .values(state="leased", user_id=bindparam("u"), leased_at=bindparam("at"),
                          expires_at=bindparam("exp"))
                  .returning(_t.c.id, _t.c.round_id, _t.c.row, _t.c.slot, _t.c.position,
                             _t.c.state, _t.c.user_id, _t.c.expires_at, *_SAMPLE))
_NO_WRITE = _t.update().where(false()).values(state=_t.c.state)
_OPEN_ROUNDS = select(s.rounds.c.id).where(s.rounds.c.status == "open").order_by(s.rounds.c.id)
# Rounds known to have their slots, per engine (one catalog): slots are never removed,
# so once seen committed they stay; this saves a probe per lease.
_with_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_reclaimed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> last `at`
_CLAIM = (_t.update().where(and_(_t.c.id == bindparam("sid"), _t.c.state == "open"))
          .values(state="leased", user_id=bindparam("u"), leased_at=bindparam("at"),
                  expires_at=bindparam("exp")))
_ACTIVE = select(_t).where(and_(_t.c.row == bindparam("row"), _t.c.user_id == bindparam("u"),
                                _t.c.state == "leased", _t.c.expires_at > bindparam("at"))).limit(1)
_ACTIVE_PG = _ACTIVE.with_for_update()
_REOPEN = (_t.update().where(and_(_t.c.id == bindparam("sid"), _t.c.user_id == bindparam("u"),
                                  _t.c.state == "leased"))
           .values(state="open", user_id=None, leased_at=None, expires_at=None))
_OPEN_LEFT = (select(_t.c.id).where(and_(_t.c.round_id == bindparam("r"), _t.c.state == "open"))
              .limit(1))
_LEASED_LEFT = (select(_t.c.id).where(and_(_t.c.round_id == bindparam("r"),
                                           _t.c.state == "leased")).limit(1))
_LOCK_ROUND = (select(s.rounds.c.id).where(s.rounds.c.id == bindparam("r"))
               .with_for_update(key_share=True))
# A lease request's first read, in one statement: whether the user still exists (their
# row held on PostgreSQL) and the lease they hold, if any.
_ME = (select(_u.c.id.label("user_row"), *_t.c, s.samples.c.external_id, s.samples.c.batch_id,
               s.samples.c.pos)
       .select_from(_u.outerjoin(_t, and_(_t.c.user_id == _u.c.id, _t.c.state == "leased",
                                          _t.c.expires_at > bindparam("at")))
                    .outerjoin(s.samples, s.samples.c.row == _t.c.row))
       .where(_u.c.id == bindparam("u")).order_by(_t.c.id).limit(1))
_ME_PG = _ME.with_for_update(of=_u, key_share=True)
# An answer's lease change, in one statement: the user's valid lease on the row, done
# (a label, unsure) or back in the queue (a skip); its id and round, or nothing.
_ANSWER_WHERE = and_(_t.c.row == bindparam("row"), _t.c.user_id == bindparam("u"),
                     _t.c.state == "leased", _t.c.expires_at > bindparam("at"))
_FINISH_ROW = (_t.update().where(_ANSWER_WHERE).values(state="done", done_at=bindparam("at"))
               .returning(_t.c.id, _t.c.round_id))
_REOPEN_ROW = (_t.update().where(_ANSWER_WHERE)
               .values(state="open", user_id=None, leased_at=None, expires_at=None)
               .returning(_t.c.id, _t.c.round_id))
_NO_AUTOCHECKPOINT = "longtail.no_autocheckpoint"
_HAS_ROUND = select(_t.c.id).where(_t.c.round_id == bindparam("r")).limit(1)
# The statements of every lease and answer run straight on the driver (`Direct`).
(_HELD, _CLAIM_NEXT, _CLAIM_NEXT_PG, _NO_WRITE, _OPEN_ROUNDS, _ACTIVE, _ACTIVE_PG, _REOPEN,
 _LOCK_ROUND, _HAS_ROUND, _ME, _ME_PG, _FINISH_ROW, _REOPEN_ROW, _OPEN_LEFT,
 _LEASED_LEFT) = (Direct(q) for q in (
    _HELD, _CLAIM_NEXT, _CLAIM_NEXT_PG, _NO_WRITE, _OPEN_ROUNDS, _ACTIVE, _ACTIVE_PG, _REOPEN,
    _LOCK_ROUND, _HAS_ROUND, _ME, _ME_PG, _FINISH_ROW, _REOPEN_ROW, _OPEN_LEFT, _LEASED_LEFT))

def _pieces(items: Sequence[int] | None, size: int = 20_000) -> Iterable[list[int] | None]:
    """`items` in pieces of at most `size` (an IN list stays small); None: one piece, all."""
    if items is None:
        yield None
        return
    items = [int(x) for x in items]
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
        row = self.conn.execute(_BY_TOKEN, {"h": token_sha256}).mappings().first()
        return dict(row) if row else None

    def token_table(self) -> dict[str, tuple[int, str, str]]:
        """token hash -> (id, name, role) of every user: one read for a whole cache."""
        q = select(_u.c.token_sha256, _u.c.id, _u.c.name, _u.c.role)
        return {h: (int(i), n, r) for h, i, n, r in self.conn.execute(q)}

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
        self._made: set[int] = set()  # rounds whose slots this transaction made

    @property
    def _pg(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    # -- the queue ---------------------------------------------------------------------

    def open_rounds(self) -> list[int]:
        """Ids of the open rounds, oldest first (a statement built once; once per batch)."""
        memo = batch_memo(self.conn)
        if memo is not None and "open_rounds" in memo:
            return list(memo["open_rounds"])
        out = [int(r) for (r,) in _OPEN_ROUNDS.all(self.conn)]
        if memo is not None:
            memo["open_rounds"] = out
        return list(out)

    def has_round(self, round_id: int) -> bool:
        known = _with_slots.setdefault(self.conn.engine, set())
        if round_id in known:
            return True
        found = _HAS_ROUND.first(self.conn, {"r": round_id}) is not None
        if found and round_id not in self._made:
            # Committed by someone (slots we made ourselves may still roll back).
            known.add(round_id)
        return found

    def lock_round(self, round_id: int) -> None:
        """PostgreSQL: hold the round's row (two first claims on a new round then make
        its slots once; two last answers then see each other); SQLite: a no-op. `FOR
        NO KEY UPDATE`, which the KEY SHARE locks of rows referencing the round (label
        events, slots) do not block: `FOR UPDATE` would deadlock against them."""
        if not self._pg:
            return
        memo = batch_memo(self.conn)
        held = set() if memo is None else memo.setdefault("locked_rounds", set())
        if round_id not in held:  # held until the transaction ends: once is enough
            _LOCK_ROUND.run(self.conn, {"r": round_id})
            held.add(round_id)

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
        self._made.add(int(round_id))
        return len(rows)

    def answers_by_row(self, rows: Iterable[int], after: int = 0) -> dict[int, int]:
        """row -> number of label and unsure events (answers; a skip is none) with an
        id above `after` (a relabel item counts only answers since its round)."""
        a = s.annotations
        out: dict[int, int] = {}
        rows = [int(r) for r in rows]
        for i in range(0, len(rows), 20_000):
            q = (select(a.c.row, func.count()).where(a.c.row.in_(rows[i : i + 20_000]))
                 .where(a.c.kind.in_(("label", "unsure")), a.c.id > after).group_by(a.c.row))
            out.update({int(r): int(n) for r, n in self.conn.execute(q)})
        return out

    def begin_write(self) -> None:
        """SQLite: take the writer lock now, with a write that changes nothing (a
        transaction that reads first and writes later could find the catalog changed
        by another process and fail); PostgreSQL: a no-op (row locks)."""
        if not self._pg:
            _NO_WRITE.run(self.conn)

    def defer_checkpoints(self) -> None:
        """SQLite: this connection's commits never checkpoint the write-ahead log (by
        default the commit that takes it past 1,000 pages copies them into the database
        and syncs it, a pause for whoever waits on that commit); whoever calls this
        checkpoints with `Store.checkpoint_wal` instead. Set once per connection (the
        pool keeps it); a no-op on PostgreSQL."""
        if self._pg:
            return
        info = self.conn.connection.info
        if not info.get(_NO_AUTOCHECKPOINT):
            self.conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            info[_NO_AUTOCHECKPOINT] = True

    def reclaim_expired(self, at: float, every: float = 0.0) -> int:
        """Expired leases back to the queue; how many. With `every`, at most once per
        `every` seconds of `at` in this process (the service's leases: a lease comes
        back at most that much after its TTL, and a lease request saves an UPDATE)."""
        last = _reclaimed.get(self.conn.engine)
        if every > 0 and last is not None and 0 <= at - last < every:
            return 0
        _reclaimed[self.conn.engine] = at
        return int(self.conn.execute(_RECLAIM, {"at": at}).rowcount or 0)

    def user_and_lease(self, user_id: int, at: float) -> tuple[bool, dict | None]:
        """Whether the user still exists (on PostgreSQL their row held until the
        transaction ends, so two requests of one user claim one after the other) and
        the lease they hold valid at `at` (as `held_by`), in one statement."""
        got = (_ME_PG if self._pg else _ME).first(self.conn, {"u": user_id, "at": at})
        if got is None:
            return False, None
        return True, (None if got["id"] is None
                      else {k: v for k, v in got.items() if k != "user_row"})

    def answer_row(self, row: int, user_id: int, at: float, *, skip: bool) -> dict | None:
        """The user's lease on `row` valid at `at`, done (`skip`: back in the queue for
        someone else) in one conditional UPDATE: {id, round_id}, or None when they hold
        no valid lease on it (nothing changed)."""
        return (_REOPEN_ROW if skip else _FINISH_ROW).first(
            self.conn, {"row": row, "u": user_id, "at": at})

    def held_by(self, user_id: int, at: float) -> dict | None:
        """The user's lease that is still valid at `at`, if any."""
        return _HELD.first(self.conn, {"u": user_id, "at": at})

    def next_open(self, round_id: int, annotator: str) -> dict | None:
        """The round's first open slot (by position, then slot) of a row `annotator`
        has no event on: nobody answers a sample twice, and a sample someone skipped
        goes to the others. (A user holds one lease at a time, so an open slot of a row
        they hold cannot come up.)"""
        q = _NEXT_PG if self._pg else _NEXT
        row = self.conn.execute(q, {"r": round_id, "name": annotator}).mappings().first()
        return dict(row) if row else None

    def next_open_among(self, round_id: int, annotator: str, rows: Sequence[int]
                        ) -> dict | None:
        """`next_open` restricted to `rows` (a work package's)."""
        q = _NEXT_AMONG_PG if self._pg else _NEXT_AMONG
        row = self.conn.execute(q, {"r": round_id, "name": annotator,
                                    "rows": [int(r) for r in rows]}).mappings().first()
        return dict(row) if row else None

    def holders(self, round_id: int) -> dict[int, set[int]]:
        """row -> ids of the users holding or having answered a slot of it."""
        out: dict[int, set[int]] = {}
        for row, user_id in self.conn.execute(_HOLDERS, {"r": round_id}):
            out.setdefault(int(row), set()).add(int(user_id))
        return out

    def claim_next(self, round_id: int, user_id: int, annotator: str, at: float,
                   ttl: float) -> dict | None:
        """Lease the round's next open slot for the user (as `next_open` picks it) in one
        UPDATE ... RETURNING; the slot, or None when none is left for them. On
        PostgreSQL the pick skips slots other transactions hold."""
        q = _CLAIM_NEXT_PG if self._pg else _CLAIM_NEXT
        return q.first(self.conn, {"r": round_id, "name": annotator, "u": user_id, "at": at,
                                   "exp": at + ttl})

    def claim(self, slot_id: int, user_id: int, at: float, ttl: float) -> bool:
        """Lease an open slot to the user; False when someone took it first."""
        res = self.conn.execute(_CLAIM, {"sid": slot_id, "u": user_id, "at": at, "exp": at + ttl})
        return res.rowcount == 1

    # -- answers -----------------------------------------------------------------------

    def active(self, row: int, user_id: int, at: float) -> dict | None:
        """The user's valid lease on `row` (locked on PostgreSQL), if any."""
        q = _ACTIVE_PG if self._pg else _ACTIVE
        return q.first(self.conn, {"row": row, "u": user_id, "at": at})

    def slots_of_row(self, row: int) -> list[dict]:
        t = s.task_leases
        q = select(t).where(t.c.row == row).order_by(t.c.round_id.desc(), t.c.slot)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def answered(self, row: int, user_id: int) -> dict | None:
        """The user's latest done slot of `row`, with its round's status (`round_status`);
        locked on PostgreSQL."""
        q = (select(_t, s.rounds.c.status.label("round_status"))
             .join(s.rounds, s.rounds.c.id == _t.c.round_id)
             .where(and_(_t.c.row == row, _t.c.user_id == user_id, _t.c.state == "done"))
             .order_by(_t.c.done_at.desc(), _t.c.id.desc()).limit(1))
        if self._pg:
            q = q.with_for_update(of=_t)
        got = self.conn.execute(q).mappings().first()
        return dict(got) if got else None

    def unfinish(self, slot_id: int, user_id: int) -> bool:
        """A done slot back to leased by the same user, until its lease's own expiry (an
        answer withdrawn); False when it is not their done slot."""
        res = self.conn.execute(_t.update().where(and_(
            _t.c.id == slot_id, _t.c.user_id == user_id, _t.c.state == "done"))
            .values(state="leased", done_at=None))
        return res.rowcount == 1

    def reopen(self, slot_id: int, user_id: int) -> bool:
        """Give the user's lease back to the queue (release, skip); False when not theirs."""
        return _REOPEN.rowcount(self.conn, {"sid": slot_id, "u": user_id}) == 1

    def any_left(self, round_id: int) -> bool:
        """Whether a slot of the round is not done yet (open or leased): one index probe,
        where counting them would read every open slot."""
        # Two probes of the queue index, not one IN: a direct statement takes no IN list,
        # and while a round runs the first one answers.
        return (_OPEN_LEFT.first(self.conn, {"r": round_id}) is not None
                or _LEASED_LEFT.first(self.conn, {"r": round_id}) is not None)

    def any_open(self, round_id: int) -> bool:
        """Whether a slot of the round is still in the queue."""
        return _OPEN_LEFT.first(self.conn, {"r": round_id}) is not None

    def settle(self, round_ids: Sequence[int], after: dict[int, int] | None = None,
               rows: Sequence[int] | None = None) -> int:
        """Open slots whose answer is already in the label history (labels imported
        around the service: a file, a webhook) become done; how many. The slots of a
        task are a set, not a prefix: a skip or a release can reopen slot 0 while slot 1
        is done, so a task gets one more done slot for each of its answers (label or
        unsure events, never skips) beyond its done slots, whichever slots are open.
        For a relabel item only answers after event id `after[round]` (when its round
        was planned) count. `rows`: only those tasks (the rows a request touched)."""
        t, ri = s.task_leases, s.round_items
        done = 0
        for rid in (int(r) for r in round_ids):
            done_n: dict[int, int] = {}
            open_ids: dict[int, list[int]] = {}
            for piece in _pieces(rows):
                q = (select(t.c.id, t.c.row, t.c.state)
                     .where(t.c.round_id == rid, t.c.state.in_(("open", "done")))
                     .order_by(t.c.row, t.c.slot))
                if piece is not None:
                    q = q.where(t.c.row.in_(piece))
                for sid, row, state in self.conn.execute(q):
                    if state == "done":
                        done_n[int(row)] = done_n.get(int(row), 0) + 1
                    else:
                        open_ids.setdefault(int(row), []).append(int(sid))
            if not open_ids:
                continue
            relabel: set[int] = set()
            for piece in _pieces(list(open_ids)):
                relabel.update(int(r) for (r,) in self.conn.execute(
                    select(ri.c.row).where(ri.c.round_id == rid, ri.c.kind == "relabel",
                                           ri.c.row.in_(piece))))
            answers = self.answers_by_row([r for r in open_ids if r not in relabel])
            if relabel:
                answers.update(self.answers_by_row(relabel, after=int((after or {}).get(rid, 0))))
            ids = [sid for row, free in open_ids.items()
                   for sid in free[: max(0, answers.get(row, 0) - done_n.get(row, 0))]]
            for piece in _pieces(ids):
                res = self.conn.execute(t.update().where(and_(t.c.id.in_(piece),
                                                              t.c.state == "open"))
                                        .values(state="done", done_at=func.coalesce(t.c.done_at, 0.0)))
                done += int(res.rowcount or 0)
        return done

    def settle_and_close(self, after: dict[int, int],
                         rows: Sequence[int] | None = None) -> tuple[int, list[int]]:
        """`settle` every open round that has slots, then close those with no slot left
        (open or leased); (slots done, rounds closed). Rounds without slots are left to
        `RoundsRepo.close_done`."""
        open_ids = [r for r in self.open_rounds() if self.has_round(r)]
        done = self.settle(open_ids, after, rows) if open_ids else 0
        closed = []
        for round_id in open_ids:
            # PostgreSQL: the round's row lock first, so this and a last answer see each
            # other (see tasks.answer_in).
            self.lock_round(round_id)
            if not self.any_left(round_id) and self.close_round(round_id):
                closed.append(round_id)
        return done, closed

    def close_round(self, round_id: int) -> bool:
        """Close the round if it is still open (every slot of it is done)."""
        res = self.conn.execute(s.rounds.update().where(and_(
            s.rounds.c.id == round_id, s.rounds.c.status == "open")).values(status="closed"))
        memo = batch_memo(self.conn)
        if memo is not None:
            memo.pop("open_rounds", None)
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


class AuditRepo:
    """The audit log: admin actions, appended, never changed."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        self.conn.execute(sa_insert(s.audit_log).values(created_at=now(), actor=actor,
                                                        action=action, detail=detail))

    def latest(self, offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent entries first, a page at a time."""
        q = (select(s.audit_log).order_by(s.audit_log.c.id.desc()).offset(offset)
             .limit(limit))
        return [dict(r) for r in self.conn.execute(q).mappings()]
