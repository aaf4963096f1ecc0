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

from .conftest import LABELS, make_store

FIXTURE = Path(__file__).parent / "fixtures" / "label_studio_export.json"


def _events(st):
    with st.engine.connect() as conn:
        q = select(s.annotations.c.row, s.annotations.c.label, s.annotations.c.kind,
                   s.annotations.c.annotator, s.annotations.c.seconds, s.annotations.c.source)
        return [tuple(r) for r in conn.execute(q.order_by(s.annotations.c.id))]


def test_export_is_in_priority_order_by_score_with_a_matching_config(store):
    tasks = labelstudio.export_tasks(store, Settings.load(store))
    assert [t["data"]["longtail_id"] for t in tasks] == [f"s{i}" for i in range(10)]
    scores = [t["predictions"][0]["score"] for t in tasks]
    # Label Studio sorts by prediction score, lowest first: that must be our order.
    assert sorted(range(10), key=lambda i: scores[i]) == list(range(10)) and len(set(scores)) == 10
    assert tasks[3]["data"]["text"] == "text number 3" and tasks[0]["predictions"][0]["result"] == []
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
        preds = [t["predictions"][0] for t in tasks]
        assert [t["data"]["longtail_id"] for t in tasks] == nxt.ids
        assert {p["model_version"] for p in preds} == {f"longtail-model-{st.latest_model()['id']}"}
        got = [p["result"][0]["value"]["choices"][0] for p in preds]
        assert set(got) <= set(np.unique(y))
        # A model trained on separable clusters agrees with the truth on most of them.
        assert np.mean([g == truth[t["data"]["longtail_id"]] for g, t in zip(got, tasks, strict=True)]) > 0.7
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
