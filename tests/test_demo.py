"""`longtail demo` on a slice of the bundled Banking77 data, with the real MiniLM encoder
loaded offline (skipped when the text extra is not installed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.demo import bundled


def test_bundled_data_ships_with_its_credit():
    readme = bundled("README.md").read_text()
    assert "CC BY 4.0" in readme and "Casanueva" in readme
    assert bundled("train.csv").read_text().startswith("id,text,category")


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "cache"))
    import longtail.demo as demo

    monkeypatch.setattr(demo, "CACHE", tmp_path / "cache")
    r = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--limit", "300",
                                 "--rounds", "2", "--batch", "40"])
    assert r.exit_code == 0, r.output
    summary = tmp_path / "d" / "demo-summary.html"
    assert summary.exists() and "<svg" in summary.read_text()
    assert "auto" in r.output and "random" in r.output
    assert (tmp_path / "cache" / "banking77-minilm.npz").exists()


def test_limit_samples_every_intent_seeded_not_the_files_head(tmp_path):
    import csv

    from longtail.demo import _sample

    def intents(path):
        with open(path, newline="") as f:
            return [r["category"] for r in csv.DictReader(f)]

    full = intents(bundled("train.csv"))
    out = _sample(bundled("train.csv"), tmp_path / "a.csv", 1500)
    got = intents(out)
    assert len(got) == 1500 and len(set(got)) == len(set(full)) == 77  # the head had 12
    again = intents(_sample(bundled("train.csv"), tmp_path / "b.csv", 1500))
    assert got == again  # seeded
    # Each intent keeps about its share of the file.
    for c in set(full):
        assert abs(got.count(c) - 1500 * full.count(c) / len(full)) <= 1.5


def test_demo_page_states_what_ran(tmp_path):
    from longtail.demo import write_summary

    run = {"n_labels": [40, 80], "test_accuracy": [0.5, 0.6], "eval_accuracy": [None, 0.7],
           "eval_labels": [0, 8]}
    results = {"auto": {"batch": 40, "runs": [run]}, "random": {"batch": 40, "runs": [run]}}
    write_summary(tmp_path / "s.html", results, {"pool": 285, "eval": 15, "encoder": "minilm"},
                  {"embed": 1.0}, {"intents": 12, "test": 300, "limit": 300})
    page = (tmp_path / "s.html").read_text()
    assert "12 intents" in page and "300 test messages" in page
    assert "77 intents" not in page and "3,080" not in page
