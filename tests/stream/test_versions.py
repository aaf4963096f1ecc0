"""Dataset versions: every round commits one; any version exports as it was; diffs."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from longtail.cli import app
from longtail.errors import InputError
from longtail.project import Project
from longtail.store.schema import SCHEMA_VERSION
from tests.conftest import snapshot, write_csv
from tests.reads import read

runner = CliRunner()


def _truth(p: Project) -> dict[str, str]:
    return {b[1]: b[3]["truth"] for chunk in read(p.store, lambda u: list(u.samples.iter())) for b in chunk}


def _labels(tmp_path, name, pairs):
    return write_csv(tmp_path / name, ["id", "label"], [list(x) for x in pairs])


def _read(path) -> dict[str, str]:
    if path.suffix == ".parquet":
        t = pq.read_table(path).to_pylist()
    elif path.suffix == ".csv":
        t = list(csv.DictReader(open(path)))
    else:
        t = [json.loads(line) for line in open(path)]
    return {r["id"]: r["label"] for r in t}


@pytest.fixture
def two_rounds(loaded, tmp_path):
    """Round 1 after 20 labels, then 10 new labels and 5 relabels, round 2."""
    truth = _truth(loaded)
    first = [f"s{r}" for r in loaded.candidates()[:20]]
    loaded.import_labels(_labels(tmp_path, "a.csv", [(i, truth[i]) for i in first]))
    loaded.query(10, strategy="random")
    second = [f"s{r}" for r in loaded.candidates()[:10]]
    relabel = first[:5]
    loaded.import_labels(_labels(tmp_path, "b.csv", [(i, truth[i]) for i in second]
                                 + [(i, "other") for i in relabel]))
    loaded.query(10, strategy="random")
    return loaded, {i: truth[i] for i in first}, second, relabel


def test_each_round_commits_a_version_that_exports_its_labels(two_rounds, tmp_path):
    p, first, second, relabel = two_rounds
    vs = p.versions()
    assert [v.reason for v in vs] == ["round", "round"]
    assert [v.round_id for v in vs] == [r["id"] for r in read(p.store, lambda u: u.rounds.list())]
    assert [v.n_labeled for v in vs] == [20, 30]
    for fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"v1.{fmt}"
        r = p.export(out, version=vs[0].id)
        assert r.rows == 20 and r.format == fmt
        assert _read(out) == first  # the relabels came after version 1
    latest = _read(p.export(tmp_path / "v2.csv", version=vs[1].id) and tmp_path / "v2.csv")
    assert all(latest[i] == "other" for i in relabel) and set(second) <= set(latest)


def test_diff_lists_added_removed_and_changed(two_rounds):
    p, first, second, relabel = two_rounds
    a, b = (v.id for v in p.versions())
    d = p.diff(a, b)
    assert sorted(e["id"] for e in d.added) == sorted(second)
    assert sorted(e["id"] for e in d.changed) == sorted(relabel)
    assert all(e["to"] == "other" and e["from"] == first[e["id"]] for e in d.changed)
    assert d.removed == []
    back = p.diff(b, a)
    assert sorted(e["id"] for e in back.removed) == sorted(second)


def test_export_without_version_commits_one_only_when_something_changed(two_rounds, tmp_path):
    p, *_ = two_rounds
    n = len(p.versions())
    first = p.export(tmp_path / "x.csv")
    assert first.version == p.versions()[-1].id and len(p.versions()) == n
    p.import_labels(_labels(tmp_path, "c.csv", [(f"s{p.candidates()[0]}", "c0")]))
    second = p.export(tmp_path / "y.csv")
    assert len(p.versions()) == n + 1 and p.versions()[-1].reason == "export"
    assert second.rows == first.rows + 1


def test_bad_exports_name_the_problem_and_write_nothing(two_rounds, tmp_path):
    p, *_ = two_rounds
    before = snapshot(p)
    with pytest.raises(InputError, match="no dataset version 99 .versions: 1, 2"):
        p.export(tmp_path / "x.csv", version=99)
    with pytest.raises(InputError, match="give --format"):
        p.export(tmp_path / "x.xlsx", version=1)
    (tmp_path / "x.csv").write_text("keep")
    with pytest.raises(InputError, match="already exists"):
        p.export(tmp_path / "x.csv", version=1)
    assert (tmp_path / "x.csv").read_text() == "keep"
    assert snapshot(p) == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_version_2_catalog_is_upgraded(loaded, tmp_path):
    loaded.query(5, strategy="random")
    with loaded.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE dataset_versions"))
        conn.execute(text("UPDATE settings SET value = '2' WHERE key = 'schema_version'"))
    loaded.close()
    p = Project(loaded.path)
    assert read(p.store, lambda u: u.settings.get("schema_version")) == SCHEMA_VERSION
    assert p.versions() == []
    p.query(5, strategy="random")
    assert [v.reason for v in p.versions()] == ["round"]
    p.close()


def test_cli_versions_export_diff(two_rounds, tmp_path):
    p, first, second, relabel = two_rounds
    proj = str(p.path)
    r = runner.invoke(app, ["versions", "-p", proj, "--json"])
    assert r.exit_code == 0, r.output
    assert [v["id"] for v in json.loads(r.stdout)] == [1, 2]
    out = tmp_path / "v1.jsonl"
    r = runner.invoke(app, ["export", str(out), "--version", "1", "-p", proj])
    assert r.exit_code == 0, r.output
    assert _read(out) == first
    r = runner.invoke(app, ["diff", "1", "2", "-p", proj])
    assert r.exit_code == 0 and f"{len(second)} added" in r.stdout
    r = runner.invoke(app, ["export", str(out), "--version", "1", "-p", proj])
    assert r.exit_code == 2 and "already exists" in r.output
