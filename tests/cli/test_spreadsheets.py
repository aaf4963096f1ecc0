"""What a spreadsheet export holds, through the CLI as a user runs it: missing cells,
text columns, names with spaces, other delimiters, labels with stray spaces."""

from __future__ import annotations

import shlex

import numpy as np
from typer.testing import CliRunner

from longtail.cli import app
from longtail.project import Project
from tests.conftest import write_csv

runner = CliRunner()


def run(args: list[str], code: int = 0):
    r = runner.invoke(app, args, terminal_width=200)
    assert r.exit_code == code, (args, r.output)
    return r


def patients(n: int = 200, seed: int = 2) -> tuple[list[str], list[list]]:
    """A clinic's export: two measurements with gaps, a site, a free-text note, a class."""
    rng = np.random.default_rng(seed)
    header = ["id", "mean radius", "mean area", "site", "note", "diagnosis"]
    rows = []
    for i in range(n):
        sick = i % 2
        rows.append([f"p{i}", round(float(rng.normal(12 + 4 * sick, 2)), 3),
                     "" if i % 17 == 3 else round(float(rng.normal(500 + 300 * sick, 90)), 1),
                     str(rng.choice(["north", "south", "east"])), f"seen on day {i}",
                     "malignant" if sick else "benign"])
    return header, rows


def test_embed_fills_gaps_one_hot_encodes_text_and_says_so(tmp_path):
    header, rows = patients()
    proj = str(tmp_path / "p")
    run(["init", proj])
    run(["ingest", str(write_csv(tmp_path / "clinic.csv", header, rows)), "-p", proj])
    r = run(["embed", "-p", proj, "--encoder", "tabular", "--exclude", "diagnosis"])
    out = r.stdout
    # the file's column order, the one-hot site, the note left out with its reason
    assert "3 columns (mean radius, mean area, site) -> 5 dims" in out
    assert "one-hot: site (3 values)" in out
    assert "mean area: 12 missing value(s) filled with the median" in out
    assert "not used: note: text with 200 distinct values" in out
    with Project(tmp_path / "p") as p:
        X = p.vectors().read(np.arange(200))
    assert np.isfinite(X).all() and X.shape == (200, 5)


def test_a_typo_in_a_numeric_column_names_a_shell_ready_exclude(tmp_path):
    header, rows = patients()
    rows[40][2] = "5OO"  # a letter O for a zero
    proj = str(tmp_path / "p")
    run(["init", proj])
    run(["ingest", str(write_csv(tmp_path / "clinic.csv", header, rows)), "-p", proj])
    r = run(["embed", "-p", proj, "--encoder", "tabular", "--exclude", "diagnosis"], code=2)
    assert "'5OO'" in r.output and "row 41" in r.output
    suggested = r.output.split("--exclude ")[-1].strip()
    assert shlex.split(suggested) == ["mean area"]  # pasted into a shell, one argument
    r = run(["embed", "-p", proj, "--encoder", "tabular", "--exclude",
             "diagnosis," + shlex.split(suggested)[0]])
    assert "2 columns (mean radius, site)" in r.stdout
