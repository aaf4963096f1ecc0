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
