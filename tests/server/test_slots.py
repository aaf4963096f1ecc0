"""Slots as a set, not a prefix (issue 27, findings 1 and 2): a task is done when its
answers (labels and unsure, never skips) fill its `overlap` slots, whichever slots they
came through; a restart, a label file or a webhook never closes a task or a round early."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.engine import tasks
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

NOW = 1_000_000.0
POLICY = tasks.TaskPolicy(lease_ttl=60, overlap=2)


def _slots(store, row: int) -> list[tuple[int, str]]:
    t = s.task_leases
    with store.engine.connect() as conn:
        return [tuple(x) for x in conn.execute(select(t.c.slot, t.c.state)
                                               .where(t.c.row == row).order_by(t.c.slot))]


def _round_status(store, rid: int = 1) -> str:
    with store.engine.connect() as conn:
        return conn.execute(select(s.rounds.c.status).where(s.rounds.c.id == rid)).scalar()


def test_a_skip_then_an_answer_on_the_other_slot_survives_a_restart(store, people):
    """ann and bob lease task 0 (slots 0 and 1); ann skips, bob answers. The restart's
    settle must not mark slot 0 done on bob's answer: task 0 still needs one answer."""
    ann, bob, cat = (people[n][0] for n in ("ann", "bob", "cat"))
    tasks.prepare(store, POLICY)
    assert tasks.lease(store, ann, POLICY, now=NOW).id == 0
    assert tasks.lease(store, bob, POLICY, now=NOW).id == 0
    tasks.answer(store, ann, 0, "skip", now=NOW + 1)
    tasks.answer(store, bob, 0, "label", "card", now=NOW + 2)
    assert _slots(store, 0) == [(0, "open"), (1, "done")]
    tasks.settle(store)  # what a restart does
    assert _slots(store, 0) == [(0, "open"), (1, "done")]
    assert tasks.lease(store, cat, POLICY, now=NOW + 3).id == 0  # the open slot of task 0


def test_settle_counts_answers_beyond_the_done_slots_only(store, people):
    """Labels imported around the service fill the open slots left, never past them."""
    from longtail.engine import labels

    ann, bob = people["ann"][0], people["bob"][0]
    tasks.prepare(store, POLICY)
    tasks.lease(store, ann, POLICY, now=NOW)
    tasks.answer(store, ann, 0, "label", "card", now=NOW + 1)  # slot 0 done
    labels.record_labels(store, [labels.LabelEvent("s0", "card", annotator="ext"),
                                 labels.LabelEvent("s1", None, kind="skip", annotator="ext"),
                                 labels.LabelEvent("s2", None, kind="unsure", annotator="ext")])
    tasks.settle(store)
    assert [_slots(store, r) for r in (0, 1, 2)] == [[(0, "done"), (1, "done")],
                                                     [(0, "open"), (1, "open")],
                                                     [(0, "done"), (1, "open")]]
    assert tasks.lease(store, bob, POLICY, now=NOW + 2).id == 1


def _client(store, people, name="root"):
    c = TestClient(create_app(store.root, ServerSettings(lease_ttl=60, overlap=2)))
    return c, {"Authorization": f"Bearer {people[name][1]}"}


def test_an_import_fills_one_slot_per_answer_and_leaves_the_round_open(store, people):
    c, root = _client(store, people)
    body = "id,label,annotator\n" + "".join(f"s{i},card,ext\n" for i in range(10))
    r = c.post("/admin/import?annotator=annotator", headers=root, content=body.encode())
    assert r.status_code == 200, r.text
    assert r.json()["closed_rounds"] == [] and _round_status(store) == "open"
    ann = {"Authorization": f"Bearer {people['ann'][1]}"}
    assert c.post("/tasks/lease", headers=ann).json()["task"]["id"] == 0  # the second slot


def test_skips_posted_by_webhook_answer_nothing(store, people):
    c, root = _client(store, people)
    body = {"labels": [{"id": f"s{i}", "kind": "skip", "annotator": "ext"} for i in range(10)]}
    r = c.post("/webhooks/labels", headers=root, json=body)
    assert r.status_code == 200 and r.json()["closed_rounds"] == []
    assert _round_status(store) == "open" and _slots(store, 0) == [(0, "open"), (1, "open")]


def test_a_round_planned_after_the_start_is_judged_by_the_overlap_too(store, people):
    """A round with no slots yet (nobody asked for work from it): labels posted for all
    its items by one annotator leave it open under overlap 2."""
    c, root = _client(store, people)
    with store.unit_of_work() as uow:
        uow.rounds.add("random", {"budget": 5}, 0, {"strategy": "random"},
                       [(10 + k, k, "selected") for k in range(5)], None)
    body = {"labels": [{"id": f"s{10 + k}", "label": "card", "annotator": "ext"}
                       for k in range(5)]}
    r = c.post("/webhooks/labels", headers=root, json=body)
    assert r.status_code == 200 and r.json()["closed_rounds"] == []
    assert _round_status(store, 2) == "open"
    body = {"labels": [{"id": f"s{10 + k}", "label": "card", "annotator": "ext2"}
                       for k in range(5)]}
    assert c.post("/webhooks/labels", headers=root, json=body).json()["closed_rounds"] == [2]


def test_the_cli_import_closes_a_service_round_by_its_slots(store, people):
    """`longtail import-labels` on a round the service made slots for (overlap 2): one
    answer per task fills one slot each, the round stays open; a second annotator's file
    closes it."""
    from longtail.engine import labels

    tasks.prepare(store, POLICY)
    first = labels.record_labels(store, [labels.LabelEvent(f"s{i}", "card", annotator="a")
                                         for i in range(10)])
    assert first.closed_rounds == [] and _round_status(store) == "open"
    assert _slots(store, 3) == [(0, "done"), (1, "open")]
    second = labels.record_labels(store, [labels.LabelEvent(f"s{i}", "card", annotator="b")
                                          for i in range(10)])
    assert second.closed_rounds == [1] and _round_status(store) == "closed"
