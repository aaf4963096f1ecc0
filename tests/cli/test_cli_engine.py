"""The CLI over the engine's round, label-schema, training and evaluation use cases:
`rounds`, `labels`, `init --labels`, import reports, `train --learner/--force`,
`evaluate --per-class`, `embed --features/--exclude`, `query --force`, warnings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from tests.conftest import make_pool, write_csv, write_pool_csv

runner = CliRunner()


def ok(args: list[str]):
    r = runner.invoke(app, args, terminal_width=200)
    assert r.exit_code == 0, (args, r.output)
    return r


def project_with_vectors(tmp_path: Path, n: int = 300, init: tuple = ()) -> tuple[str, dict]:
    proj = str(tmp_path / "p")
    X, y = make_pool(n, seed=3)
    ok(["init", proj, "--eval-rate", "0.1", *init])
    ok(["ingest", str(write_pool_csv(tmp_path / "pool.csv", X, y)), "-p", proj,
        "--vector-prefix", "v"])
    return proj, {f"s{i}": y[i] for i in range(n)}


def ids_of(batch: Path) -> list[str]:
    with open(batch, newline="") as f:
        return [row["id"] for row in csv.DictReader(f)]


def answer(tmp_path: Path, name: str, pairs: list[tuple[str, str]]) -> str:
    return str(write_csv(tmp_path / name, ["id", "label"], [list(p) for p in pairs]))


def test_rounds_export_writes_a_lost_batch_file_again(tmp_path):
    """A batch file lost after its round was committed (deleted, or the command killed
    before the write) can be written again, identical, from the catalog."""
    proj, _ = project_with_vectors(tmp_path)
    first = tmp_path / "batch.csv"
    ok(["query", "-p", proj, "-n", "15", "--strategy", "random", "--out", str(first)])
    original = first.read_text()
    first.unlink()
    again = tmp_path / "again.csv"
    r = ok(["rounds", "-p", proj, "--export", "1", "--out", str(again)])
    assert "round 1 (open, 15 samples) written to" in r.stdout
    assert again.read_text() == original
    r = runner.invoke(app, ["rounds", "-p", proj, "--export", "1", "--out", str(again)])
    assert r.exit_code == 2 and "already exists" in r.output
    ok(["rounds", "-p", proj, "--export", "1", "--out", str(again), "--force"])
    r = runner.invoke(app, ["rounds", "-p", proj, "--export", "7", "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "no round 7" in r.output
    r = runner.invoke(app, ["rounds", "-p", proj, "--export", "1"])
    assert r.exit_code == 2 and "go together" in r.output
    assert not (tmp_path / "x.csv").exists()


def test_rounds_lists_warns_and_cancels(tmp_path):
    proj, _ = project_with_vectors(tmp_path)
    ok(["query", "-p", proj, "-n", "20", "--strategy", "random"])
    r = ok(["query", "-p", proj, "-n", "20", "--strategy", "random"])
    assert "round(s) 1 still open" in r.stderr
    rounds = json.loads(ok(["rounds", "-p", proj, "--json"]).stdout)
    assert [(x["id"], x["status"], x["size"], x["labeled"]) for x in rounds] == \
        [(1, "open", 20, 0), (2, "open", 20, 0)]
    assert "random" in ok(["rounds", "-p", proj]).stdout
    r = ok(["rounds", "-p", proj, "--cancel", "1"])
    assert "round 1 cancelled" in r.stdout
    assert [x["status"] for x in json.loads(ok(["rounds", "-p", proj, "--json"]).stdout)] == \
        ["cancelled", "open"]
    r = runner.invoke(app, ["rounds", "-p", proj, "--cancel", "1"])
    assert r.exit_code == 2 and "not open" in r.output
    r = runner.invoke(app, ["rounds", "-p", proj, "--cancel", "9", "--json"])
    assert r.exit_code == 2 and "no round 9" in json.loads(r.stdout)["error"]["message"]
    r = runner.invoke(app, ["rounds", "-p", proj, "--cancel", "0"])
    assert r.exit_code == 2 and "--cancel must be at least 1" in r.output


def test_query_out_refuses_to_overwrite_without_force(tmp_path):
    proj, _ = project_with_vectors(tmp_path)
    out = tmp_path / "batch.csv"
    out.write_text("keep me\n")
    r = runner.invoke(app, ["query", "-p", proj, "-n", "10", "--out", str(out)])
    assert r.exit_code == 2 and str(out) in r.output
    assert out.read_text() == "keep me\n"
    assert json.loads(ok(["status", "-p", proj, "--json"]).stdout)["rounds"] == 0
    ok(["query", "-p", proj, "-n", "10", "--out", str(out), "--force"])
    assert len(ids_of(out)) == 10


def test_a_fixed_label_set_refuses_other_labels(tmp_path):
    proj, _ = project_with_vectors(tmp_path, init=("--labels", "c0,c1"))
    assert json.loads(ok(["labels", "show", "-p", proj, "--json"]).stdout) == \
        {"labels": ["c0", "c1"]}
    r = runner.invoke(app, ["import-labels", answer(tmp_path, "a.csv", [("s0", "c0"),
                                                                       ("s1", "c2")]), "-p", proj])
    assert r.exit_code == 2 and "'c2'" in r.output and "allowed: c0, c1" in r.output
    assert json.loads(ok(["status", "-p", proj, "--json"]).stdout)["annotations"] == 0
    assert "3 labels: 'c0', 'c1', 'c2'" in ok(["labels", "add", "c2", "-p", proj]).stdout
    ok(["import-labels", str(tmp_path / "a.csv"), "-p", proj])
    r = runner.invoke(app, ["labels", "set", "a,b", "-p", proj, "--json"])
    assert r.exit_code == 2 and "'c0', 'c2'" in json.loads(r.stdout)["error"]["message"]
    assert json.loads(ok(["labels", "set", "c0,c2,d", "-p", proj, "--json"]).stdout)["labels"] \
        == ["c0", "c2", "d"]
    r = runner.invoke(app, ["labels", "set", "a,,b", "-p", proj])
    assert r.exit_code == 2 and "empty items" in r.output


def test_import_reports_new_classes_changes_and_skips(tmp_path):
    proj, _ = project_with_vectors(tmp_path)
    ok(["import-labels", answer(tmp_path, "a.csv", [("s0", "c0"), ("s1", "c1")]), "-p", proj])
    r = ok(["import-labels", answer(tmp_path, "b.csv", [("s0", "c1"), ("s2", "cat"),
                                                       ("s3", "Cat"), ("s4", "")]), "-p", proj])
    assert "2 new labels" in r.stdout and "1 changed" in r.stdout and "1 skipped" in r.stdout
    assert "2 new class(es): 'Cat', 'cat'" in r.stderr
    assert "label 'Cat' (1 row(s)) is not a known class but looks like 'cat'" in r.stderr
    rep = json.loads(ok(["import-labels", str(tmp_path / "b.csv"), "-p", proj, "--json"]).stdout)
    assert rep["new_labels"] == 0 and rep["changed"] == 0


def _labeled_project(tmp_path: Path) -> str:
    """Two labeled rounds and model 1, trained after the first (the second round's eval
    rows come once there is a model); the second round's labels are not trained on."""
    proj, truth = project_with_vectors(tmp_path, n=400)
    for i in (1, 2):
        batch = tmp_path / f"b{i}.csv"
        ok(["query", "-p", proj, "-n", "80", "--strategy", "random", "--out", str(batch)])
        ok(["import-labels", answer(tmp_path, f"a{i}.csv",
                                    [(k, truth[k]) for k in ids_of(batch)]), "-p", proj])
        if i == 1:
            ok(["train", "-p", proj])
    return proj


def test_train_skips_when_nothing_is_new_unless_forced(tmp_path):
    proj = _labeled_project(tmp_path)
    ok(["train", "-p", proj])
    r = ok(["train", "-p", proj])
    assert "nothing new to train on (model 2)" in r.stdout
    assert json.loads(ok(["status", "-p", proj, "--json"]).stdout)["models"] == 2
    ok(["train", "-p", proj, "--force"])
    assert json.loads(ok(["status", "-p", proj, "--json"]).stdout)["models"] == 3


def test_train_with_a_learner_and_params(tmp_path):
    proj = _labeled_project(tmp_path)
    r = ok(["train", "-p", proj, "--learner", "sklearn.neighbors.KNeighborsClassifier",
            "--learner-param", "n_neighbors=3", "--json"])
    assert json.loads(r.stdout)["model_id"] == 2
    r = runner.invoke(app, ["train", "-p", proj, "--learner-param", "n_neighbors", "--force"])
    assert r.exit_code == 2 and "n_neighbors" in r.output and "Traceback" not in r.output


def test_evaluate_per_class_and_confusion(tmp_path):
    proj = _labeled_project(tmp_path)
    ok(["train", "-p", proj])
    r = ok(["evaluate", "-p", proj, "--per-class"])
    assert "per class" in r.stdout and "confusion" in r.stdout
    assert all(c in r.stdout for c in ("c0", "c1", "c2"))
    res = json.loads(ok(["evaluate", "-p", proj, "--json"]).stdout)
    conf = res["confusion"]
    assert sum(map(sum, conf["matrix"])) == res["n"]
    assert {k: v["support"] for k, v in res["per_class"].items()} == \
        {lab: sum(row) for lab, row in zip(conf["labels"], conf["matrix"], strict=True)
         if sum(row)}
    assert "per class" not in ok(["evaluate", "-p", proj]).stdout


@pytest.mark.parametrize("args,line", [
    (["--exclude", "digit"], "tabular: 8 columns (v0..v7) -> 8 dims"),
    (["--features", "v0,v1"], "tabular: 2 columns (v0, v1) -> 2 dims"),
])
def test_embed_tabular_columns_are_chosen_and_shown(tmp_path, args, line):
    X, y = make_pool(120, seed=1)
    rows = [[f"s{i}", *X[i].tolist(), int(y[i][1:])] for i in range(len(X))]
    pool = write_csv(tmp_path / "t.csv", ["id", *[f"v{j}" for j in range(8)], "digit"], rows)
    proj = str(tmp_path / "p")
    ok(["init", proj])
    ok(["ingest", str(pool), "-p", proj])
    r = ok(["embed", "-p", proj, "--encoder", "tabular", *args])
    assert line in r.stdout


def test_status_shows_its_warnings(tmp_path):
    proj = _labeled_project(tmp_path)
    st = json.loads(ok(["status", "-p", proj, "--json"]).stdout)
    assert 0 < st["labeled_eval"] < 100 and st["warnings"]  # a tiny eval set
    out = ok(["status", "-p", proj]).stderr
    assert all(w[:40] in out.replace("\n", " ") for w in st["warnings"])
