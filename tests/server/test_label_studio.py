"""Label Studio interop: tasks out in its import format (scored in longtail's order,
with predictions) and a labeling config; its JSON export back in as label events."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from longtail.cli import app as cli_app
from longtail.engine import data, labels, labelstudio, rounds, training
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError
from longtail.store import Store
from longtail.store import schema as s
from tests.conftest import make_pool, write_pool_csv
from tests.reads import read

from .conftest import LABELS, make_store

FIXTURE = Path(__file__).parent / "fixtures" / "label_studio_export.json"


def _events(st):
    with st.engine.connect() as conn:
        q = select(s.annotations.c.row, s.annotations.c.label, s.annotations.c.kind,
                   s.annotations.c.annotator, s.annotations.c.seconds, s.annotations.c.source)
        return [tuple(r) for r in conn.execute(q.order_by(s.annotations.c.id))]


def test_export_is_in_priority_order_by_score_with_a_matching_config(store):
    tasks = labelstudio.export_tasks(store, Settings.load(store))
    assert [t.data["longtail_id"] for t in tasks] == [f"s{i}" for i in range(10)]
    scores = [t.predictions[0]["score"] for t in tasks]
    # Label Studio sorts by prediction score, lowest first: that must be our order.
    assert sorted(range(10), key=lambda i: scores[i]) == list(range(10)) and len(set(scores)) == 10
    assert tasks[3].data["text"] == "text number 3" and tasks[0].predictions[0]["result"] == []
    root = ET.fromstring(labelstudio.labeling_config(LABELS))
    choices = root.find("Choices")
    assert choices.get("toName") == root.find("Text").get("name") == "text"
    assert [c.get("value") for c in choices] == LABELS
    odd = ['say "hi"', "a&b", "<x>"]
    assert [c.get("value") for c in ET.fromstring(labelstudio.labeling_config(odd)).find("Choices")] == odd
    with pytest.raises(ProjectError, match="no label set"):
        labelstudio.labeling_config([])
    with pytest.raises(InputError, match="no round 7"):
        labelstudio.export_tasks(store, Settings.load(store), 7)


def test_export_carries_the_current_models_predictions(tmp_path):
    st = Store.create(tmp_path / "p", {"seed": 0, "eval_rate": 0.1, "hashing": 2})
    try:
        X, y = make_pool(200)
        data.ingest(st, Settings.load(st), write_pool_csv(tmp_path / "pool.csv", X, y), id="id",
                    text="text", vector_prefix="v")
        truth = {f"s{i}": y[i] for i in range(200)}
        first = rounds.plan_round(st, Settings.load(st), 40, strategy="random")
        labels.record_labels(st, [labels.LabelEvent(i, truth[i]) for i in first.ids])
        training.train(st, Settings.load(st))
        nxt = rounds.plan_round(st, Settings.load(st), 20, strategy="random")
        tasks = labelstudio.export_tasks(st, Settings.load(st))
        preds = [t.predictions[0] for t in tasks]
        assert [t.data["longtail_id"] for t in tasks] == nxt.ids
        latest = read(st, lambda u: u.models.latest())
        assert {p["model_version"] for p in preds} == {f"longtail-model-{latest['id']}"}
        got = [p["result"][0]["value"]["choices"][0] for p in preds]
        assert set(got) <= set(np.unique(y))
        # A model trained on separable clusters agrees with the truth on most of them.
        assert np.mean([g == truth[t.data["longtail_id"]] for g, t in zip(got, tasks, strict=True)]) > 0.7
    finally:
        st.close()


def test_import_reads_choices_annotators_lead_time_and_cancelled(store):
    done = labelstudio.import_export(store, FIXTURE)
    assert (done.rows, done.new_labels, done.skipped) == (3, 2, 1)
    assert _events(store) == [(0, "card", "label", "10", 4.288, "import"),
                              (0, "", "skip", "bo@example.com", 1.5, "import"),
                              (3, "transfer", "label", "11", 9.0, "import")]


def test_import_errors_name_the_task_and_record_nothing(store, tmp_path):
    base = json.loads(FIXTURE.read_text())

    def bad(mutate, match):
        tasks = json.loads(json.dumps(base))
        mutate(tasks)
        p = tmp_path / "x.json"
        p.write_text(json.dumps(tasks))
        with pytest.raises(InputError, match=match):
            labelstudio.import_export(store, p)

    bad(lambda t: t[1]["data"].update(text="no such text"), r"task 2 \(Label Studio id 102\).*no sample")
    bad(lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=["card", "billing"]),
        r"task 1 .*annotation 1001: expected one choice.*'card', 'billing'")
    bad(lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=["cardz"]),
        "outside the project's label set.*'cardz'.*allowed: billing, card, transfer")
    bad(lambda t: t[0]["annotations"][0].update(lead_time="4s"), "lead_time '4s'")
    bad(lambda t: t[0]["data"].update(longtail_id="nope"), "unknown id.*'nope'")
    p = tmp_path / "y.json"
    p.write_text('{"tasks": []}')
    with pytest.raises(InputError, match="a list of tasks"):
        labelstudio.import_export(store, p)
    p.write_text("[1, 2")
    with pytest.raises(InputError, match="not a JSON file"):
        labelstudio.import_export(store, p)
    assert _events(store) == []


def test_cli_export_and_import(tmp_path):
    make_store(tmp_path / "p").close()
    out, cfg = tmp_path / "tasks.json", tmp_path / "config.xml"
    r = CliRunner().invoke(cli_app, ["label-studio", "export", "-p", str(tmp_path / "p"), "--out",
                                     str(out), "--label-studio-config", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(out.read_text())) == 10 and "<Choice value=\"card\"/>" in cfg.read_text()
    again = CliRunner().invoke(cli_app, ["label-studio", "export", "-p", str(tmp_path / "p"),
                                         "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    r = CliRunner().invoke(cli_app, ["label-studio", "import", str(FIXTURE), "-p",
                                     str(tmp_path / "p"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["new_labels"] == 2


def test_admin_routes_serve_the_tasks_and_the_config(store, people):
    from fastapi.testclient import TestClient

    from longtail.server.app import create_app

    c = TestClient(create_app(store.root))
    root = {"Authorization": f"Bearer {people['root'][1]}"}
    page = c.get("/admin/label-studio/tasks?offset=2&limit=3", headers=root).json()
    assert [t["data"]["longtail_id"] for t in page] == ["s2", "s3", "s4"]
    cfg = c.get("/admin/label-studio/config", headers=root).json()["config"]
    assert '<Choice value="transfer"/>' in cfg
    ann = {"Authorization": f"Bearer {people['ann'][1]}"}
    assert c.get("/admin/label-studio/tasks", headers=ann).status_code == 403


# -- ML-backend mode -------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path):
    """200 samples with vectors, 40 labeled and a model, a second round of 20 open."""
    st = Store.create(tmp_path / "p", {"seed": 0, "eval_rate": 0.1, "hashing": 2})
    X, y = make_pool(200)
    data.ingest(st, Settings.load(st), write_pool_csv(tmp_path / "pool.csv", X, y), id="id",
                text="text", vector_prefix="v")
    truth = {f"s{i}": str(y[i]) for i in range(200)}
    first = rounds.plan_round(st, Settings.load(st), 40, strategy="random")
    labels.record_labels(st, [labels.LabelEvent(i, truth[i]) for i in first.ids])
    training.train(st, Settings.load(st))
    nxt = rounds.plan_round(st, Settings.load(st), 20, strategy="random")
    yield st, truth, nxt
    st.close()


def _backend(st, answers, seen, retrain_every=20):
    import httpx
    from fastapi.testclient import TestClient

    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization")))
        if request.url.path in answers:
            return httpx.Response(200, json=answers[request.url.path])
        return httpx.Response(404, json={"detail": "not found"})

    settings = ServerSettings(label_studio=True, label_studio_url="http://ls.example:8080",
                              label_studio_token="ls-secret-token", retrain_every=retrain_every)
    return TestClient(create_app(st.root, settings, ls_transport=httpx.MockTransport(handler)))


def test_health_setup_and_predict_follow_the_ml_backend_protocol(trained):
    st, truth, nxt = trained
    c = _backend(st, {}, [])
    # The version names the model and the open round: it changes when the order does.
    version = f"longtail-model-{read(st, lambda u: u.models.latest())['id']}-round-{nxt.round_id}"
    assert c.get("/health").json() == {"status": "UP", "model_class": "longtail",
                                       "model_version": version}
    setup = {"project": "3.1712345678", "schema": "<View></View>", "hostname": "http://ls",
             "access_token": "x", "model_version": "", "extra_params": {}}
    assert c.post("/setup", json=setup).json() == {"model_version": version}
    first, last = nxt.ids[0], nxt.ids[-1]
    text_of = {e: t for chunk in read(st, lambda u: list(u.samples.iter())) for _, e, t, _ in chunk}
    tasks = [{"id": 9, "data": {"text": "unknown words", "meta_info": 1}},
             {"id": 8, "data": {"text": text_of[last]}},  # matched by its text
             {"id": 7, "data": {"text": text_of[first], "longtail_id": first}}]
    r = c.post("/predict", json={"tasks": tasks, "project": "3.1712345678",
                                 "label_config": "<View/>", "params": {"context": None}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_version"] == version and len(out["results"]) == 3
    unknown, by_text, by_id = out["results"]
    assert unknown["result"] == []
    for p in (by_text, by_id):
        choice = p["result"][0]
        assert (choice["type"], choice["from_name"], choice["to_name"]) == ("choices", "label", "text")
        assert choice["value"]["choices"][0] in set(truth.values())
        assert p["model_version"] == version
    # Lowest score first is longtail's order: the round's first task before its last,
    # and both before a task longtail does not know.
    assert by_id["score"] < by_text["score"] < unknown["score"]


def test_webhook_fetches_the_annotation_records_it_and_retrains(trained, caplog):
    import logging

    st, truth, nxt = trained
    ext = nxt.ids[nxt.kinds.index("selected")]  # a pool sample: a model trains on it
    wrong = next(v for v in sorted(set(truth.values())) if v != truth[ext])
    answers = {"/api/annotations/55": {"id": 55, "task": 77, "completed_by": 3, "lead_time": 2.5,
                                       "was_cancelled": False,
                                       "result": [{"type": "choices", "from_name": "label",
                                                   "to_name": "text",
                                                   "value": {"choices": [wrong]}}]},
               "/api/tasks/77": {"id": 77, "data": {"text": "t", "longtail_id": ext}}}
    seen = []
    c = _backend(st, answers, seen, retrain_every=1)
    before = read(st, lambda u: u.models.latest())["id"]
    # The payload's own result is not trusted: what Label Studio's API says is recorded.
    payload = {"action": "ANNOTATION_CREATED", "annotation": {"id": 55, "result": [
        {"type": "choices", "value": {"choices": [truth[ext]]}}]}, "project": {"id": 3}}
    with caplog.at_level(logging.DEBUG):
        r = c.post("/webhook", json=payload)
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["status"], got["sample_id"], got["new_labels"], got["retrain"]) == \
            ("recorded", ext, 1, "queued")
        assert c.app.state.service.ml_backend.worker.wait(timeout=60)
    assert read(st, lambda u: u.models.latest())["id"] == before + 1
    assert c.get("/health").json()["model_version"] == \
        f"longtail-model-{before + 1}-round-{nxt.round_id}"
    # After the retrain, the worker looks for longtail's backend to pin the new version.
    assert seen == [("/api/annotations/55", "Token ls-secret-token"),
                    ("/api/tasks/77", "Token ls-secret-token"),
                    ("/api/ml", "Token ls-secret-token")]
    (row,) = read(st, lambda u: u.samples.ids_to_rows([ext])).values()
    ev = read(st, lambda u: u.labels.events([row]))
    assert [(e["label"], e["annotator"], e["seconds"], e["source"]) for e in ev] == \
        [(wrong, "3", 2.5, "import")]
    assert "ls-secret-token" not in "\n".join(x.getMessage() for x in caplog.records
                                              if not x.name.startswith("httpx"))
    assert c.post("/webhook", json={"action": "PROJECT_UPDATED"}).json()["status"] == "ignored"
    r = c.post("/webhook", json={"action": "ANNOTATION_UPDATED", "annotation": {"id": 56}})
    assert r.status_code == 409 and "answered 404" in r.json()["detail"]
    assert "ls-secret-token" not in r.text
    assert c.post("/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 422


def test_ml_backend_mode_needs_the_url_and_token_and_is_off_by_default(trained):
    from fastapi.testclient import TestClient

    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings

    st, _, _ = trained
    with pytest.raises(ProjectError, match="LABEL_STUDIO_URL"):
        create_app(st.root, ServerSettings(label_studio=True))
    assert TestClient(create_app(st.root)).post("/predict", json={"tasks": []}).status_code in (404, 405)
    assert "ls-secret" not in repr(ServerSettings(label_studio_token="ls-secret"))


def test_export_and_import_labels_take_the_label_studio_format(tmp_path):
    """The same files through `longtail export --format label-studio` and
    `longtail import-labels --format label-studio`, the commands a user reaches first."""
    make_store(tmp_path / "p").close()
    out, cfg = tmp_path / "tasks.json", tmp_path / "config.xml"
    r = CliRunner().invoke(cli_app, ["export", str(out), "--format", "label-studio", "-p",
                                     str(tmp_path / "p"), "--label-studio-config", str(cfg),
                                     "--json"])
    assert r.exit_code == 0, r.output
    tasks = json.loads(out.read_text())
    assert len(tasks) == 10 and tasks[0]["data"]["longtail_id"] == "s0"
    assert "<Choice value=\"card\"/>" in cfg.read_text()
    r = CliRunner().invoke(cli_app, ["import-labels", str(FIXTURE), "--format", "label-studio",
                                     "-p", str(tmp_path / "p"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["new_labels"] == 2
    bad = CliRunner().invoke(cli_app, ["import-labels", str(FIXTURE), "--format", "xml",
                                       "-p", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "table or label-studio" in bad.output
