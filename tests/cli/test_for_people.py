"""What a person reads: tables fit 80 columns (low-value columns dropped, `--wide` for
all), every figure rounded for people, never `None` or `nan`; `--json` keeps full
precision."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from tests.conftest import make_pool, write_csv, write_pool_csv

runner = CliRunner()
BOX = "┃│┏┡└╇━┗"
RAW_FLOAT = re.compile(r"\d\.\d{4,}")


@pytest.fixture
def worked(tmp_path, monkeypatch):
    """Two rounds labeled by two annotators, three models, a cancelled round."""
    monkeypatch.setenv("COLUMNS", "80")
    X, y = make_pool(300, seed=3)
    proj = str(tmp_path / "p")
    truth = {f"s{i}": y[i] for i in range(len(y))}

    def ok(args):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        return r

    ok(["init", proj, "--eval-rate", "0.1"])
    ok(["ingest", str(write_pool_csv(tmp_path / "pool.csv", X, y)), "-p", proj,
        "--vector-prefix", "v"])
    for k, who in enumerate(["alice", "bob"]):
        out = tmp_path / f"b{k}.csv"
        ok(["query", "-p", proj, "-n", "40", "--out", str(out)])
        ids = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
        ok(["import-labels", str(write_csv(tmp_path / f"l{k}.csv", ["id", "label"],
                                           [[i, truth[i]] for i in ids])),
            "-p", proj, "--annotator-name", who])
        ok(["train", "-p", proj])
    ok(["query", "-p", proj, "-n", "10", "--out", str(tmp_path / "gone.csv")])
    ok(["rounds", "-p", proj, "--cancel", "3"])
    ok(["train", "-p", proj, "--force"])
    return proj, ok


COMMANDS = [["status"], ["rounds"], ["history"], ["versions"], ["annotators"],
            ["suspects"], ["evaluate", "--per-class"], ["stopping"], ["train", "--force"]]


def test_what_people_read_fits_80_columns_and_shows_no_raw_figures(worked):
    proj, ok = worked
    for args in COMMANDS:
        out = ok([*args, "-p", proj]).stdout
        table_lines = [ln for ln in out.splitlines() if ln[:1] in BOX]
        assert all(len(ln) <= 80 for ln in table_lines), (args, out)
        assert "…" not in out, (args, out)  # nothing cut to fit
        assert not re.search(r"\b(None|nan|NaN)\b", out), (args, out)
        assert not RAW_FLOAT.search(out), (args, out)


def test_wide_shows_every_column_and_json_keeps_full_precision(worked):
    proj, ok = worked
    narrow = ok(["history", "-p", proj]).stdout
    assert "┃ sha256" not in narrow and "not shown: sha256" in narrow
    wide = ok(["history", "-p", proj, "--wide"]).stdout
    assert "┃ sha256" in wide and "┃ fit s" in wide and "not shown" not in wide
    rounds = json.loads(ok(["history", "-p", proj, "--json"]).stdout)
    fit = [m["fit_seconds"] for r in rounds for m in r["models"]]
    assert len(fit) == 3 and all(isinstance(f, float) for f in fit)
    assert any(len(repr(f).split(".")[-1]) > 3 for f in fit)  # not rounded for --json


def test_query_mentions_no_control_slice_the_default_does_not_take(worked):
    proj, ok = worked
    out = ok(["query", "-p", proj, "-n", "10"]).stdout
    assert "selected" in out and "control" not in out


def test_a_confusion_matrix_of_many_classes_folds_to_80_columns(tmp_path, monkeypatch):
    """25 classes with long names: the full matrix is hundreds of columns wide. At 80
    columns `evaluate --per-class` shows the most frequent confusions instead, every
    line within 80 and nothing cut; `--wide` prints the full matrix."""
    monkeypatch.setenv("COLUMNS", "80")
    X, y = make_pool(500, d=4, classes=25, seed=5)  # d=4: the classes overlap, errors
    y = np.array([f"{lab}_a_rather_long_intent_name" for lab in y])
    proj = str(tmp_path / "p")

    def ok(args):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        return r

    ok(["init", proj])
    pool = write_pool_csv(tmp_path / "pool.csv", X, y)
    ok(["ingest", str(pool), "-p", proj, "--vector-prefix", "v"])
    ok(["import-labels", str(write_csv(tmp_path / "l.csv", ["id", "label"],
                                       [[f"s{i}", y[i]] for i in range(0, 500, 2)])),
        "-p", proj])
    ok(["train", "-p", proj])
    args = ["evaluate", "-p", proj, "--test", str(pool), "--label", "truth",
            "--vector-prefix", "v", "--per-class"]
    out = ok(args).stdout
    table_lines = [ln for ln in out.splitlines() if ln[:1] in BOX]
    assert all(len(ln) <= 80 for ln in table_lines), out
    assert "…" not in out and "most frequent confusions" in out and "--wide" in out
    res = json.loads(ok([*args[:-1], "--json"]).stdout)
    assert len(res["confusion"]["labels"]) == 25
    wide = ok([*args, "--wide"]).stdout
    assert "confusion (rows: true, columns: predicted)" in wide
    assert max(len(ln) for ln in wide.splitlines()) > 200
