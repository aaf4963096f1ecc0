"""Slice 2 over HTTP: the annotators' routes and their status codes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from longtail.server.app import create_app
from longtail.server.settings import ServerSettings

from .conftest import LABELS


def _h(people, name):
    return {"Authorization": f"Bearer {people[name][1]}"}


def _client(store, clock, **kw):
    return TestClient(create_app(store.root, ServerSettings(lease_ttl=60, **kw), clock=clock))


def test_lease_label_release_round_trip(store, people, clock):
    c = _client(store, clock)
    ann, bob = _h(people, "ann"), _h(people, "bob")
    t = c.post("/tasks/lease", headers=ann).json()["task"]
    assert (t["id"], t["sample_id"], t["labels"]) == (0, "s0", LABELS)
    assert "kind" not in t  # annotators label eval and control items blind
    assert c.post("/tasks/lease", headers=ann).json()["task"]["id"] == 0
    r = c.post("/tasks/0/label", headers=ann, json={"label": "card", "seconds": 3.5})
    assert r.status_code == 200 and r.json() == {"task_id": 0, "kind": "label", "label": "card",
                                                 "round_id": 1, "round_closed": False}
    nxt = c.post("/tasks/lease", headers=ann).json()["task"]["id"]
    assert c.post(f"/tasks/{nxt}/release", headers=ann).json()["released"] is True
    assert c.post("/tasks/lease", headers=bob).json()["task"]["id"] == nxt
    p = c.get("/api/progress", headers=ann).json()
    assert p["answered"] == 1 and p["holding"] is None and p["remaining"] == 9


def test_status_codes_for_conflicts_expiry_and_bad_labels(store, people, clock):
    c = _client(store, clock)
    ann, bob = _h(people, "ann"), _h(people, "bob")
    c.post("/tasks/lease", headers=ann)
    r = c.post("/tasks/0/label", headers=bob, json={"label": "card"})
    assert r.status_code == 409 and "another annotator" in r.json()["detail"]
    assert c.post("/tasks/0/release", headers=bob).status_code == 409
    assert c.post("/tasks/15/label", headers=ann, json={"label": "card"}).status_code == 404
    r = c.post("/tasks/0/label", headers=ann, json={"label": "Card"})
    assert r.status_code == 422 and r.json()["allowed"] == LABELS
    assert "Card" in r.json()["detail"]
    clock.t += 61
    r = c.post("/tasks/0/label", headers=ann, json={"label": "card"})
    assert r.status_code == 409 and "expired" in r.json()["detail"]


def test_malformed_and_invalid_bodies_are_422(store, people, clock):
    c = _client(store, clock)
    ann = _h(people, "ann")
    c.post("/tasks/lease", headers=ann)
    for body in (b"{not json", b'{"label": "card",}', b"[1, 2]"):
        r = c.post("/tasks/0/label", headers={**ann, "content-type": "application/json"},
                   content=body)
        assert r.status_code == 422, body
    for js in ({"label": "card", "seconds": -1}, {"kind": "maybe"}, {"label": "card", "who": "x"},
               {"kind": "skip", "label": "card"}, {"kind": "label"}):
        assert c.post("/tasks/0/label", headers=ann, json=js).status_code == 422, js
    assert c.post("/tasks/abc/label", headers=ann, json={"label": "card"}).status_code == 422
    # Nothing above was recorded: the lease is still ann's and answerable.
    assert c.post("/tasks/0/label", headers=ann, json={"label": "card"}).status_code == 200


def test_oversized_body_is_413_with_or_without_content_length(store, people, clock):
    c = _client(store, clock, max_body=2048)
    ann = _h(people, "ann")
    c.post("/tasks/lease", headers=ann)
    big = b'{"label": "' + b"x" * 4096 + b'"}'
    r = c.post("/tasks/0/label", headers={**ann, "content-type": "application/json"}, content=big)
    assert r.status_code == 413

    def chunks():
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    r = c.post("/tasks/0/label", headers={**ann, "content-type": "application/json"},
               content=chunks())
    assert r.status_code == 413
    assert c.post("/tasks/0/label", headers=ann, json={"label": "card"}).status_code == 200


def test_a_409_says_why_for_a_client_to_act_on(store, people, clock):
    """The labeling page tells an expired lease (lease again, send the answer) from a
    task someone else holds or one already answered by `reason`."""
    c = _client(store, clock)
    ann, bob = _h(people, "ann"), _h(people, "bob")
    c.post("/tasks/lease", headers=ann)
    assert c.post("/tasks/0/label", headers=bob, json={"label": "card"}).json()["reason"] == "taken"
    clock.t += 61
    r = c.post("/tasks/0/label", headers=ann, json={"label": "card"})
    assert (r.status_code, r.json()["reason"]) == (409, "expired")
    c.post("/tasks/lease", headers=ann)
    assert c.post("/tasks/0/label", headers=ann, json={"label": "card"}).status_code == 200
    assert c.post("/tasks/0/label", headers=ann, json={"label": "card"}).json()["reason"] == "answered"
