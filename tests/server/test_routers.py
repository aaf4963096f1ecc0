"""Each router on its own: mounted on a bare FastAPI app, with the service and the user
swapped through FastAPI's dependency overrides (no token, no `create_app`). And the
Label Studio webhook records through the service's writer, like every label path."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from longtail.engine import tasks
from longtail.engine.users import User
from longtail.server import errors
from longtail.server.app import create_app
from longtail.server.deps import Service, current_user, get_service
from longtail.server.routers import admin, label_studio, pages, transfer
from longtail.server.routers import tasks as tasks_routes
from longtail.server.settings import ServerSettings
from longtail.server.webhooks import Webhooks

NOW = 1_000_000.0


class SpyWriter(tasks.GroupCommit):
    """The real writer, counting which of its doors each write took."""

    def __init__(self, store):
        super().__init__(store, thread=False)
        self.calls: list[str] = []

    async def run(self, fn, key=None):
        self.calls.append("run")
        return await super().run(fn, key)

    async def run_alone(self, fn):
        self.calls.append("run_alone")
        return await super().run_alone(fn)


def _mounted(router, store, user: User, **settings) -> tuple[TestClient, Service]:
    svc = Service(store=store, settings=ServerSettings(lease_ttl=60, **settings),
                  writer=SpyWriter(store), hooks=Webhooks([]), clock=lambda: NOW)
    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    app.dependency_overrides[get_service] = lambda: svc
    app.dependency_overrides[current_user] = lambda: user
    return TestClient(app), svc


def test_the_tasks_router_alone_leases_and_answers_for_the_overridden_user(store, people):
    ann = people["ann"][0]
    c, svc = _mounted(tasks_routes.router, store, ann)
    assert c.get("/api/me").json() == {"name": "ann", "role": "annotator"}  # no token sent
    task = c.post("/tasks/lease").json()["task"]
    assert task["id"] == 0 and task["expires_at"] == NOW + 60
    r = c.post(f"/tasks/{task['id']}/label", json={"label": "card", "seconds": 1.0})
    assert r.status_code == 200 and r.json()["label"] == "card"
    assert c.post("/tasks/0/label", json={"label": "card"}).status_code == 409
    assert c.post("/tasks/999/release").status_code == 404
    assert svc.writer.calls == ["run"] * 4
    assert c.get("/api/progress").json()["answered"] == 1


def test_the_admin_router_alone_refuses_an_annotator_and_serves_an_admin(store, people):
    c, _ = _mounted(admin.router, store, people["ann"][0])
    assert c.get("/admin/users").status_code == 403
    c, _ = _mounted(admin.router, store, people["root"][0])
    assert sorted(u["name"] for u in c.get("/admin/users").json()) == ["ann", "bob", "cat",
                                                                        "root"]
    assert c.get("/admin/export?limit=2").json()["total"] == 10
    assert c.get("/admin/export?limit=5000").status_code == 422  # over the page limit


def test_the_transfer_router_records_labels_through_the_writer(store, people):
    c, svc = _mounted(transfer.router, store, people["root"][0])
    r = c.post("/webhooks/labels", json={"labels": [{"id": "s1", "label": "card"}]})
    assert r.status_code == 200 and r.json()["new_labels"] == 1
    r = c.post("/admin/import", content=b"id,label\ns2,billing\n")
    assert r.status_code == 200 and r.json()["new_labels"] == 1
    assert svc.writer.calls == ["run_alone", "run_alone"]


def test_the_pages_router_alone(store, people):
    c, _ = _mounted(pages.router, store, people["ann"][0])
    assert c.get("/label").status_code == 200 and c.get("/static/../app.py").status_code == 404


class FakeLabelStudio:
    """Label Studio's API as the webhook reads it: annotation 5 labels task 7, which is
    sample s0 (the open round's first task)."""

    def __init__(self):
        self.training = __import__("threading").Lock()

    def fetch(self, path: str) -> dict:
        return {"/api/annotations/5": {"id": 5, "task": 7, "completed_by": 2, "lead_time": 1.0,
                                       "result": [{"type": "choices",
                                                   "value": {"choices": ["card"]}}]},
                "/api/tasks/7": {"id": 7, "data": {"text": "x", "longtail_id": "s0"}}}[path]


def test_the_label_studio_router_alone_records_through_the_writer(store, people):
    c, svc = _mounted(label_studio.router, store, people["root"][0])
    from longtail.server.ml_backend import MLBackend

    c.app.dependency_overrides[label_studio.get_client] = FakeLabelStudio
    backend = MLBackend(store, svc.settings, None)
    c.app.dependency_overrides[label_studio.get_backend] = lambda: backend
    r = c.post("/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 5}})
    assert r.status_code == 200, r.text
    assert (r.json()["sample_id"], r.json()["new_labels"]) == ("s0", 1)
    assert svc.writer.calls == ["run_alone"]
    assert backend.worker.wait(timeout=60)
    backend.close()


def test_a_label_studio_annotation_takes_its_task_out_of_the_queue(store, people):
    """Before: the ML-backend webhook recorded the label beside the writer, so the
    service went on handing the task out until a restart settled it."""
    answers = {"/api/annotations/5": {"id": 5, "task": 7, "completed_by": 2,
                                      "result": [{"type": "choices",
                                                  "value": {"choices": ["card"]}}]},
               "/api/tasks/7": {"id": 7, "data": {"text": "x", "longtail_id": "s0"}}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    settings = ServerSettings(label_studio=True, label_studio_url="http://ls.example",
                              label_studio_token="t")
    c = TestClient(create_app(store.root, settings, ls_transport=httpx.MockTransport(handler)))
    assert c.post("/webhook", json={"action": "ANNOTATION_CREATED",
                                    "annotation": {"id": 5}}).status_code == 200
    head = {"Authorization": f"Bearer {people['ann'][1]}"}
    assert c.post("/tasks/lease", headers=head).json()["task"]["sample_id"] == "s1"


def test_app_module_is_small_and_uses_no_private_engine_names():
    src = (Path(__file__).parents[2] / "src/longtail/server")
    assert len((src / "app.py").read_text().splitlines()) < 150
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert "tasks._" not in text and "users._" not in text, f

