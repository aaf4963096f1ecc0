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


def _wine_like(tmp_path, sep: str = ";"):
    """A 3-class measurement file written by a spreadsheet set to a European locale."""
    rng = np.random.default_rng(7)
    lines = [sep.join(["id", "alcohol", "malic_acid", "hue"])]
    for i in range(60):
        lines.append(sep.join([f"w{i}", f"{rng.normal(13, 1):.2f}", f"{rng.normal(2, .5):.2f}",
                               f"{rng.normal(1, .2):.2f}"]))
    path = tmp_path / "wine.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_delimiter_is_sniffed_and_can_be_forced(tmp_path):
    proj = str(tmp_path / "p")
    run(["init", proj])
    wine = _wine_like(tmp_path)
    r = run(["ingest", str(wine), "-p", proj, "--id", "id"])
    assert "60 new" in r.stdout
    r = run(["embed", "-p", proj, "--encoder", "tabular"])
    assert "3 columns (alcohol, malic_acid, hue)" in r.stdout
    # forcing a wrong delimiter reads one column: the id column is then not found
    r = run(["ingest", str(wine), "-p", proj, "--id", "id", "--delimiter", ","], code=2)
    assert "id column 'id' not found" in r.output
    piped = tmp_path / "piped.csv"
    piped.write_text(wine.read_text().replace(";", "|"))
    r = run(["ingest", str(piped), "-p", proj, "--id", "id", "--delimiter", "|"])
    assert "60 unchanged" in r.stdout
    run(["ingest", str(piped), "-p", proj, "--delimiter", "ab"], code=2)


def _labels_file(tmp_path, name, pairs, sep=","):
    path = tmp_path / name
    path.write_text("\n".join([f"id{sep}label", *[f"{i}{sep}{lab}" for i, lab in pairs]]) + "\n")
    return str(path)


def test_label_typos_are_stripped_warned_refused_and_renamed(tmp_path):
    proj = str(tmp_path / "p")
    run(["init", proj])
    run(["ingest", str(_wine_like(tmp_path)), "-p", proj, "--id", "id"])
    first = _labels_file(tmp_path, "a.csv", [(f"w{i}", "class_1" if i % 2 else "class_2")
                                             for i in range(10)])
    run(["import-labels", first, "-p", proj, "--annotator-name", "alice"])
    typos = _labels_file(tmp_path, "b.csv", [("w10", " class_1"), ("w11", "CLASS_2"),
                                             ("w12", "class_2 ")], sep=";")
    r = run(["import-labels", typos, "-p", proj, "--annotator-name", "bob"])
    assert "WARNING: label 'CLASS_2' (1 row(s)) is not a known class but looks like " \
           "'class_2'" in r.output
    assert "longtail labels rename CLASS_2 class_2" in r.output
    with Project(tmp_path / "p") as p, p.store.unit_of_work() as uow:
        current = uow.labels.current()
        who = {e["annotator"] for e in uow.labels.events()}
    assert set(current.values()) == {"class_1", "class_2", "CLASS_2"}  # spaces stripped
    assert who == {"alice", "bob"}
    # closing the set lists what is in use, quoted, with the fix
    r = run(["labels", "set", "class_1,class_2", "-p", proj], code=2)
    assert "'CLASS_2'" in r.output and "longtail labels rename CLASS_2 class_2" in r.output
    r = run(["labels", "rename", "CLASS_2", "class_2", "-p", proj])
    assert "1 sample(s) relabeled 'CLASS_2' -> 'class_2'" in r.stdout
    run(["labels", "set", "class_1,class_2", "-p", proj])
    with Project(tmp_path / "p") as p, p.store.unit_of_work() as uow:
        assert set(uow.labels.current().values()) == {"class_1", "class_2"}
    # in a closed set a near miss is an error naming the closest label
    again = _labels_file(tmp_path, "c.csv", [("w13", "Class_1")])
    r = run(["import-labels", again, "-p", proj], code=2)
    assert "'Class_1' (did you mean 'class_1'?)" in r.output
    run(["import-labels", again, "-p", proj, "--annotator", "who", "--annotator-name", "x"],
        code=2)


def test_the_batch_file_keeps_the_files_columns_and_names(tmp_path):
    import csv

    header, rows = patients()
    proj = str(tmp_path / "p")
    run(["init", proj])
    run(["ingest", str(write_csv(tmp_path / "clinic.csv", header, rows)), "-p", proj])
    run(["embed", "-p", proj, "--encoder", "tabular", "--exclude", "diagnosis"])
    run(["query", "-p", proj, "-n", "10", "--out", str(tmp_path / "batch.csv")])
    with open(tmp_path / "batch.csv", newline="") as f:
        fields = csv.DictReader(f).fieldnames
    assert fields == ["id", "label", "mean radius", "mean area", "site", "note", "diagnosis",
                      "kind", "round"]
