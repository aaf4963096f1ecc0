"""The tours in docs/ run as written: every line of their ```bash block, in order, with
the `longtail` console script, against small generated files. A `# label FILE` line is
the human step: the test writes each row's true class into FILE's `label` column."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import longtail

ROOT = Path(__file__).resolve().parents[2]
LONGTAIL = Path(sys.executable).with_name("longtail")
# The console script runs the same sources as this test process imports.
SRC = str(Path(longtail.__file__).resolve().parents[1])


def commands(tour: Path) -> list[str]:
    """The lines of the tour's single ```bash block."""
    blocks = re.findall(r"```bash\n(.*?)```", tour.read_text(), re.S)
    assert len(blocks) == 1, f"{tour.name}: expected one bash block, found {len(blocks)}"
    return [ln.strip() for ln in blocks[0].splitlines() if ln.strip()]


def fill_labels(path: Path, truth: dict[str, str], skip_last: bool = False) -> int:
    """What the newcomer does by hand: a `label` for every row of the batch file (the
    last one left blank, a skip, with `skip_last`)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    if "label" not in fields:
        fields.append("label")
    for row in rows:
        row["label"] = truth[row["id"]]
    if skip_last:
        rows[-1]["label"] = ""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def run_tour(tour: Path, cwd: Path, truth: dict[str, str], skip_one: bool = False
             ) -> list[subprocess.CompletedProcess]:
    """Run the tour's lines in `cwd`: commands must exit 0 without a traceback. With
    `skip_one` the first batch's last row is left unlabeled, as the tour allows."""
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    done = []
    for line in commands(tour):
        label = re.match(r"# label (\S+?):?\s", line + " ")
        if label:
            assert fill_labels(cwd / label.group(1), truth, skip_last=skip_one) > 0
            skip_one = False
            continue
        if line.startswith("#"):
            continue
        argv = shlex.split(line)
        assert argv[0] == "longtail", f"{tour.name}: a line that is not a longtail command: {line}"
        r = subprocess.run([str(LONGTAIL), *argv[1:]], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (line, r.stdout, r.stderr)
        done.append(r)
    return done


def _status(cwd: Path, project: str) -> dict:
    r = subprocess.run([str(LONGTAIL), "status", "-p", project, "--json"], cwd=cwd,
                       env={**os.environ, "PYTHONPATH": SRC},
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.mark.slow
def test_the_text_tour_runs_as_written(tmp_path):
    pytest.importorskip("sentence_transformers")
    from longtail.demo import bundled

    # Four intents from the bundled Banking77 sample; the category stays with the test.
    with open(bundled("train.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    keep = sorted({r["category"] for r in rows})[:4]
    rows = [r for r in rows if r["category"] in keep][:240]
    with open(tmp_path / "messages.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([r["id"], r["text"]] for r in rows)
    done = run_tour(ROOT / "docs" / "tour-text.md", tmp_path,
                    {r["id"]: r["category"] for r in rows}, skip_one=True)
    assert "1 skipped" in done[4].stdout  # the first import-labels
    st = _status(tmp_path, "my-project")
    assert st["samples"] == len(rows) and st["models"] == 2
    assert st["rounds"] == 2 and st["open_rounds"] == 0
    assert set(st["classes"]) <= set(keep) and st["labeled_pool"] > 0


@pytest.mark.slow
def test_the_tabular_tour_runs_as_written(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    # a spreadsheet's gaps in f1 (every 37th row) and a text column of three values
    with open(tmp_path / "digits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *[f"f{j}" for j in range(X.shape[1])], "digit", "scanner"])
        w.writerows([f"d{i}", *["" if j == 1 and i % 37 == 0 else v
                                for j, v in enumerate(X[i].tolist())], int(y[i]),
                     ("north", "south", "east")[i % 3]] for i in range(len(X)))
    truth = {f"d{i}": str(y[i]) for i in range(len(y))}
    done = run_tour(ROOT / "docs" / "tour-tabular.md", tmp_path, truth)
    st = _status(tmp_path, "digits-project")
    assert st["samples"] == 400 and st["encoder"] == "tabular" and st["models"] == 2
    assert st["rounds"] == 2 and st["open_rounds"] == 0
    evaluate, simulate = done[-2], done[-1]
    assert "per class" in evaluate.stdout and "confusion" in evaluate.stdout
    assert "auto" in simulate.stdout and "random" in simulate.stdout
    embed = done[2].stdout
    assert "65 columns (f0..scanner) -> 67 dims" in embed  # embed: no digit column
    assert "one-hot: scanner (3 values)" in embed
    assert "f1: 11 missing value(s) filled with the median" in embed
