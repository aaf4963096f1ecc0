"""Slice 2: leases. The queue's order, one lease per user, expiry, overlap, skips,
conflicts, and concurrency-safe claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from longtail.engine import tasks, users
from longtail.engine.tasks import TaskPolicy
from longtail.store import schema as s
from tests.reads import read

from .conftest import LABELS, make_store


@pytest.fixture
def made(tmp_path, db_url):
    """A factory of stores (closed at the end) on the test's dialect."""
    opened = []

    def make(**kw):
        st = make_store(tmp_path / f"p{len(opened)}", db_url=db_url, **kw)
        opened.append(st)
        return st

    yield make
    for st in opened:
        st.close()


def _users(st, *names):
    return [users.add_user(st, n)[0] for n in names]


def _events(st) -> list[dict]:
    with st.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(s.annotations).order_by(s.annotations.c.id))
                .mappings()]


def test_most_recent_round_first_in_priority_order_and_same_task_when_asked_again(made):
    st = made(n=20, round_sizes=(5, 5))
    ann, bob = _users(st, "ann", "bob")
    pol = TaskPolicy(lease_ttl=60)
    t = tasks.lease(st, ann, pol, now=0)
    assert (t.round_id, t.position, t.id, t.sample_id) == (2, 0, 5, "s5")
    assert t.text == "text number 5" and t.labels == LABELS
    assert tasks.lease(st, ann, pol, now=10).id == 5  # the one ann holds
    assert tasks.lease(st, bob, pol, now=10).id == 6
    # Round 2 done: the older round 1 comes next, from its first position.
    for _ in range(5):
        for u in (ann, bob):
            got = tasks.lease(st, u, pol, now=20)
            if got is not None and got.round_id == 2:
                tasks.answer(st, u, got.id, "label", "card", 1.0, now=21)
    assert tasks.lease(st, ann, pol, now=30).round_id == 1


def test_label_records_an_event_with_the_annotator_and_closes_the_round(made):
    st = made(n=6, round_sizes=(3,))
    (ann,) = _users(st, "ann")
    pol = TaskPolicy(lease_ttl=60)
    ids = []
    while (t := tasks.lease(st, ann, pol, now=0)) is not None:
        done = tasks.answer(st, ann, t.id, "label", "billing", seconds=4.5, now=1)
        ids.append(t.id)
    assert ids == [0, 1, 2] and done.round_closed
    ev = _events(st)
    assert [(e["row"], e["label"], e["kind"], e["annotator"], e["seconds"], e["round_id"])
            for e in ev] == [(r, "billing", "label", "ann", 4.5, 1) for r in (0, 1, 2)]
    assert read(st, lambda u: u.rounds.list())[0]["status"] == "closed"
    assert tasks.lease(st, ann, pol, now=2) is None


def test_expired_lease_returns_to_the_queue_and_late_label_is_409(made):
    st = made(n=4, round_sizes=(2,))
    ann, bob = _users(st, "ann", "bob")
    pol = TaskPolicy(lease_ttl=60)
    t = tasks.lease(st, ann, pol, now=0)
    assert tasks.lease(st, bob, pol, now=59).id != t.id  # still ann's
    tasks.release(st, bob, 1, now=59)
    assert tasks.lease(st, bob, pol, now=61).id == t.id  # expired: back in the queue
    with pytest.raises(tasks.TaskConflict, match="leased by another annotator"):
        tasks.answer(st, ann, t.id, "label", "card", now=62)
    # bob's lease expires too; before anyone else asks, bob's late answer is refused.
    with pytest.raises(tasks.TaskConflict, match="expired"):
        tasks.answer(st, bob, t.id, "label", "card", now=200)
    assert _events(st) == []


def test_conflicts_not_found_and_unknown_labels(made):
    st = made(n=6, round_sizes=(3,))
    ann, bob = _users(st, "ann", "bob")
    pol = TaskPolicy(lease_ttl=60)
    t = tasks.lease(st, ann, pol, now=0)
    with pytest.raises(tasks.TaskConflict, match="leased by another"):
        tasks.answer(st, bob, t.id, "label", "card", now=1)
    with pytest.raises(tasks.TaskConflict, match="leased by another"):
        tasks.release(st, bob, t.id, now=1)
    with pytest.raises(tasks.TaskNotFound, match="no task 5"):
        tasks.answer(st, ann, 5, "label", "card", now=1)  # row 5 is in no round
    with pytest.raises(tasks.LabelNotAllowed) as e:
        tasks.answer(st, ann, t.id, "label", "cardd", now=1)
    assert e.value.allowed == LABELS and "cardd" in str(e.value)
    tasks.answer(st, ann, t.id, "label", "card", now=1)
    with pytest.raises(tasks.TaskConflict, match="already answered"):
        tasks.answer(st, ann, t.id, "label", "card", now=2)
    with pytest.raises(tasks.TaskConflict, match="not leased to you"):
        tasks.answer(st, bob, 2, "label", "card", now=2)


def test_skip_goes_to_others_and_never_back_to_the_skipper(made):
    st = made(n=4, round_sizes=(2,))
    ann, bob = _users(st, "ann", "bob")
    pol = TaskPolicy(lease_ttl=60)
    t = tasks.lease(st, ann, pol, now=0)
    tasks.answer(st, ann, t.id, "skip", seconds=2, now=1)
    nxt = tasks.lease(st, ann, pol, now=2)
    assert nxt.id != t.id
    tasks.answer(st, ann, nxt.id, "unsure", now=3)  # unsure answers the task
    assert tasks.lease(st, ann, pol, now=4) is None  # only the skipped one is left
    assert tasks.lease(st, bob, pol, now=4).id == t.id
    assert [e["kind"] for e in _events(st)] == ["skip", "unsure"]
    assert read(st, lambda u: u.rounds.list())[0]["status"] == "open"  # the skipped task still awaits bob


def test_overlap_finishes_tasks_in_progress_first_and_nobody_answers_twice(made):
    st = made(n=8, round_sizes=(3,))
    ann, bob, cat = _users(st, "ann", "bob", "cat")
    pol = TaskPolicy(lease_ttl=60, overlap=2)
    a, b, c = (tasks.lease(st, u, pol, now=0) for u in (ann, bob, cat))
    assert (a.id, b.id, c.id) == (0, 0, 1)  # task 0 is finished before task 1 starts
    for u, t in ((ann, a), (bob, b), (cat, c)):
        tasks.answer(st, u, t.id, "label", "card", now=1)  # ann and bob agree: both count
    assert tasks.lease(st, ann, pol, now=2).id == 1  # the one in progress, not 0 again
    assert tasks.lease(st, bob, pol, now=2).id == 2
    assert tasks.lease(st, cat, pol, now=2).id == 2
    per_row = Counter((e["row"], e["annotator"]) for e in _events(st))
    assert per_row == {(0, "ann"): 1, (0, "bob"): 1, (1, "cat"): 1}


def test_overlap_task_is_done_with_n_answers_and_round_closes(made):
    st = made(n=4, round_sizes=(2,))
    people = _users(st, "ann", "bob")
    pol = TaskPolicy(lease_ttl=60, overlap=2)
    answered = 0
    for _ in range(3):
        for u in people:
            t = tasks.lease(st, u, pol, now=0)
            if t is not None:
                tasks.answer(st, u, t.id, "label", "card", now=0)
                answered += 1
    assert answered == 4 and read(st, lambda u: u.rounds.list())[0]["status"] == "closed"
    assert Counter(e["row"] for e in _events(st)) == {0: 2, 1: 2}


def test_concurrent_claims_and_answers_lose_nothing_and_duplicate_nothing(made):
    st = made(n=120, round_sizes=(100,))
    people = _users(st, *[f"u{i}" for i in range(12)])
    pol = TaskPolicy(lease_ttl=600)
    acked: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(len(people))

    def work(u):
        try:
            gate.wait()
            while (t := tasks.lease(st, u, pol)) is not None:
                tasks.answer(st, u, t.id, "label", "transfer", 1.0)
                acked.append((t.id, u.name))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(u,)) for u in people]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    ev = _events(st)
    assert len(ev) == len(acked) == 100
    assert sorted(e["row"] for e in ev) == list(range(100))
    assert len({u for _, u in acked}) > 1  # the work really was shared
    assert read(st, lambda u: u.rounds.list())[0]["status"] == "closed"


def test_a_relabel_item_waits_for_a_new_answer_even_when_its_row_is_labeled(made):
    """A relabel item (a likely label error queued for a second look) is work to do
    although its row has a label: the service offers it, and a confirming label done
    through the service completes it."""
    from longtail.engine.labels import LabelEvent, record_labels

    st = made(n=10, round_sizes=())
    record_labels(st, [LabelEvent("s0", "card"), LabelEvent("s1", "billing")], source="import")
    with st.reading() as uow:
        before = uow.labels.max_id()
    with st.unit_of_work() as uow:
        uow.rounds.add("relabel", {"budget": 2}, 2, {"strategy": "random",
                                                     "annotations_before": before},
                       [(0, 0, "relabel"), (2, 1, "selected")], None)
    assert tasks.settle(st).slots_done == 0  # the old label answers nothing
    (ann,) = _users(st, "ann")
    pol = TaskPolicy(lease_ttl=60)
    got = tasks.lease(st, ann, pol, now=0)
    assert got is not None and got.sample_id == "s0"
    done = tasks.answer(st, ann, got.id, "label", "card", 2.0, now=1)  # confirms: recorded
    assert [e["label"] for e in _events(st)].count("card") == 2 and not done.round_closed
    got = tasks.lease(st, ann, pol, now=2)
    assert got.sample_id == "s2"
    assert tasks.answer(st, ann, got.id, "label", "transfer", 1.0, now=3).round_closed
