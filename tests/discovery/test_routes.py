"""The long tail through the service: slices, search, the queue and the report."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service needs the serve extra")

from fastapi.testclient import TestClient  # noqa: E402

from longtail.engine import users  # noqa: E402
from longtail.server.app import create_app  # noqa: E402


def test_slices_search_enqueue_and_report_routes(tail_project):
    p, (X, y, source) = tail_project
    admin = {"Authorization": f"Bearer {users.add_user(p.store, 'root', 'admin')[1]}"}
    ann = {"Authorization": f"Bearer {users.add_user(p.store, 'ann', 'annotator')[1]}"}
    c = TestClient(create_app(p.path))
    r = c.get("/admin/slices?limit=3", headers=admin)
    assert r.status_code == 200 and r.json()["slices"][0]["flag"]
    assert c.get("/admin/slices", headers=ann).status_code == 403
    r = c.post("/admin/search", headers=admin, json={"ids": ["s1"], "k": 4,
                                                     "state": "unlabeled", "enqueue": True})
    assert r.status_code == 200, r.text
    assert len(r.json()["hits"]) == 4 and r.json()["enqueued"]["queued"] == 4
    r = c.post("/admin/slices/enqueue", headers=admin, json={"slice": "source=mobile", "n": 3})
    assert r.status_code == 200 and r.json()["queued"] == 3
    assert len(c.get("/admin/queue", headers=admin).json()) == 7
    # bad input: 422 with the message, never a 500, and nothing queued
    for body in ({"ids": ["nope"]}, {"vector": [1.0]}, {"ids": ["s1"], "split": "x"}):
        r = c.post("/admin/search", headers=admin, json=body)
        assert r.status_code == 422, (body, r.text)
    r = c.post("/admin/slices/enqueue", headers=admin, json={"slice": "cluster:999"})
    assert r.status_code == 422
    assert len(c.get("/admin/queue", headers=admin).json()) == 7
    r = c.get("/admin/report", headers=admin)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Failure slices" in r.text
