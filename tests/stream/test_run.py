"""`longtail run`: watch a folder, ingest, import, retrain, write the next batch, stop;
every pass idempotent and resumable from the catalog."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine.eval_records import StoppingAnswer
from longtail.errors import InputError
from longtail.project import Project
from tests.conftest import make_pool, snapshot, write_csv, write_pool_csv
from tests.reads import read

runner = CliRunner()


@pytest.fixture
def inbox(tmp_path):
    X, y = make_pool(400, seed=3)
    (tmp_path / "inbox" / "data").mkdir(parents=True)
    (tmp_path / "inbox" / "labels").mkdir()
    truth = {f"s{i}": y[i] for i in range(len(y))}
    write_pool_csv(tmp_path / "inbox" / "data" / "a.csv", X[:250], y[:250])
    later = write_pool_csv(tmp_path / "later.csv", X[250:], y[250:], start=250)
    p = Project.init(tmp_path / "proj", eval_rate=0.1)
    yield p, tmp_path / "inbox", truth, later
    p.close()


def _answer(inbox, truth, round_id, name=None):
    batch = inbox / "batches" / f"round-{round_id:04d}.csv"
    ids = [r["id"] for r in csv.DictReader(open(batch))]
    write_csv(inbox / "labels" / (name or f"r{round_id}.csv"), ["id", "label", "annotator"],
              [[i, truth[i], "ann"] for i in ids])
    return ids


def _steps(result, step):
    return [e for e in result.events if e["step"] == step]


def test_a_pass_ingests_labels_trains_and_writes_the_next_batch(inbox):
    p, box, truth, later = inbox
    first = p.run(box, batch=30, retrain_every=20, vector_prefix="v", text="text",
                  max_passes=1, sleep=lambda s: None)
    assert [e["step"] for e in first.events] == ["ingest", "batch"]
    assert _steps(first, "ingest")[0]["new"] == 250
    ids = _answer(box, truth, 1)
    os.replace(later, box / "data" / "b.csv")
    second = p.run(box, batch=30, retrain_every=20, vector_prefix="v", text="text",
                   max_passes=1, sleep=lambda s: None)
    steps = [e["step"] for e in second.events]
    assert steps[:3] == ["ingest", "labels", "train"] and steps[-1] == "batch"
    assert _steps(second, "labels")[0]["new"] == len(ids)
    assert _steps(second, "train")[0]["labels"] == len(ids) - sum(
        1 for k in read(p.store, lambda u: u.rounds.items(1)) if k[2] == "eval")
    assert read(p.store, lambda u: u.samples.count()) == 400
    assert (box / "batches" / "round-0002.csv").exists()
    assert [v.round_id for v in p.versions()] == [1, 2]


def test_a_pass_with_nothing_new_changes_nothing(inbox):
    p, box, truth, _ = inbox
    opts = dict(batch=30, retrain_every=20, vector_prefix="v", text="text", max_passes=1,
                sleep=lambda s: None)
    p.run(box, **opts)
    _answer(box, truth, 1)
    p.run(box, **opts)
    before = snapshot(p)
    again = p.run(box, **opts)
    assert again.events == [] and snapshot(p) == before


def test_an_open_round_without_its_batch_file_gets_it_back(inbox):
    p, box, truth, _ = inbox
    opts = dict(batch=30, retrain_every=20, vector_prefix="v", text="text", max_passes=1,
                sleep=lambda s: None)
    p.run(box, **opts)
    batch = box / "batches" / "round-0001.csv"
    content = batch.read_text()
    batch.unlink()  # as if killed between the round's commit and the file's write
    r = p.run(box, **opts)
    assert _steps(r, "batch") == [{"step": "batch", "round": 1, "rewritten": True}]
    assert sorted(batch.read_text().splitlines()) == sorted(content.splitlines())
    assert len(read(p.store, lambda u: u.rounds.list())) == 1


def test_it_stops_when_the_budget_is_spent(inbox):
    p, box, truth, _ = inbox
    opts = dict(batch=30, retrain_every=10, vector_prefix="v", text="text", budget=20,
                sleep=lambda s: None)
    p.run(box, max_passes=1, **opts)
    _answer(box, truth, 1)
    r = p.run(box, max_passes=5, **opts)
    assert r.passes == 1 and "budget" in r.stopped
    assert _steps(r, "batch") == []  # no batch once a rule fired


def test_a_missing_folder_is_an_input_error(tmp_path, project):
    with pytest.raises(InputError, match="no such folder"):
        project.run(tmp_path / "nope", max_passes=1)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(inbox, tmp_path):
    p, box, truth, _ = inbox
    p.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "longtail.cli", "run", str(box), "-p", str(p.path), "--once",
           "--batch", "30", "--vector-prefix", "v", "--text", "text", "--json"]
    # killed after its first step (the ingest committed, no batch yet)
    r = subprocess.run(cmd, env={**env, "LONGTAIL_CRASH_AT": "run:step@1"}, capture_output=True)
    assert r.returncode == -signal.SIGKILL
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    resumed = json.loads(r.stdout)
    assert [e["step"] for e in resumed["events"]] == ["batch"]  # the ingest is not redone
    with Project(p.path) as again:
        assert read(again.store, lambda u: u.samples.count()) == 250
        assert len(read(again.store, lambda u: u.rounds.list())) == 1
        assert again.check().ok


def test_cli_run_once(inbox):
    p, box, truth, _ = inbox
    r = runner.invoke(app, ["run", str(box), "-p", str(p.path), "--once", "--batch", "20",
                            "--vector-prefix", "v", "--text", "text"])
    assert r.exit_code == 0, r.output
    assert "pass limit reached (1)" in r.stdout and (box / "batches" / "round-0001.csv").exists()
    r = runner.invoke(app, ["run", str(box), "-p", str(p.path), "--once", "--batch", "0"])
    assert r.exit_code == 2


def test_run_reads_data_files_with_the_first_ingests_columns(tmp_path):
    X, y = make_pool(120, seed=5)
    rows = [[f"m{i}", *X[i].tolist(), y[i]] for i in range(len(X))]
    header = ["msg_id", *[f"v{j}" for j in range(X.shape[1])], "truth"]
    (tmp_path / "inbox" / "data").mkdir(parents=True)
    write_csv(tmp_path / "first.csv", header, rows[:80])
    write_csv(tmp_path / "inbox" / "data" / "more.csv", header, rows[80:])
    with Project.init(tmp_path / "proj", eval_rate=0.1) as p:
        p.ingest(tmp_path / "first.csv", id="msg_id", vector_prefix="v")
        r = p.run(tmp_path / "inbox", batch=10, max_passes=1, sleep=lambda s: None)
        assert _steps(r, "ingest")[0]["new"] == 40 and read(p.store, lambda u: u.samples.count()) == 120
        assert read(p.store, lambda u: u.vectors.info("precomputed"))["n_rows"] == 120
        # a label file of the user's own, by the ingest's id column
        (tmp_path / "inbox" / "labels").mkdir()
        write_csv(tmp_path / "inbox" / "labels" / "mine.csv", ["msg_id", "label"],
                  [[f"m{i}", y[i]] for i in range(5)])
        r = p.run(tmp_path / "inbox", batch=10, max_passes=1, sleep=lambda s: None)
        assert _steps(r, "labels")[0]["new"] == 5


def test_run_prints_no_none_or_raw_float_and_can_ignore_the_stopping_rules(inbox, monkeypatch):
    import re

    from longtail.engine import evaluation

    p, box, truth, _ = inbox
    said: list[str] = []
    opts = dict(batch=30, retrain_every=10, vector_prefix="v", text="text", max_passes=1,
                sleep=lambda s: None, on_event=said.append)
    p.run(box, **opts)
    _answer(box, truth, 1)

    def says_stop(*a, **k):
        return StoppingAnswer(True, "forecast_gain: the next batch adds 0.06 points",
                              [{"stop": True, "rule": "forecast_gain", "reason": "small gain",
                                "value": 0.0006}], evidence={"enough": True})

    monkeypatch.setattr(evaluation, "stopping", says_stop)
    r = p.run(box, **opts)
    trained = _steps(r, "train")
    assert trained and "forecast_gain" in r.stopped and _steps(r, "batch") == []
    assert not any("None" in s or "nan" in s for s in said), said
    assert not any(re.search(r"\d\.\d{4,}", s) for s in said), said
    r = p.run(box, ignore_stopping=True, **opts)
    assert r.stopped == "pass limit reached (1)" and _steps(r, "batch")


def test_run_stops_at_the_money_budget(inbox):
    """`run --budget-money`: every batch is cut to what is left at predicted cost, and
    the loop stops once the money is spent; labels never take the spend past it."""
    p, box, truth, _ = inbox
    p.add_pool("crowd", "36/h", default=True)  # 10 s an answer: 0.10 each
    opts = dict(batch=30, retrain_every=10, vector_prefix="v", text="text", max_passes=1,
                sleep=lambda s: None, budget_money=4.0, seconds="seconds")
    result = p.run(box, **opts)
    for _ in range(20):
        batches = _steps(result, "batch")
        if not batches:
            break
        rid = batches[-1]["round"]
        ids = [r["id"] for r in csv.DictReader(open(box / "batches" / f"round-{rid:04d}.csv"))]
        write_csv(box / "labels" / f"r{rid}.csv", ["id", "label", "seconds"],
                  [[i, truth[i], 10] for i in ids])
        result = p.run(box, **opts)
    assert result.stopped.startswith("money budget spent")
    spend = p.costs()["total"]
    assert spend["total_money"] <= 4.0 and spend["label_money"] > 3.0
    assert spend["events"] < 40
