"""Progress everyone sees: plain periodic lines when stderr is not a terminal, "loading
model" before the model loads, and a Ctrl-C during embed that says what was kept."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from longtail.cli import app
from longtail.cli._ui import Bar
from longtail.encoders.tabular import TabularEncoder
from tests.conftest import make_pool, write_pool_csv

runner = CliRunner()


def test_plain_lines_at_each_tenth_when_not_a_terminal(capsys):
    with Bar("embed", terminal=False, every_s=1e9) as bar:
        for done in range(0, 1001, 7):
            bar(done, 1000)
        bar(1000, 1000)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "embed: 1,000/1,000 rows"
    tenths = [int(re.match(r"embed: ([\d,]+)/", ln).group(1).replace(",", "")) * 10 // 1000
              for ln in lines]
    assert tenths == list(range(11))  # one line per tenth, none repeated


def test_plain_lines_every_few_seconds_without_a_total(capsys, monkeypatch):
    clock = iter(float(t) for t in range(0, 100, 2))
    monkeypatch.setattr("longtail.cli._ui.time.monotonic", lambda: next(clock))
    with Bar("ingest x.csv", terminal=False, every_s=5.0) as bar:  # t=0
        for done in range(1, 8):  # called at t = 2, 4, ..., 14
            bar(done * 100, None)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["ingest x.csv: 300 rows", "ingest x.csv: 600 rows"]


def test_quiet_bar_prints_nothing(capsys):
    with Bar("embed", quiet=True, terminal=False) as bar:
        bar.phase("loading model")
        bar(10, 10)
    assert capsys.readouterr().err == ""


def _tabular_project(tmp_path, n: int) -> str:
    proj = str(tmp_path / "p")
    X, y = make_pool(n)
    runner.invoke(app, ["init", proj])
    r = runner.invoke(app, ["ingest", str(write_pool_csv(tmp_path / "pool.csv", X, y)), "-p", proj])
    assert r.exit_code == 0, r.output
    return proj


def test_embed_announces_its_slow_step_then_counts(tmp_path):
    proj = _tabular_project(tmp_path, 600)
    r = runner.invoke(app, ["embed", "-p", proj, "--encoder", "tabular"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    # first what the encoder is doing before any row is done (loading, fitting), then counts
    assert lines[0].startswith("embed (tabular): ") and not lines[0].endswith(" rows")
    assert lines[-1] == "embed (tabular): 600/600 rows"


def test_ctrl_c_during_embed_says_what_was_kept_and_resumes(tmp_path, monkeypatch):
    proj = _tabular_project(tmp_path, 1100)
    encode = TabularEncoder.encode
    calls = []

    def interrupted(self, batch):
        calls.append(len(batch["metadata"]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return encode(self, batch)

    monkeypatch.setattr(TabularEncoder, "encode", interrupted)
    r = runner.invoke(app, ["embed", "-p", proj, "--encoder", "tabular"])
    assert r.exit_code == 130
    kept = calls[0]
    assert f"stopped: {kept:,} rows kept; run again to resume" in r.stderr
    monkeypatch.setattr(TabularEncoder, "encode", encode)
    r = runner.invoke(app, ["embed", "-p", proj, "--encoder", "tabular", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["embedded"] == 1100 - kept


def test_ctrl_c_with_json_is_one_object(tmp_path, monkeypatch):
    proj = _tabular_project(tmp_path, 50)

    def interrupted(self, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(TabularEncoder, "encode", interrupted)
    r = runner.invoke(app, ["embed", "-p", proj, "--encoder", "tabular", "--json"])
    assert r.exit_code == 130
    assert json.loads(r.stdout) == {"error": {"type": "Interrupted", "message":
                                              "stopped: 0 rows kept; run again to resume"}}
