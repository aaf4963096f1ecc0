"""Webhooks: labels in from an external tool; events out (round completed, batch
exhausted) with retries and an HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

from .conftest import make_store


def _h(people, name):
    return {"Authorization": f"Bearer {people[name][1]}"}


def test_labels_in_record_events_all_or_nothing(store, people):
    c = TestClient(create_app(store.root))
    body = {"labels": [{"id": "s1", "label": "card", "annotator": "ext", "seconds": 2},
                       {"id": "s2", "kind": "skip", "annotator": "ext"}]}
    assert c.post("/webhooks/labels", headers=_h(people, "ann"), json=body).status_code == 403
    r = c.post("/webhooks/labels", headers=_h(people, "root"), json=body)
    assert r.status_code == 200 and (r.json()["new_labels"], r.json()["skipped"]) == (1, 1)
    bad = {"labels": [{"id": "s3", "label": "card"}, {"id": "nope", "label": "card"}]}
    r = c.post("/webhooks/labels", headers=_h(people, "root"), json=bad)
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    r = c.post("/webhooks/labels", headers=_h(people, "root"),
               json={"labels": [{"id": "s3", "label": "Card"}]})
    assert r.status_code == 422 and "allowed: billing, card, transfer" in r.json()["detail"]
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.kind,
                                  s.annotations.c.annotator)).all()
    assert sorted(map(tuple, got)) == [(1, "label", "ext"), (2, "skip", "ext")]


def test_round_completed_and_batch_exhausted_go_out_signed_with_retries(tmp_path):
    st = make_store(tmp_path / "p", n=5, round_sizes=(2,))
    from longtail.engine import users

    tok = users.add_user(st, "ann")[1]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        # The first delivery of each event fails: it must be retried.
        firsts = [c for c in calls if c.headers["x-longtail-event"] == request.headers["x-longtail-event"]]
        return httpx.Response(500 if len(firsts) == 1 else 204)

    app = create_app(st.root, ServerSettings(webhooks=("http://hooks.example/in",),
                                             webhook_secret="hook-secret"),
                     webhook_transport=httpx.MockTransport(handler))
    app.state.service.hooks.backoff = 0.01
    c = TestClient(app)
    h = {"Authorization": f"Bearer {tok}"}
    for _ in range(2):
        t = c.post("/tasks/lease", headers=h).json()["task"]
        done = c.post(f"/tasks/{t['id']}/label", headers=h, json={"label": "card"}).json()
    assert done["round_closed"]
    with st.unit_of_work() as uow:  # a second round, fully leased: the queue is empty
        uow.rounds.add("random", {}, 0, {}, [(4, 0, "selected")], None)
    other = users.add_user(st, "bob")[1]
    assert c.post("/tasks/lease", headers={"Authorization": f"Bearer {other}"}).json()["task"]
    for _ in range(2):  # asked twice, sent once
        assert c.post("/tasks/lease", headers=h).json()["task"] is None
    app.state.service.hooks.join()
    ok = [c for c in calls if c.url == "http://hooks.example/in"]
    events = [json.loads(c.content) for c in ok]
    assert [e["event"] for e in events] == ["round_completed", "round_completed",
                                           "batch_exhausted", "batch_exhausted"]
    assert events[0]["round_id"] == 1 and events[2]["open_rounds"] == [2]
    for req in ok:
        want = hmac.new(b"hook-secret", req.content, hashlib.sha256).hexdigest()
        assert req.headers["x-longtail-signature"] == f"sha256={want}"
    st.close()


def test_labels_from_outside_leave_the_queue_and_close_the_round(store, people):
    c = TestClient(create_app(store.root))
    ann, root = _h(people, "ann"), _h(people, "root")
    first = c.post("/tasks/lease", headers=ann).json()["task"]["id"]  # slots exist now
    outside = [{"id": f"s{i}", "label": "billing", "annotator": "vendor"} for i in range(1, 10)
               if i != 5]
    assert c.post("/webhooks/labels", headers=root, json={"labels": outside}).status_code == 200
    got = c.post("/tasks/lease", headers=_h(people, "bob")).json()["task"]
    assert got["id"] == 5  # the only task neither leased nor answered outside
    c.post("/tasks/5/label", headers=_h(people, "bob"), json={"label": "card"})
    r = c.post(f"/tasks/{first}/label", headers=ann, json={"label": "card"}).json()
    assert r["round_closed"]
