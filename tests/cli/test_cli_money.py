"""`longtail pools` and `longtail costs` through the CLI: what a team lead types to see
what labeling and compute cost them; bad input is one message, exit 2, nothing changed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from longtail.cli import app
from tests.cli.test_cli_engine import ok, project_with_vectors

runner = CliRunner()


def test_pools_costs_and_status_show_the_money(tmp_path: Path):
    proj, truth = project_with_vectors(tmp_path, n=200)
    ok(["pools", "add", "crowd", "--rate", "20/h", "--member", "ann", "-p", proj])
    ok(["pools", "add", "expert", "--rate", "80/h", "--where", "label=c2", "-p", proj])
    listed = json.loads(ok(["pools", "-p", proj, "--json"]).stdout)
    assert [(p["name"], p["rate"], p["default"]) for p in listed] == [
        ("crowd", 20.0, True), ("expert", 80.0, False)]
    batch = tmp_path / "b.csv"
    ok(["query", "-n", "20", "--strategy", "random", "-p", proj, "--out", str(batch)])
    with open(batch, newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "seconds"])
        w.writerows([i, truth[i], 45] for i in ids)
    ok(["import-labels", str(labels), "-p", proj, "--seconds", "seconds"])
    ok(["train", "-p", proj])
    report = json.loads(ok(["costs", "-p", proj, "--json", "--cpu-rate", "0.10/h"]).stdout)
    n_exp = sum(truth[i] == "c2" for i in ids)
    want = n_exp * 45 / 3600 * 80 + (20 - n_exp) * 45 / 3600 * 20
    assert abs(report["total"]["label_money"] - want) < 1e-4
    assert report["total"]["commands"] >= 4 and report["total"]["cpu_seconds"] > 0
    shown = ok(["costs", "-p", proj]).stdout
    assert "pool expert" in shown and "labeling" in shown and "compute" in shown
    model = json.loads(ok(["costs", "-p", proj, "--json", "--model"]).stdout)["model"]
    assert model["answers"] == 20 and model["unit"] == "money"
    assert model["heldout"]["lo"] <= model["heldout"]["mae"] <= model["heldout"]["hi"]
    assert "cost model" in ok(["costs", "-p", proj, "--model"]).stdout
    status = json.loads(ok(["status", "-p", proj, "--json"]).stdout)
    assert abs(status["spend"]["label_money"] - want) < 1e-3
    assert "spend" in ok(["status", "-p", proj]).stdout


def test_a_bad_rate_is_one_message_and_exit_2(tmp_path: Path):
    proj, _ = project_with_vectors(tmp_path, n=60)
    before = ok(["pools", "-p", proj, "--json"]).stdout
    r = runner.invoke(app, ["pools", "add", "crowd", "--rate", "cheap", "-p", proj])
    assert r.exit_code == 2 and "rate 'cheap'" in r.output
    r = runner.invoke(app, ["costs", "-p", proj, "--gpu-rate", "-2", "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["type"] == "InputError"
    assert ok(["pools", "-p", proj, "--json"]).stdout == before
