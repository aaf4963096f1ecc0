"""The CLI: a user mistake is one red line and exit code 2; JSON output parses."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from longtail.cli import app
from tests.conftest import make_pool, write_pool_csv

runner = CliRunner()


def test_full_cli_flow(tmp_path):
    proj = str(tmp_path / "p")
    X, y = make_pool(200)
    pool = write_pool_csv(tmp_path / "pool.csv", X, y)
    assert runner.invoke(app, ["init", proj]).exit_code == 0
    r = runner.invoke(app, ["ingest", str(pool), "-p", proj, "--id", "id", "--text", "text",
                            "--vector-prefix", "v", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["new"] == 200
    r = runner.invoke(app, ["query", "-p", proj, "-n", "10", "--strategy", "random",
                            "--out", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["status", "-p", proj, "--json"])
    assert json.loads(r.stdout)["rounds"] == 1
    r = runner.invoke(app, ["simulate", "-p", proj, "--truth", "truth", "--budget", "40",
                            "--batch", "20", "--strategy", "random", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["random"]["runs"][0]["labels_paid"] == [20, 40]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    proj = str(tmp_path / "p")
    runner.invoke(app, ["init", proj])
    (tmp_path / "x.csv").write_text("id,text\n1,a\n1,b\n")
    r = runner.invoke(app, ["ingest", str(tmp_path / "x.csv"), "-p", proj, "--text", "text"])
    assert r.exit_code == 2
    assert "duplicate id '1'" in r.output and "Traceback" not in r.output


def test_missing_project_exit_2(tmp_path):
    r = runner.invoke(app, ["status", "-p", str(tmp_path / "none")])
    assert r.exit_code == 2 and "no longtail project" in r.output


def test_loop_commands_forecast_and_stopping(tmp_path):
    import csv

    proj = str(tmp_path / "p")
    X, y = make_pool(900, classes=3, seed=4)
    pool = write_pool_csv(tmp_path / "pool.csv", X, y)
    runner.invoke(app, ["init", proj, "--eval-rate", "0.1"])
    runner.invoke(app, ["ingest", str(pool), "-p", proj, "--vector-prefix", "v"])
    truth = {f"s{i}": y[i] for i in range(len(y))}
    r = runner.invoke(app, ["forecast", "-p", proj])
    assert r.exit_code == 2 and "no model yet" not in r.output
    for i in range(3):
        batch = tmp_path / f"b{i}.csv"
        r = runner.invoke(app, ["query", "-p", proj, "-n", "50", "--out", str(batch)])
        assert r.exit_code == 0, (i, r.output, repr(r.exception))
        with open(batch) as f:
            ids = [row["id"] for row in csv.DictReader(f)]
        answers = tmp_path / f"a{i}.csv"
        answers.write_text("id,label\n" + "".join(f"{k},{truth[k]}\n" for k in ids))
        assert runner.invoke(app, ["import-labels", str(answers), "-p", proj]).exit_code == 0
        r = runner.invoke(app, ["train", "-p", proj])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["forecast", "-p", proj, "--target", "0.95", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["points"] == 3
    r = runner.invoke(app, ["stopping", "-p", proj, "--budget", "100", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["stop"] is True
    r = runner.invoke(app, ["status", "-p", proj])
    assert "verdict" in r.output


def test_query_with_a_yaml_selection_config(tmp_path):
    proj = str(tmp_path / "p")
    X, y = make_pool(300)
    runner.invoke(app, ["init", proj])
    runner.invoke(app, ["ingest", str(write_pool_csv(tmp_path / "pool.csv", X, y)), "-p", proj,
                        "--vector-prefix", "v"])
    cfg = tmp_path / "select.yaml"
    cfg.write_text("terms:\n  - {score: margin, weight: 1.0}\n  - {score: typicality, weight: 0.5}\n"
                   "balance: {by: predicted_class}\n")
    r = runner.invoke(app, ["query", "-p", proj, "-n", "20", "--strategy", "combine",
                            "--config", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["rows"]) == 20
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms: [unclosed\n")
    r = runner.invoke(app, ["query", "-p", proj, "-n", "20", "--strategy", "combine",
                            "--config", str(bad)])
    assert r.exit_code == 2 and "not valid YAML" in r.output
