"""Issue 27, finding 14: undo of the last answer while its lease runs. The use case
withdraws the answer in one transaction through the writer (event removed, the slot
the annotator's again, the task they leased since back in the queue, an audit entry);
it refuses, changing nothing, once the lease has run out, the round has closed or a
dataset version counted the answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.engine import tasks
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

from .conftest import Clock, make_store

POLICY = tasks.TaskPolicy(lease_ttl=60)
NOW = 1_000_000.0


def _events(store) -> list[tuple]:
    a = s.annotations
    with store.engine.connect() as conn:
        return [tuple(x) for x in conn.execute(select(a.c.row, a.c.kind, a.c.label, a.c.annotator)
                                               .order_by(a.c.id))]


def _slots(store) -> dict[int, tuple]:
    t = s.task_leases
    with store.engine.connect() as conn:
        return {int(r): (st, u) for r, st, u in conn.execute(
            select(t.c.row, t.c.state, t.c.user_id).where(t.c.row < 4))}


def _audit(store) -> list[tuple]:
    with store.engine.connect() as conn:
        return [(a, d) for a, d in conn.execute(select(s.audit_log.c.actor, s.audit_log.c.detail)
                                               .where(s.audit_log.c.action == "answer_withdrawn"))]


def test_undo_withdraws_the_answer_and_gives_the_task_back(store, people):
    ann, bob = people["ann"][0], people["bob"][0]
    assert tasks.lease(store, ann, POLICY, now=NOW).id == 0
    tasks.answer(store, ann, 0, "label", "card", 2.0, now=NOW + 5)
    assert tasks.lease(store, ann, POLICY, now=NOW + 6).id == 1  # the page leases the next
    got = tasks.withdraw(store, ann, 0, now=NOW + 10)
    assert (got.task.id, got.kind, got.label, got.released) == (0, "label", "card", 1)
    assert got.task.expires_at == NOW + 60  # the lease it was answered under, not a new one
    assert _events(store) == []
    assert _slots(store)[0] == ("leased", ann.id) and _slots(store)[1] == ("open", None)
    assert _audit(store) == [("ann", {"task": 0, "round": 1, "kind": "label", "label": "card",
                                      "seconds": 2.0, "answered_at": _audit(store)[0][1][
                                          "answered_at"], "released": 1})]
    # Nobody else gets task 0 meanwhile; task 1 went back to the queue for bob.
    assert tasks.lease(store, bob, POLICY, now=NOW + 11).id == 1
    # Answered anew: one event, the new one.
    tasks.answer(store, ann, 0, "label", "billing", 1.0, now=NOW + 12)
    assert _events(store) == [(0, "label", "billing", "ann")]


def test_undo_is_refused_once_the_lease_ran_out_or_for_a_skip(store, people):
    ann = people["ann"][0]
    tasks.lease(store, ann, POLICY, now=NOW)
    tasks.answer(store, ann, 0, "unsure", None, None, now=NOW + 1)
    with pytest.raises(tasks.TaskConflict) as e:
        tasks.withdraw(store, ann, 0, now=NOW + 60)
    assert e.value.reason == "expired" and "has ended" in str(e.value)
    tasks.lease(store, ann, POLICY, now=NOW + 61)
    tasks.answer(store, ann, 1, "skip", None, None, now=NOW + 62)
    with pytest.raises(tasks.TaskConflict) as e:
        tasks.withdraw(store, ann, 1, now=NOW + 63)
    assert e.value.reason == "not_answered"
    with pytest.raises(tasks.TaskConflict):
        tasks.withdraw(store, people["bob"][0], 0, now=NOW + 2)  # not bob's answer
    assert [k for _, k, _, _ in _events(store)] == ["unsure", "skip"] and _audit(store) == []


def test_undo_is_refused_once_the_round_closed_or_a_version_counted_it(tmp_path, db_url):
    from longtail.engine import users

    store = make_store(tmp_path / "p", n=5, round_sizes=(3, 1), db_url=db_url)
    ann = users.add_user(store, "ann")[0]
    assert tasks.lease(store, ann, POLICY, now=NOW).id == 3  # round 2, one task
    assert tasks.answer(store, ann, 3, "label", "card", None, now=NOW + 1).round_closed
    with pytest.raises(tasks.TaskConflict) as e:
        tasks.withdraw(store, ann, 3, now=NOW + 2)
    assert e.value.reason == "closed" and "closed" in str(e.value)
    assert tasks.lease(store, ann, POLICY, now=NOW + 3).id == 0
    tasks.answer(store, ann, 0, "label", "card", None, now=NOW + 4)
    with store.unit_of_work() as uow:
        uow.versions.commit("manual")  # as planning a round does
    with pytest.raises(tasks.TaskConflict) as e:
        tasks.withdraw(store, ann, 0, now=NOW + 5)
    assert e.value.reason == "recorded"
    assert _events(store) == [(3, "label", "card", "ann"), (0, "label", "card", "ann")]
    store.close()


def test_undo_over_http_through_the_writer(tmp_path, db_url):
    from longtail.engine import users

    clock = Clock(NOW)
    store = make_store(tmp_path / "p", n=10, round_sizes=(5,), db_url=db_url)
    token = users.add_user(store, "ann")[1]
    with TestClient(create_app(store.root, ServerSettings(lease_ttl=60), clock=clock)) as c:
        h = {"Authorization": f"Bearer {token}"}
        t0 = c.post("/tasks/lease", headers=h).json()["task"]
        assert c.post(f"/tasks/{t0['id']}/label", headers=h, json={"label": "card"}).status_code == 200
        t1 = c.post("/tasks/lease", headers=h).json()["task"]
        r = c.post(f"/tasks/{t0['id']}/undo", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["task"]["id"], body["label"], body["released_task_id"]) == (0, "card", t1["id"])
        assert body["task"]["expires_at"] == t0["expires_at"]
        # The lease holds task 0 again: the next lease returns it, not task 1.
        assert c.post("/tasks/lease", headers=h).json()["task"]["id"] == 0
        r = c.post(f"/tasks/{t0['id']}/undo", headers=h)
        assert r.status_code == 409 and r.json()["reason"] == "not_answered"
        assert c.post(f"/tasks/{t0['id']}/label", headers=h, json={"label": "billing"}).status_code == 200
        clock.t += 61
        r = c.post(f"/tasks/{t0['id']}/undo", headers=h)
        assert r.status_code == 409 and r.json()["reason"] == "expired"
        assert c.post("/tasks/99/undo", headers=h).status_code == 409
        assert c.post("/tasks/1/undo").status_code == 401
    assert _events(store) == [(0, "label", "billing", "ann")]
    store.close()
