"""Issue 27, findings 7-10: Label Studio live mode at scale and in order. /predict and
the webhook take a 1,000-task batch whatever `--max-body` says; every prediction
carries the served version and a score over the whole pool (the open round first, then
the model's order beyond it); Label Studio's backend is renamed to the new version
after a retrain, which moves its pinned `model_version`; `--auto-round` plans the next
round; an annotation sent twice is recorded once; one Label Studio project per server;
the webhook answers before any training; `label-studio sync` records what webhooks
missed, once."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from longtail.engine import data, labels, rounds, training
from longtail.engine.settings import Settings
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import Store
from tests.conftest import make_pool, write_pool_csv
from tests.reads import read

LS = "http://ls.example:8080"


@pytest.fixture
def pool(tmp_path):
    """1,200 samples with vectors, 60 labeled, a model, an open round of 30."""
    st = Store.create(tmp_path / "p", {"seed": 0, "eval_rate": 0.0, "hashing": 2})
    X, y = make_pool(1200)
    data.ingest(st, Settings.load(st), write_pool_csv(tmp_path / "pool.csv", X, y), id="id",
                text="text", vector_prefix="v")
    truth = {f"s{i}": str(y[i]) for i in range(1200)}
    first = rounds.plan_round(st, Settings.load(st), 60, strategy="random")
    labels.record_labels(st, [labels.LabelEvent(i, truth[i]) for i in first.ids])
    training.train(st, Settings.load(st))
    nxt = rounds.plan_round(st, Settings.load(st), 30, strategy="random")
    yield st, truth, nxt, first
    st.close()


class FakeLS:
    """Label Studio's API as longtail reads it: annotations and tasks by id, the
    project's ML backends (renamed by PATCH), tasks lists for sync."""

    def __init__(self):
        self.annotations: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.backends = [{"id": 4, "title": "longtail", "model_version": "", "project": 3,
                          "url": "http://longtail:9090", "auth_method": "NONE"}]
        self.seen: list[tuple[str, str, object]] = []
        # The webhook Label Studio makes when a model is connected, and one of the team's.
        self.webhooks = [{"id": 1, "url": "http://longtail:9090/webhook", "headers": {},
                          "send_for_all_actions": True},
                         {"id": 2, "url": "http://elsewhere/hook", "headers": {"X": "y"}}]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        self.seen.append((request.method, path, body))
        if path.startswith("/api/annotations/"):
            got = self.annotations.get(int(path.rsplit("/", 1)[1]))
            return httpx.Response(200, json=got) if got else httpx.Response(404, json={})
        if path.startswith("/api/tasks/"):
            got = self.tasks.get(int(path.rsplit("/", 1)[1]))
            return httpx.Response(200, json=got) if got else httpx.Response(404, json={})
        if path == "/api/tasks":
            q = parse_qs(request.url.query.decode())
            page, size = int(q["page"][0]), int(q["page_size"][0])
            listed = [{**t, "annotations": [a for a in self.annotations.values()
                                            if a["task"] == t["id"]]}
                      for t in sorted(self.tasks.values(), key=lambda t: t["id"])]
            return httpx.Response(200, json={"tasks": listed[(page - 1) * size: page * size],
                                             "total": len(listed)})
        if path == "/api/ml":
            return httpx.Response(200, json=self.backends)
        if path == "/api/webhooks":
            return httpx.Response(200, json=self.webhooks)
        if path.startswith("/api/webhooks/") and request.method == "PATCH":
            h = next(h for h in self.webhooks if h["id"] == int(path.rsplit("/", 1)[1]))
            h.update(body)
            return httpx.Response(200, json=h)
        if path.startswith("/api/ml/") and request.method == "PATCH":
            b = next(b for b in self.backends if b["id"] == int(path.rsplit("/", 1)[1]))
            b["title"] = body["title"]
            return httpx.Response(200, json=b)
        return httpx.Response(404, json={"detail": "not found"})

    def annotate(self, ann: int, task: int, ext: str, label: str | None, who: int = 1,
                 seconds: float = 2.0) -> None:
        self.tasks[task] = {"id": task, "data": {"text": "t", "longtail_id": ext}}
        self.annotations[ann] = {
            "id": ann, "task": task, "completed_by": who, "lead_time": seconds,
            "was_cancelled": label is None, "updated_at": f"2026-12-05T00:00:{ann % 60:02d}Z",
            "result": [] if label is None else [{"type": "choices", "from_name": "label",
                                                 "to_name": "text",
                                                 "value": {"choices": [label]}}]}


def backend(st, fake, **kw):
    settings = ServerSettings(label_studio=True, label_studio_url=LS,
                              label_studio_token="legacy-key", **kw)
    return TestClient(create_app(st.root, settings, ls_transport=httpx.MockTransport(fake)))


def hook(ann: int, action: str = "ANNOTATION_CREATED", project: int = 3) -> dict:
    return {"action": action, "annotation": {"id": ann}, "project": {"id": project}}


def ls_tasks(st, n: int, pad: int = 600) -> list[dict]:
    """`n` tasks as Label Studio sends them to /predict (about 835 bytes each)."""
    ext = [e for chunk in read(st, lambda u: list(u.samples.iter())) for _, e, _, _ in chunk][:n]
    return [{"id": 1000 + i, "data": {"text": "x" * pad, "longtail_id": e}, "meta": {},
             "created_at": "2026-12-05T10:00:00.000000Z", "updated_at":
             "2026-12-05T10:00:00.000000Z", "is_labeled": False, "overlap": 1,
             "inner_id": i + 1, "total_annotations": 0, "cancelled_annotations": 0,
             "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
             "last_comment_updated_at": None, "project": 3, "updated_by": None,
             "file_upload": 1, "comment_authors": [], "annotations": [], "predictions": []}
            for i, e in enumerate(ext)]


def test_predict_and_the_tasks_created_webhook_take_1000_tasks_past_max_body(pool):
    """Finding 7: --max-body 65536 refused /predict from 80 tasks; the ML-backend routes
    have their own limit, sized for Label Studio's batches."""
    st, _, _, _ = pool
    c = backend(st, FakeLS(), max_body=65536)
    batch = ls_tasks(st, 1000)
    body = json.dumps({"tasks": batch, "project": "3.1764928800", "label_config": "<View/>",
                       "params": {"login": None, "password": None, "context": None}})
    assert len(body) > 800_000
    r = c.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["results"]) == 1000
    created = {"action": "TASKS_CREATED", "project": {"id": 3}, "tasks": batch}
    r = c.post("/webhook", json=created)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    # The rest of the service keeps --max-body.
    assert c.post("/tasks/lease", content=b"x" * 70_000).status_code == 413
    small = backend(st, FakeLS(), max_ml_body=4096)
    assert small.post("/predict", content=body,
                      headers={"content-type": "application/json"}).status_code == 413


def test_scores_order_the_whole_pool_and_every_prediction_carries_the_served_version(pool):
    """Finding 8: the open round first by position, then the rest of the unlabeled
    pool by the model's margin; unknown-only batches under the served version too."""
    st, _, nxt, first = pool
    c = backend(st, FakeLS())
    version = c.get("/health").json()["model_version"]
    assert version == f"longtail-model-{read(st, lambda u: u.models.latest())['id']}-round-{nxt.round_id}"
    batch = ls_tasks(st, 1200, pad=5)
    out = c.post("/predict", json={"tasks": batch, "project": "3.1"}).json()["results"]
    assert {p["model_version"] for p in out} == {version}
    score = {t["data"]["longtail_id"]: p["score"] for t, p in zip(batch, out, strict=True)}
    in_round = [score[e] for e in nxt.ids]
    assert in_round == sorted(in_round) and len(set(in_round)) == len(in_round)
    labeled = set(first.ids)
    beyond = {e: s for e, s in score.items() if e not in labeled and e not in set(nxt.ids)}
    assert max(in_round) < min(beyond.values())  # the round first
    assert all(score[e] == 1.0 for e in labeled)
    assert len(set(beyond.values())) == len(beyond)  # a total order, not ties at 1.0
    # Beyond the round: smallest margin (most uncertain) first.
    from longtail.engine import views
    from longtail.engine.models import load_model
    from longtail.loop.simulate import predict_rows

    rows_of = read(st, lambda u: u.samples.ids_to_rows(list(beyond)))
    order = sorted(beyond, key=beyond.get)
    with st.reading() as uow:
        latest = uow.models.latest()
        vs = views.vectors(uow, Settings.load(st), latest["encoder"], complete=False)
        model = load_model(uow, latest)
    p = np.sort(predict_rows(model, vs, np.asarray([rows_of[e] for e in order])), axis=1)
    margins = p[:, -1] - p[:, -2]
    assert np.all(np.diff(margins) >= -1e-6)
    # An answered item of the open round is done: it leaves the front (Label Studio
    # would serve it again after its annotation there is deleted).
    labels.record_labels(st, [labels.LabelEvent(nxt.ids[0], "c0")])
    st_version = c.post("/predict", json={"tasks": batch[:5], "project": "3.1"}).json()
    assert st_version["model_version"] == version  # same model, same round
    again = c.app.state.service.ml_backend
    again._order = None  # as after a restart: the order read afresh
    out = c.post("/predict", json={"tasks": batch, "project": "3.1"}).json()["results"]
    score = {t["data"]["longtail_id"]: p["score"] for t, p in zip(batch, out, strict=True)}
    assert score[nxt.ids[0]] == 1.0 and score[nxt.ids[1]] == 0.0
    # A batch of tasks longtail does not know: the served version, not a bogus one
    # (Label Studio would ask again on every retrieval).
    unknown = c.post("/predict", json={"tasks": [{"id": 1, "data": {"text": "never seen"}}]})
    assert unknown.json()["model_version"] == version
    assert unknown.json()["results"] == [{"result": [], "score": 1.0, "model_version": version}]


def _retrained(c, n: int = 1) -> None:
    assert c.app.state.service.ml_backend.worker.wait(timeout=120)


def test_after_a_retrain_the_backend_is_renamed_to_the_new_version(pool):
    """Finding 8: Label Studio pins the project's model_version to its backend's
    title; renaming the backend to the served version moves the pin along."""
    st, truth, nxt, _ = pool
    fake = FakeLS()
    fake.annotate(55, 77, nxt.ids[0], truth[nxt.ids[0]])
    c = backend(st, fake, retrain_every=1)
    before = read(st, lambda u: u.models.latest())["id"]
    assert c.post("/webhook", json=hook(55)).json()["retrain"] == "queued"
    _retrained(c)
    assert read(st, lambda u: u.models.latest())["id"] == before + 1
    new = f"longtail-model-{before + 1}-round-{nxt.round_id}"
    assert ("PATCH", "/api/ml/4", {"title": new, "url": "http://longtail:9090", "project": 3,
                                   "auth_method": "NONE"}) in fake.seen
    assert fake.backends[0]["title"] == new == c.get("/health").json()["model_version"]
    # Another team's backend on the project is left alone.
    fake.backends.append({"id": 9, "title": "their model", "model_version": "v7"})
    fake.annotate(56, 78, nxt.ids[1], truth[nxt.ids[1]])
    c.post("/webhook", json=hook(56))
    _retrained(c)
    assert not any(m == "PATCH" and p == "/api/ml/9" for m, p, _ in fake.seen)


def test_auto_round_plans_the_next_round_when_one_closes(pool):
    st, truth, nxt, _ = pool
    # Every item of the open round but the last answered already.
    labels.record_labels(st, [labels.LabelEvent(e, truth[e]) for e in nxt.ids[:-1]])
    fake = FakeLS()
    fake.annotate(60, 90, nxt.ids[-1], truth[nxt.ids[-1]])
    c = backend(st, fake, retrain_every=1000, auto_round=25)
    r = c.post("/webhook", json=hook(60))
    assert r.status_code == 200, r.text
    _retrained(c)
    open_rounds = [x for x in read(st, lambda u: u.rounds.list()) if x["status"] == "open"]
    assert len(open_rounds) == 1 and open_rounds[0]["id"] > nxt.round_id
    assert len(read(st, lambda u: u.rounds.items(open_rounds[0]["id"]))) == 25
    assert c.get("/health").json()["model_version"].endswith(f"-round-{open_rounds[0]['id']}")
    assert c.app.state.service.ml_backend.worker.planned == [open_rounds[0]["id"]]
    with pytest.raises(Exception, match="--label-studio"):
        ServerSettings(auto_round=10)


def test_an_annotation_sent_twice_is_recorded_once(pool):
    """Finding 9: the webhook Label Studio made plus the one the docs added delivered
    every event twice; skips were recorded twice."""
    st, truth, nxt, _ = pool
    fake = FakeLS()
    ext = nxt.ids[2]
    fake.annotate(70, 80, ext, None)  # a skip
    c = backend(st, fake)
    (row,) = read(st, lambda u: u.samples.ids_to_rows([ext])).values()
    assert c.post("/webhook", json=hook(70)).json()["status"] == "recorded"
    assert c.post("/webhook", json=hook(70)).json()["status"] == "repeat"
    assert c.post("/webhook", json=hook(70, "ANNOTATION_UPDATED")).json()["status"] == "repeat"
    assert [e["kind"] for e in read(st, lambda u: u.labels.events([row]))] == ["skip"]
    # The annotator answers after all: an update to a label is new, once.
    fake.annotate(70, 80, ext, truth[ext])
    assert c.post("/webhook", json=hook(70, "ANNOTATION_UPDATED")).json()["status"] == "recorded"
    assert c.post("/webhook", json=hook(70)).json()["status"] == "repeat"
    assert [(e["kind"], e["label"]) for e in read(st, lambda u: u.labels.events([row]))] == \
        [("skip", ""), ("label", truth[ext])]


def test_one_label_studio_project_per_server(pool):
    """Finding 9: a second Label Studio project is refused with a 409 naming both."""
    st, truth, nxt, _ = pool
    fake = FakeLS()
    fake.annotate(80, 81, nxt.ids[3], truth[nxt.ids[3]])
    c = backend(st, fake)
    assert c.post("/setup", json={"project": "3.1764928800", "schema": "<View/>"}).status_code == 200
    for r in (c.post("/setup", json={"project": "5.1764928999", "schema": "<View/>"}),
              c.post("/predict", json={"tasks": [], "project": "5.1764928999"}),
              c.post("/webhook", json=hook(80, project=5))):
        assert r.status_code == 409, r.text
        assert "Label Studio project 3" in r.json()["detail"] and "project 5" in r.json()["detail"]
    assert read(st, lambda u: u.labels.events(list(u.samples.ids_to_rows([nxt.ids[3]]).values()))) == []
    assert c.post("/webhook", json=hook(80)).json()["status"] == "recorded"
    # Kept across restarts; moved only on purpose.
    again = backend(st, fake)
    assert again.post("/setup", json={"project": "5.1", "schema": ""}).status_code == 409
    moved = backend(st, fake, label_studio_project=5)
    assert moved.post("/setup", json={"project": "5.1", "schema": ""}).status_code == 200
    assert moved.post("/setup", json={"project": "3.1", "schema": ""}).status_code == 409


def test_the_webhook_answers_before_training_and_no_retrain_is_lost(pool, monkeypatch):
    """Finding 10: retraining inside the webhook took ~2.7 s, past Label Studio's 1 s
    webhook timeout. Now the webhook answers while the model still trains, and labels
    that arrive meanwhile get a retrain of their own."""
    st, truth, nxt, _ = pool
    release, started = threading.Event(), threading.Event()
    real = training.train
    calls = []

    def slow(*a, **kw):  # trains on the labels it read, then is slow to finish
        calls.append(1)
        done = real(*a, **kw)
        started.set()
        release.wait(30)
        return done

    monkeypatch.setattr(training, "train", slow)
    fake = FakeLS()
    for k in range(3):
        fake.annotate(90 + k, 190 + k, nxt.ids[4 + k], truth[nxt.ids[4 + k]])
    c = backend(st, fake, retrain_every=1)
    before = read(st, lambda u: u.models.latest())["id"]
    answered = []
    t = threading.Thread(target=lambda: answered.append(c.post("/webhook", json=hook(90))))
    t.start()
    t.join(15)
    assert answered and answered[0].status_code == 200, "the webhook waited for training"
    assert started.wait(15) and not release.is_set()
    # Two more labels while the model trains: answered at once too.
    for k in (91, 92):
        assert c.post("/webhook", json=hook(k)).json()["retrain"] == "queued"
    assert len(calls) == 1  # still in the first retrain
    release.set()
    _retrained(c)
    # The labels that came during the first retrain got one after it.
    assert read(st, lambda u: u.models.latest())["id"] == before + len(calls) and len(calls) == 2
    latest = read(st, lambda u: u.models.latest())
    with st.reading() as uow:
        from longtail.engine import views

        assert int(latest["n_labels"]) == len(views.labeled(uow, "pool")[0])


def test_sync_records_what_the_webhooks_missed_once(pool, monkeypatch):
    st, truth, nxt, _ = pool
    fake = FakeLS()
    ids = nxt.ids[:5]
    fake.annotate(100, 200, ids[0], truth[ids[0]])
    c = backend(st, fake)
    c.post("/webhook", json=hook(100))  # one came through the webhook
    fake.annotate(101, 201, ids[1], truth[ids[1]])
    fake.annotate(102, 202, ids[2], None)  # a skip the webhook missed
    fake.annotate(103, 203, ids[3], truth[ids[3]], who=2)
    fake.tasks[204] = {"id": 204, "data": {"text": "unknown to longtail"}}
    fake.annotations[104] = {**fake.annotations[103], "id": 104, "task": 204}
    from longtail.interop import label_studio_api

    monkeypatch.setattr(label_studio_api, "default_transport", httpx.MockTransport(fake))
    monkeypatch.setattr(label_studio_api, "PAGE", 2)  # several pages
    from longtail.cli import app as cli_app

    run = ["label-studio", "sync", "-p", str(st.root), "--url", LS, "--token", "k", "--json"]
    r = CliRunner().invoke(cli_app, run)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert (got["project"], got["tasks"], got["annotations"], got["recorded"], got["repeats"]) \
        == (3, 5, 4, 3, 1)
    assert got["unmatched_tasks"] == [204] and got["labels"]["skipped"] == 1
    again = json.loads(CliRunner().invoke(cli_app, run).output)
    assert (again["recorded"], again["repeats"]) == (0, 4)
    rows = read(st, lambda u: u.samples.ids_to_rows(ids[:4]))
    assert len(read(st, lambda u: u.labels.events(sorted(rows.values())))) == 4
    other = CliRunner().invoke(cli_app, [*run[:-1], "--ls-project", "8"])
    assert other.exit_code != 0 and "Label Studio project 3, not 8" in other.output


def test_connecting_pins_the_version_and_gives_label_studios_webhook_the_basic_auth(pool):
    """On connect Label Studio pins its backend's title and makes a webhook to
    <backend>/webhook without credentials: under --ml-auth every event would be 401.
    longtail renames the backend and adds the Authorization header, once."""
    st, _, _, _ = pool
    fake = FakeLS()
    c = backend(st, fake, ml_auth="labelstudio:pw")
    auth = {"Authorization": "Basic " + base64.b64encode(b"labelstudio:pw").decode()}
    r = c.post("/setup", json={"project": "3.1", "schema": "<View/>"}, headers=auth)
    assert r.status_code == 200
    _retrained(c)
    assert fake.backends[0]["title"] == r.json()["model_version"]
    assert fake.webhooks[0]["headers"] == auth
    assert fake.webhooks[1]["headers"] == {"X": "y"}  # not ours: left alone
    patches = [x for x in fake.seen if x[0] == "PATCH"]
    c.post("/setup", json={"project": "3.1", "schema": "<View/>"}, headers=auth)
    _retrained(c)
    assert [x for x in fake.seen if x[0] == "PATCH"] == patches  # once per version
