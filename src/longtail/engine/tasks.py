"""Task use cases of the annotation service: lease the next task, answer it (label,
skip, unsure), release it; progress, the open round's tasks, annotators.

A task is one item of an open round (addressed by its sample's row). It needs
`overlap` answers, one per *slot* (`task_leases`); the service makes a round's slots
the first time someone asks for work from it. The queue is the open rounds, most
recent first, each in its priority order; slot by slot, so with overlap > 1 a task in
progress is finished before the next one starts.

Each use case is one transaction. On SQLite its first statement is a write, so it
holds the single writer lock from the start (nobody can claim between our read and
our write), and within one process writers also queue on a lock instead of spinning
in SQLite's busy handler; on PostgreSQL the next slot is read `FOR UPDATE SKIP
LOCKED`. Every state change is a conditional UPDATE that reports whether it won.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

import numpy as np

from longtail.engine import labels as labels_uc
from longtail.engine import users as users_uc
from longtail.engine.records import Record
from longtail.engine.users import User
from longtail.errors import InputError, NotFoundError, ProjectError
from longtail.store import Store, UnitOfWork, lock_conflict

T = TypeVar("T")
KINDS = ("label", "skip", "unsure")
MAX_SECONDS = 24 * 3600.0


class TaskNotFound(NotFoundError):
    """No such task in an open round."""


class TaskConflict(ProjectError):
    """The task is not the caller's to answer now; `reason` says why, for a client to
    act on: "expired" (your lease ran out: lease again, your answer may still go in),
    "answered" (you already did), "taken" (someone else holds it), "not_leased"."""

    def __init__(self, message: str, reason: str = "not_leased"):
        super().__init__(message)
        self.reason = reason


# The service's unknown-label error is the label use case's (one validation path).
LabelNotAllowed = labels_uc.LabelNotAllowed


@dataclass(frozen=True)
class TaskPolicy:
    """How the service hands out work: lease time to live, and answers per task."""

    lease_ttl: float = 600.0
    overlap: int = 1

    def __post_init__(self) -> None:
        if not self.lease_ttl > 0:
            raise InputError(f"lease TTL must be > 0 seconds, got {self.lease_ttl}")
        if int(self.overlap) != self.overlap or self.overlap < 1:
            raise InputError(f"overlap must be a whole number >= 1, got {self.overlap}")


@dataclass
class Task:
    """A leased task as an annotator sees it. The item's kind (selected, control,
    eval) is left out on purpose: annotators label every kind blind."""

    id: int
    sample_id: str
    text: str | None
    meta: dict
    round_id: int
    position: int
    expires_at: float
    labels: list[str] | None = None

    def to_dict(self) -> dict:
        # Shallow: `asdict` deep-copies the metadata and the label set on every lease.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Answered:
    """What `answer` recorded."""

    task_id: int
    kind: str
    label: str | None
    round_id: int
    round_closed: bool = False


@dataclass
class Withdrawn:
    """What `withdraw` took back: the answer, the task held again to answer anew, and
    the task given back to make room for it (the next one the user had leased)."""

    task: Task
    kind: str
    label: str | None
    released: int | None = None


@dataclass
class Progress:
    """One user's work and what is left in the open rounds."""

    user: str
    answered: int
    holding: int | None
    open_rounds: list[int] = field(default_factory=list)
    remaining: int = 0


_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


@contextmanager
def exclusive(store: Store) -> Iterator[None]:
    """On SQLite, one writer at a time within this process (a queue, not SQLite's
    sleep-and-retry busy handler, which costs tail latency under load). Every writer of
    the service holds it: the group commit's batches and `GroupCommit.run_alone` /
    `run_locked` (imports, webhooks, planning)."""
    if store.dialect != "sqlite":
        yield
        return
    with _locks_guard:
        lock = _locks.setdefault(store, threading.Lock())
    with lock:
        yield


def _writer_busy(store: Store) -> bool:
    """Whether another thread of this process holds the SQLite writer lock now."""
    lock = _locks.get(store)
    return lock is not None and lock.locked()


def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def lease(store: Store, user: User, policy: TaskPolicy, *, now: float | None = None) -> Task | None:
    """The task `user` holds, else the next one for them from the open rounds (most
    recent round first, each in priority order), leased until now + TTL; None when
    nothing is left for them."""
    at = _now(now)
    with exclusive(store), store.unit_of_work() as uow:
        uow.leases.begin_write()  # a write first: SQLite's writer lock from here on
        return lease_in(uow, user, policy, at)


# Expired leases return to the queue at most this often (seconds of the lease clock):
# one UPDATE per second instead of one per lease request.
RECLAIM_EVERY = 1.0


def lease_in(uow: UnitOfWork, user: User, policy: TaskPolicy, at: float) -> Task | None:
    """`lease` inside the caller's unit of work."""
    uow.leases.reclaim_expired(at, every=RECLAIM_EVERY)
    exists, held = uow.leases.user_and_lease(user.id, at)
    if not exists:
        # Removed since its token was checked (the service trusts a checked token for a
        # few seconds): no slot is leased to a user who is gone.
        raise users_uc.UserRemoved(f"user {user.name!r} was removed: ask an admin for a "
                                   "new token")
    if held is None:
        for round_id in reversed(uow.leases.open_rounds()):
            _ensure_slots(uow, round_id, policy.overlap)
            package = _package_of(uow, round_id, user)
            if package is not None:  # the round is split into work packages
                held = _claim_among(uow, round_id, user, at, policy.lease_ttl, package)
                if held is not None:
                    break
                continue
            held = _claim_in(uow, round_id, user, at, policy.lease_ttl)
            if held is not None:
                break
    if held is None:
        return None
    return _task(uow, held)


def prepare(store: Store, policy: TaskPolicy) -> list[int]:
    """Make the task slots of every open round that has none yet (the first lease
    would), so that no lease request pays for a whole round; the rounds prepared."""
    made = []
    with exclusive(store), store.unit_of_work() as uow:
        uow.leases.begin_write()
        for round_id in uow.leases.open_rounds():
            if not uow.leases.has_round(round_id):
                _ensure_slots(uow, round_id, policy.overlap)
                made.append(round_id)
    return made


def _ensure_slots(uow: UnitOfWork, round_id: int, overlap: int) -> None:
    if uow.leases.has_round(round_id):
        return
    uow.leases.lock_round(round_id)
    if uow.leases.has_round(round_id):  # made by a claim we waited for
        return
    listed = uow.rounds.items(round_id)
    items = [(row, pos) for row, pos, _ in listed]
    done = uow.leases.answers_by_row([r for r, _, k in listed if k != "relabel"])
    relabel = [r for r, _, k in listed if k == "relabel"]
    if relabel:  # a second look: only answers given since the round was planned count
        since = uow.rounds.planned_after().get(int(round_id), 0)
        done.update(uow.leases.answers_by_row(relabel, after=since))
    uow.leases.add_slots(round_id, items, overlap, done)


def _claim_in(uow: UnitOfWork, round_id: int, user: User, at: float, ttl: float) -> dict | None:
    # One UPDATE ... RETURNING picks and claims the slot; on PostgreSQL the pick skips
    # slots other transactions hold, and a claim that still loses (the slot changed
    # under us) tries again.
    for _ in range(8):
        slot = uow.leases.claim_next(round_id, user.id, user.name, at, ttl)
        if slot is not None or not uow.leases.any_open(round_id):
            return slot
    return None


# engine -> round id -> its work packages (None: none), read once per round per process.
_packages_seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _package_of(uow: UnitOfWork, round_id: int, user: User) -> list[int] | None:
    """The rows of `user`'s work package in a round split into packages (`query
    --annotators/--pool`), None for a round without packages; [] when none is left for
    them. A package named after the user is theirs; otherwise a user keeps the package
    they started and takes the first one nobody has started: a package is leased as a
    unit, so two annotators never share one (unless its rows overlap another's)."""
    known = _packages_seen.setdefault(uow.conn.engine, {})
    if round_id not in known:  # a round's packages never change: read its log once
        rnd = uow.rounds.get(round_id)
        known[round_id] = ((rnd or {}).get("log") or {}).get("packages") or None
    packages = known[round_id]
    if not packages:
        return None
    by_name = {str(p["package"]): [int(r) for r in p["rows"]] for p in packages}
    if user.name in by_name:
        return by_name[user.name]
    holders = uow.leases.holders(round_id)
    named = {u["name"] for u in uow.users.list()} & set(by_name)
    for name, rows in by_name.items():  # the one they started
        if name not in named and any(user.id in holders.get(r, ()) for r in rows):
            return rows
    for name, rows in by_name.items():  # the first nobody started
        if name not in named and not any(holders.get(r) for r in rows):
            return rows
    return []


def _claim_among(uow: UnitOfWork, round_id: int, user: User, at: float, ttl: float,
                 rows: list[int]) -> dict | None:
    """Lease the next open slot among a package's rows (a conditional UPDATE that
    says whether it won; tried again when another claim took the slot first)."""
    if not rows:
        return None
    for _ in range(8):
        slot = uow.leases.next_open_among(round_id, user.name, rows)
        if slot is None:
            return None
        if uow.leases.claim(slot["id"], user.id, at, ttl):
            return {**slot, "state": "leased", "user_id": user.id, "leased_at": at,
                    "expires_at": at + ttl}
    return None


def _task(uow: UnitOfWork, slot: dict) -> Task:
    if slot.get("external_id") is not None:  # the claim or the held lease read it
        sample_id = slot["external_id"]
        text, meta = uow.samples.content(slot["batch_id"], slot["pos"])
    else:
        sample_id, text, meta = uow.samples.one(slot["row"])
    return Task(id=int(slot["row"]), sample_id=sample_id, text=text, meta=meta,
                round_id=int(slot["round_id"]), position=int(slot["position"]),
                expires_at=float(slot["expires_at"]), labels=uow.label_set.get())


def _check_answer(kind: str, label: str | None, seconds: float | None) -> None:
    """What only an API answer can get wrong (its kind is explicit, where a label file's
    blank cell means a skip); the label itself is checked by the label use case."""
    if kind not in KINDS:
        raise InputError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    if seconds is not None and not 0 <= seconds <= MAX_SECONDS:
        raise InputError(f"seconds must be between 0 and {MAX_SECONDS:.0f}, got {seconds}")
    if kind != "label" and label:
        raise InputError(f"a {kind} gives no label (got {label!r})")
    if kind == "label" and not (label or "").strip():
        raise InputError("a label answer needs a label")


def _conflict(uow: UnitOfWork, task_id: int, user: User, at: float) -> Exception:
    """Why `user` holds no valid lease on `task_id`: the error to raise."""
    slots = uow.leases.slots_of_row(task_id)
    open_rounds = set(uow.rounds.open_ids())
    slots = [x for x in slots if x["round_id"] in open_rounds]
    if not slots:
        return TaskNotFound(f"no task {task_id} in an open round")
    mine = [x for x in slots if x["user_id"] == user.id]
    if any(x["state"] == "leased" and x["expires_at"] <= at for x in mine):
        return TaskConflict(f"your lease on task {task_id} expired: lease a task again",
                            "expired")
    if any(x["state"] == "done" for x in mine):
        return TaskConflict(f"you already answered task {task_id}", "answered")
    if any(x["state"] == "leased" and x["expires_at"] > at for x in slots):
        return TaskConflict(f"task {task_id} is leased by another annotator", "taken")
    return TaskConflict(f"task {task_id} is not leased to you: lease it first (POST /tasks/lease)")


def answer(store: Store, user: User, task_id: int, kind: str = "label", label: str | None = None,
           seconds: float | None = None, *, now: float | None = None) -> Answered:
    """Answer the task `user` holds: a label (or unsure) completes their slot; a skip
    gives the slot back for someone else (never to them again). The event is appended
    to the label history with the user as annotator, in the same transaction as the
    lease change, so an acknowledged answer is never lost and never counted twice. The
    round closes when its last slot is done."""
    at = _now(now)
    with exclusive(store), store.unit_of_work() as uow:
        return answer_in(uow, user, task_id, kind, label, seconds, at)


def answer_in(uow: UnitOfWork, user: User, task_id: int, kind: str, label: str | None,
              seconds: float | None, at: float) -> Answered:
    """`answer` inside the caller's unit of work (which commits it, or rolls it back
    when this raises: nothing of a refused answer is written)."""
    _check_answer(kind, label, seconds)
    event = labels_uc.LabelEvent(id=str(task_id), label=label if kind == "label" else None,
                                 kind=kind, annotator=user.name, seconds=seconds)
    where = f"task {task_id}"
    labels_uc.check_events([event], where)
    # The lease changes first, in one conditional UPDATE (done; a skip gives it back):
    # if the event below is refused, the caller rolls both back.
    held = uow.leases.answer_row(task_id, user.id, at, skip=kind == "skip")
    if held is None:
        raise _conflict(uow, task_id, user, at)
    round_id = int(held["round_id"])
    # The label use case's own path (schema, kinds, "an agreeing answer of another
    # annotator is kept"), in this transaction, so the event and the lease change
    # commit together: an acknowledged answer is never lost nor counted twice. Its
    # rounds close here by their slots (overlap), not by "every item answered once".
    labels_uc.record_rows(uow, [(task_id, event)], source="human", where=where,
                          round_id=round_id, close_rounds=False)
    closed = False
    if kind != "skip":
        if uow.rounds_to_settle is not None:
            # In a batch: the batch looks once, at its end, for all its answers.
            uow.rounds_to_settle.add(round_id)
        else:
            closed = _settle_round(uow, round_id)
    return Answered(task_id=task_id, kind=kind, label=event.label, round_id=round_id,
                    round_closed=bool(closed))


def _settle_round(uow: UnitOfWork, round_id: int) -> bool:
    """Close the round if no slot of it is left; whether this closed it. On PostgreSQL
    the look passes the round's row lock first (a fresh snapshot once it holds it,
    kept until the commit), so whichever transaction looks last sees the others'
    answers committed and closes the round. (Looking for open slots first and locking
    only when none is left races: an answer can see a slot whose claim is not
    committed yet, and skip the lock.) SQLite: one writer, no lock needed. A batch
    looks at its end, so the round lock is the last lock it takes (in round order):
    concurrent batches never wait on each other for it in a cycle."""
    uow.leases.lock_round(round_id)
    return not uow.leases.any_left(round_id) and uow.leases.close_round(round_id)


def withdraw(store: Store, user: User, task_id: int, *, now: float | None = None) -> Withdrawn:
    """Take back `user`'s answer on `task_id` (undo) while the lease it was given under
    still runs: see `withdraw_in`."""
    at = _now(now)
    with exclusive(store), store.unit_of_work() as uow:
        uow.leases.begin_write()
        return withdraw_in(uow, user, task_id, at)


def withdraw_in(uow: UnitOfWork, user: User, task_id: int, at: float) -> Withdrawn:
    """Undo `user`'s last answer (a label or unsure) on `task_id`, in one transaction:
    the event is removed, the slot is theirs again until the lease's own expiry, the
    task they leased since goes back to the queue, and the audit log says what was
    withdrawn. Refused (TaskConflict, nothing changed) once the lease has run out, the
    round has closed, or a dataset version counted the answer (a round planned since):
    from then on the answer is history, to be corrected by a relabel round."""
    slot = uow.leases.answered(task_id, user.id)
    event = (uow.labels.latest_answer(task_id, user.name, int(slot["round_id"]))
             if slot is not None else None)
    if slot is None or event is None:
        raise TaskConflict(f"you have no answer on task {task_id} to undo", "not_answered")
    round_id = int(slot["round_id"])
    if slot["round_status"] != "open":
        raise TaskConflict(f"round {round_id} closed with your answer on task {task_id}: "
                           "it stays", "closed")
    if slot["expires_at"] is None or float(slot["expires_at"]) <= at:
        raise TaskConflict(f"your lease on task {task_id} has ended: its answer stays",
                           "expired")
    latest = uow.versions.latest()
    if latest is not None and int(latest["max_event_id"]) >= int(event["id"]):
        raise TaskConflict(f"a dataset version has counted your answer on task {task_id} "
                           "(a round was planned since): it stays", "recorded")
    released = None
    held = uow.leases.held_by(user.id, at)
    if held is not None and int(held["row"]) != task_id:
        uow.leases.reopen(held["id"], user.id)  # one lease at a time: the next one waits
        released = int(held["row"])
    if not uow.leases.unfinish(slot["id"], user.id):
        raise TaskConflict(f"you have no answer on task {task_id} to undo", "not_answered")
    uow.labels.withdraw(event["id"])
    label = event["label"] if event["kind"] == "label" else None
    uow.audit.add(user.name, "answer_withdrawn", {
        "task": task_id, "round": round_id, "kind": event["kind"], "label": label,
        "seconds": event["seconds"], "answered_at": event["created_at"],
        "released": released})
    task = _task(uow, {**slot, "state": "leased"})
    return Withdrawn(task=task, kind=event["kind"], label=label, released=released)


def release(store: Store, user: User, task_id: int, *, now: float | None = None) -> int:
    """Give back the task `user` holds, untouched; its round id."""
    at = _now(now)
    with exclusive(store), store.unit_of_work() as uow:
        return release_in(uow, user, task_id, at)


def release_in(uow: UnitOfWork, user: User, task_id: int, at: float) -> int:
    """`release` inside the caller's unit of work."""
    held = uow.leases.active(task_id, user.id, at)
    if held is None or not uow.leases.reopen(held["id"], user.id):
        raise _conflict(uow, task_id, user, at)
    return int(held["round_id"])


def progress(store: Store, user: User, *, now: float | None = None) -> Progress:
    """How many tasks `user` answered, which one they hold, and the open slots left."""
    at = _now(now)
    with store.unit_of_work() as uow:
        open_ids = uow.rounds.open_ids()
        counts = uow.leases.counts(open_ids)
        held = uow.leases.held_by(user.id, at)
        answered = uow.leases.done_by_user(user.id)
        # Rounds nobody asked work from yet have no slots: count their items.
        remaining = sum(c["open"] + c["leased"] for c in counts.values())
        remaining += sum(len(uow.rounds.items(r)) for r in open_ids if r not in counts)
    return Progress(user=user.name, answered=answered, holding=int(held["row"]) if held else None,
                    open_rounds=open_ids, remaining=remaining)


@dataclass(frozen=True)
class Settled(Record):
    """What `settle` did: slots marked done (answered outside the service) and the
    rounds closed because nothing was left in them."""

    slots_done: int
    closed_rounds: list[int]


@dataclass(frozen=True)
class TaskRow(Record):
    """A task of a round as an admin sees it: the sample, its priority position and
    kind, and its slots by state (open, leased, done) with who holds them. An image's
    `media` is its path under the media root; `media_url` a signed thumbnail link,
    filled in by the service (None elsewhere)."""

    id: int
    sample_id: str
    text: str | None
    position: int
    kind: str
    open: int
    leased: int
    done: int
    holders: list[str]
    media: str | None = None
    media_url: str | None = None


@dataclass(frozen=True)
class RoundTasks(Record):
    """A page of a round's tasks (`offset` into `total`), in priority order."""

    round_id: int
    status: str
    total: int
    offset: int
    tasks: list[TaskRow]


@dataclass(frozen=True)
class AnnotatorActivity(Record):
    """One annotator's answers: labels, skips, unsure, seconds in all and per timed
    answer, the latest answer's time, and their service role (None for a name that came
    with imported labels)."""

    annotator: str
    role: str | None
    label: int
    skip: int
    unsure: int
    seconds: float
    timed: int
    seconds_per_answer: float | None
    last: str | None


def settle(store: Store) -> Settled:
    """Bring the open rounds' slots in line with the label history: slots answered
    outside the service (imported labels) become done, and rounds with nothing left
    close. Run at server start (labels imported while it was down)."""
    with exclusive(store), store.unit_of_work() as uow:
        uow.leases.begin_write()
        return settle_in(uow)


def settle_in(uow: UnitOfWork) -> Settled:
    """`settle` inside the caller's unit of work."""
    done, closed = uow.leases.settle_and_close(uow.rounds.planned_after())
    return Settled(int(done), [int(r) for r in closed])


def record_in(uow: UnitOfWork, events: list[labels_uc.LabelEvent], policy: TaskPolicy, *,
              source: str, where: str, actor: str | None = None) -> labels_uc.LabelsRecorded:
    """The service's path for labels that come from outside its leases (a file, a
    webhook, Label Studio), inside the caller's unit of work: every open round gets its
    slots first (so it is judged by the overlap, not by "every item has an event"),
    then the label use case records the events, marks one slot done per answer (skips
    answer nothing) and closes the rounds with no slot left, in the same transaction.
    With `actor`, the import goes into the audit log too."""
    for round_id in uow.leases.open_rounds():
        _ensure_slots(uow, round_id, policy.overlap)
    done = labels_uc.record_labels(None, events, source=source, where=where, uow=uow)
    if actor is not None:  # an admin's import: in the audit log, in the same transaction
        uow.audit.add(actor, "labels_imported", {
            "from": where, "rows": done.rows, "new_labels": done.new_labels,
            "changed": done.changed, "closed_rounds": done.closed_rounds})
    return done


def open_rounds(store: Store) -> list[int]:
    """The open rounds' ids, oldest first."""
    with store.reading() as uow:
        return uow.rounds.open_ids()


def queue_empty(store: Store) -> bool:
    """Whether nothing is left to lease for anyone: every slot of every open round is
    leased or done (a round nobody asked work from yet counts as work left)."""
    with store.reading() as uow:
        for round_id in uow.rounds.open_ids():
            if not uow.leases.has_round(round_id) or uow.leases.any_open(round_id):
                return False
    return True


def round_tasks(store: Store, round_id: int | None = None, *, offset: int = 0,
                limit: int = 100) -> RoundTasks:
    """The tasks of a round (the most recent open one by default), a page at a time:
    sample id, text, priority position, kind, and slots by state with holders."""
    with store.reading() as uow:
        if round_id is None:
            open_ids = uow.rounds.open_ids()
            if not open_ids:
                raise TaskNotFound("no open round (start one: POST /admin/rounds)")
            round_id = open_ids[-1]
        rnd = uow.rounds.get(round_id)
        if rnd is None:
            raise TaskNotFound(f"no round {round_id}")
        items = uow.rounds.items(round_id)
        kinds = {r: k for r, _, k in items}
        page = uow.leases.of_round(round_id, offset, limit)
        if not page and not uow.leases.has_round(round_id):
            # Nobody asked for work yet: the round's items, nothing leased or done.
            page = [{"row": r, "position": p, "open": 0, "leased": 0, "done": 0, "holders": []}
                    for r, p, _ in items[offset : offset + limit]]
        rows = np.asarray([t["row"] for t in page], dtype=np.int64)
        samples = ({r: (e, t, (m or {}).get("media")) for chunk in uow.samples.iter(rows)
                    for r, e, t, m in chunk} if len(rows) else {})
    tasks = [TaskRow(id=t["row"], sample_id=samples[t["row"]][0], text=samples[t["row"]][1],
                     position=t["position"], kind=kinds.get(t["row"], ""), open=t["open"],
                     leased=t["leased"], done=t["done"], holders=list(t["holders"]),
                     media=samples[t["row"]][2])
             for t in page]
    return RoundTasks(round_id=round_id, status=rnd["status"], total=len(items), offset=offset,
                      tasks=tasks)


def annotators(store: Store) -> list[AnnotatorActivity]:
    """Per annotator: labels, skips, unsure, seconds in all and per timed answer, latest
    answer, and their service role (None for names that came with imported labels)."""
    with store.reading() as uow:
        stats = uow.users.activity()
        roles = {u["name"]: u["role"] for u in uow.users.list()}
    out = [AnnotatorActivity(
        annotator=d["annotator"], role=roles.get(d["annotator"]), label=int(d["label"]),
        skip=int(d["skip"]), unsure=int(d["unsure"]), seconds=float(d["seconds"]),
        timed=int(d["timed"]), seconds_per_answer=d["seconds"] / d["timed"] if d["timed"] else None,
        last=None if d["last"] is None else str(d["last"])) for d in stats]
    for name, role in roles.items():
        if not any(a.annotator == name for a in out):
            out.append(AnnotatorActivity(name, role, 0, 0, 0, 0.0, 0, None, None))
    return out


# Times a batch runs again after PostgreSQL rolled it back in a deadlock between the
# pool's writers (rare: a user's requests all go to one writer).
BATCH_RETRIES = 3


class _Undo(Exception):
    """A request of a batch raised: the batch's transaction is rolled back."""


def run_batch(store: Store, fns: list[Callable[[UnitOfWork], T]], *,
              defer_checkpoints: bool = False) -> list[tuple[bool, T | Exception]]:
    """Run task use cases (functions of a unit of work) for many requests in one
    transaction: (True, result) or (False, error) for each, in order, returned once the
    transaction has committed, so an answer acknowledged from here is as durable as one
    committed alone. On SQLite the transaction first takes the writer lock with a write
    that changes nothing (a batch that read first and wrote later could find the
    catalog changed by another process).

    A request that raises (a conflict, a bad label) must leave nothing written: the
    batch is rolled back and run again without it, the others each in a savepoint of
    its own this time (so a second refusal undoes only its own writes). The common
    batch, where nobody is refused, pays for no savepoint. When the batch fails as a
    whole (the commit, a lock another process holds too long), every request in it
    gets that error and nothing of it is written. `defer_checkpoints`: the batch's
    commit leaves the SQLite write-ahead log to the caller's checkpoints
    (`LeasesRepo.defer_checkpoints`)."""
    out: list[tuple[bool, T | Exception] | None] = [None] * len(fns)
    todo = list(range(len(fns)))
    careful = False
    conflicts = 0
    while todo:
        done: list[tuple[int, Any]] = []
        refused: tuple[int, Exception] | None = None
        closed: set[int] = set()
        try:
            with exclusive(store), store.unit_of_work() as uow, uow.batch_reads():
                if defer_checkpoints:
                    uow.leases.defer_checkpoints()
                uow.leases.begin_write()
                uow.rounds_to_settle = set()
                for i in todo:
                    try:
                        if careful:
                            with uow.savepoint():
                                done.append((i, fns[i](uow)))
                        else:
                            done.append((i, fns[i](uow)))
                    except Exception as e:  # noqa: BLE001 - the request's own error, returned to it
                        if careful:
                            out[i] = (False, e)
                            continue
                        refused = (i, e)
                        raise _Undo from e
                # The rounds its answers touched: closed here, at the end, in order.
                closed = {r for r in sorted(uow.rounds_to_settle) if _settle_round(uow, r)}
        except _Undo:
            out[refused[0]] = (False, refused[1])
            todo = [i for i in todo if i != refused[0]]
            careful = True
            continue
        except Exception as e:  # noqa: BLE001 - the batch failed: so did each request in it
            if lock_conflict(e) and conflicts < BATCH_RETRIES:
                # Two batches of the pool deadlocked (PostgreSQL rolled this one back,
                # nothing of it written): run it again.
                conflicts += 1
                continue
            for i in todo:
                if out[i] is None or out[i][0]:
                    out[i] = (False, e)
            return out  # type: ignore[return-value]
        for i, value in reversed(done):
            if isinstance(value, Answered) and value.round_id in closed and value.kind != "skip":
                # The batch's last answer of a round it closed says so (once).
                closed.discard(value.round_id)
                value = replace(value, round_closed=True)
            out[i] = (True, value)
        break
    return out  # type: ignore[return-value]


# SQLite: seconds between the writer thread's checkpoints of the write-ahead log.
CHECKPOINT_EVERY = 0.5

# PostgreSQL: batches run on up to this many writer threads, each on a connection of
# the store's pool. Each writer takes a whole window's requests (the fewer the batches,
# the less CPU a submission costs: a batch's own work, its transaction and its
# wake-ups, is a few times a request's); a second writer takes a window only while the
# first is still busy, so one thread's round trips never cap the service.
WRITERS = 3

# PostgreSQL: seconds between two hand-overs to the writers, at least. The requests of
# a window cross as one item, wake the writer once and commit together; the first
# request after a quiet spell goes at once, so light load waits for nobody.
PG_WINDOW = 0.02


class GroupCommit:
    """The service's writer: the requests that arrive while a batch runs make the next
    batch (`run_batch`, at most `max_batch`), one transaction and one commit for all.

    SQLite (`thread=False`): the batch runs on the event loop itself, `window` seconds
    (2 ms) after the first request queues, or at once when `max_batch` are waiting; its
    statements take microseconds, and a writer thread would
    wait for the interpreter lock after each one while the loop holds it. PostgreSQL
    (`thread=True`): `writers` threads (WRITERS), each taking batches from its own
    queue onto a pooled connection, while the loop goes on serving. The loop hands
    requests over at most once per `window` (PG_WINDOW, 20 ms; at once when `max_batch`
    are waiting or none went in the last window): at 300 submissions/s a batch holds
    about a dozen requests where one per request cost twice the CPU. With several
    writers a request's `key` (its user) picks the queue, so one user's requests run in
    order on one writer and never hold locks against each other; the batches of
    different writers take row locks (slots, users) that do not overlap, and the round
    lock last, in round order; a deadlock PostgreSQL still reports runs the batch again
    (`run_batch`). `run` must be called on the event loop; `close` hands over what
    waits for its window, and the writers commit it before they stop.

    On SQLite the batches' commits never checkpoint the write-ahead log: a thread of
    the writer does, every `checkpoint_every` seconds, beside the batches (a checkpoint
    writes and syncs the database file: on a commit it held up every request waiting
    on the event loop)."""

    def __init__(self, store: Store, *, thread: bool | None = None, max_batch: int = 64,
                 window: float | None = None, writers: int = WRITERS,
                 checkpoint_every: float = CHECKPOINT_EVERY):
        import itertools
        import queue

        self.thread = store.dialect != "sqlite" if thread is None else thread
        if window is None:
            window = PG_WINDOW if self.thread else 0.002
        self.store, self.max_batch, self.window = store, max_batch, window
        self._timer: Any = None
        self._last_hand = -math.inf  # loop time of the last hand-over to the writers
        self._pending: list = []
        self._scheduled = False
        self._closed = False
        self._turn = itertools.count()
        self._queues: list[queue.SimpleQueue] = []
        self._workers: list[threading.Thread] = []
        self._handing: Any = None  # the loop of a scheduled hand-over to the writers
        self._outbox: list = []  # (fn, future, key) waiting for their window's hand-over
        # On the loop: batches handed to each writer and not yet answered, and the writer
        # of each key (user) that has a request in one of them.
        self._busy = [0] * max(1, writers)
        self._holder: dict[Any, list[int]] = {}  # key -> [writer, requests in flight]
        self._stop = threading.Event()
        self.checkpoints = 0  # the checkpoints made by the writer's thread
        self._checkpointer: threading.Thread | None = None
        if store.dialect == "sqlite" and checkpoint_every > 0:
            # Started with the first batch: a writer that never writes has no thread.
            self._checkpointer = threading.Thread(
                target=_checkpoints, args=(weakref.ref(self), self._stop, checkpoint_every),
                name="longtail-checkpoint", daemon=True)
        if self.thread:
            for k in range(max(1, writers)):
                q: queue.SimpleQueue = queue.SimpleQueue()
                worker = threading.Thread(target=self._run, args=(k, q),
                                          name=f"longtail-writer-{k}", daemon=True)
                self._queues.append(q)
                self._workers.append(worker)
                worker.start()

    @property
    def closed(self) -> bool:
        """Whether `close` was called: a closed writer takes no more requests."""
        return self._closed

    async def run(self, fn: Any, key: int | None = None) -> Any:
        """`fn(uow)` in the next batch: its result once committed, or its error. With
        several writers `key` (a user id) picks the writer: equal keys run in order."""
        import asyncio

        if self._closed:
            raise ProjectError("the service is shutting down")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.thread:
            self._outbox.append((fn, fut, next(self._turn) if key is None else key))
            if len(self._outbox) >= self.max_batch and self._timer is not None:
                self._timer.cancel()  # a full batch goes at once
                self._timer, self._handing = None, None
            if not self._handing:
                # Handed over at most once per `window`: the requests of a window cross
                # to the writer threads (and wake them) as one item.
                self._handing = loop
                due = self._last_hand + self.window
                if len(self._outbox) >= self.max_batch or due <= loop.time():
                    loop.call_soon(self._hand_over, loop)
                else:
                    self._timer = loop.call_at(due, self._hand_over, loop)
        else:
            self._pending.append((fn, fut))
            if len(self._pending) >= self.max_batch:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if not self._scheduled:
                    self._scheduled = True
                    loop.call_soon(self._flush)
            elif not self._scheduled and self._timer is None:
                # Wait a moment for company: the requests of the next `window`
                # seconds share the transaction and its commit.
                self._timer = loop.call_later(self.window, self._flush)
        return await fut

    async def run_alone(self, fn: Any) -> Any:
        """`fn(uow)` in a transaction of its own, on a worker thread, holding the writer
        lock: for writes too big to share a batch (a label file, a webhook's labels).
        Its result once committed, or its error (nothing of it written)."""
        from starlette.concurrency import run_in_threadpool

        def alone() -> Any:
            with exclusive(self.store), self.store.unit_of_work() as uow:
                uow.leases.begin_write()
                return fn(uow)

        return await self._guarded(run_in_threadpool, alone)

    async def run_locked(self, fn: Any) -> Any:
        """`fn()` on a worker thread holding the writer lock, for use cases that open
        their own transactions (planning a round)."""
        from starlette.concurrency import run_in_threadpool

        def locked() -> Any:
            with exclusive(self.store):
                return fn()

        return await self._guarded(run_in_threadpool, locked)

    async def _guarded(self, call: Any, fn: Any) -> Any:
        if self._closed:
            raise ProjectError("the service is shutting down")
        return await call(fn)

    def _flush(self) -> None:
        self._scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if _writer_busy(self.store):
            # Another writer of this process (an admin import, a round being planned)
            # holds the catalog: look again shortly rather than block the event loop.
            import asyncio

            self._timer = asyncio.get_running_loop().call_later(0.005, self._flush)
            return
        if self._checkpointer is not None and self._checkpointer.ident is None:
            self._checkpointer.start()
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            done = run_batch(self.store, [f for f, _ in batch],
                             defer_checkpoints=self._checkpointer is not None)
            for (_, fut), (ok, value) in zip(batch, done, strict=True):
                _settle(fut, ok, value)

    def _hand_over(self, loop: Any) -> None:
        """The window's requests to the writers, one batch each: a request whose user
        has one in a batch not yet answered follows it onto that writer (one user's
        requests never run side by side); the others go together to the least busy
        writer, an idle one when there is one."""
        self._handing, self._timer = None, None
        self._last_hand = loop.time()
        items, self._outbox = self._outbox, []
        groups: dict[int, list] = {}
        free, n = -1, 0  # the writer taking the new users' requests, and how many so far
        for fn, fut, key in items:
            held = self._holder.get(key)
            if held is None:
                if free < 0 or n >= self.max_batch:  # a window past max_batch: spread
                    free = min(range(len(self._busy)),
                               key=lambda i: (self._busy[i] + (i in groups), i))
                    n = 0
                n += 1
                held = self._holder[key] = [free, 0]
            held[1] += 1
            groups.setdefault(held[0], []).append((fn, fut, key))
        for w, group in groups.items():
            self._busy[w] += 1
            self._queues[w].put((group, loop))

    def _answered(self, w: int, handed: int, batch: list, results: list) -> None:
        """On the loop: writer `w` committed `batch` (from `handed` hand-overs)."""
        self._busy[w] -= handed
        for _, _fut, key in batch:
            held = self._holder.get(key)
            if held is not None:
                held[1] -= 1
                if held[1] <= 0:
                    del self._holder[key]
        _settle_all([f for _, f, _ in batch], results)

    def _run(self, w: int, todo: Any) -> None:
        import queue

        stop = False
        while not stop:
            item = todo.get()
            if item is None:
                return
            items, loop = item
            handed = 1
            while len(items) < self.max_batch:
                try:
                    nxt = todo.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True  # after this batch
                    break
                items += nxt[0]
                handed += 1
            for i in range(0, len(items), self.max_batch):
                batch = items[i : i + self.max_batch]
                results = run_batch(self.store, [f for f, _, _ in batch],
                                    defer_checkpoints=self._checkpointer is not None)
                # One wake-up of the event loop per batch, not one per request.
                last = i + self.max_batch >= len(items)
                loop.call_soon_threadsafe(self._answered, w, handed if last else 0, batch,
                                          results)

    def close(self) -> None:
        """Stop taking requests; the threads finish what is queued."""
        self._closed = True
        if self._handing:  # what arrived in this turn of the loop goes first
            if self._timer is not None:
                self._timer.cancel()
            self._hand_over(self._handing)
        for q in self._queues:
            q.put(None)
        for worker in self._workers:
            worker.join(30)
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer.ident is not None:
            self._checkpointer.join(30)  # the last connection's close checkpoints the rest


def _checkpoints(writer: Any, stop: threading.Event, every: float) -> None:
    """The SQLite writer's checkpoint thread: every `every` seconds until the writer is
    closed or gone (it holds the writer weakly, so a writer nobody closed still ends)."""
    while not stop.wait(every):
        w = writer()
        if w is None:
            return
        try:
            w.store.checkpoint_wal()
        except Exception:  # noqa: BLE001 - tried again next time, unless the project is gone
            if not w.store.root.exists():
                return
        else:
            w.checkpoints += 1
        del w


def _settle_all(futs: list, results: list[tuple[bool, Any]]) -> None:
    for fut, (ok, value) in zip(futs, results, strict=True):
        _settle(fut, ok, value)


def _settle(fut: Any, ok: bool, value: Any) -> None:
    if fut.done():  # the request was cancelled (its client went away)
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
