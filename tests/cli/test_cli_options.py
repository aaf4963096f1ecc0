"""The CLI's edge: numeric options checked with the allowed range in the message (exit 2,
no traceback, nothing written), errors as one JSON object with --json, and a help that
shows examples, flags as flags, `-h` and `--version`."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

import longtail
from longtail.cli import app
from tests.conftest import make_pool, write_pool_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def proj(tmp_path_factory) -> str:
    """A project with 200 samples and precomputed vectors (enough for every command)."""
    tmp = tmp_path_factory.mktemp("cli")
    proj = str(tmp / "p")
    X, y = make_pool(200)
    assert runner.invoke(app, ["init", proj]).exit_code == 0
    r = runner.invoke(app, ["ingest", str(write_pool_csv(tmp / "pool.csv", X, y)), "-p", proj,
                            "--vector-prefix", "v"])
    assert r.exit_code == 0, r.output
    return proj


BAD = [
    # (arguments, what the message must say)
    (["simulate", "--truth", "truth", "--batch", "0"], "--batch must be at least 1, got 0"),
    (["simulate", "--truth", "truth", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["simulate", "--truth", "truth", "--budget", "0"], "--budget must be at least 1, got 0"),
    (["simulate", "--truth", "truth", "--budget", "-10"], "--budget must be at least 1, got -10"),
    (["forecast", "--target", "95"], "--target must be in (0, 1], got 95"),
    (["forecast", "--target", "1.5"], "--target must be in (0, 1], got 1.5"),
    (["forecast", "--target", "0"], "--target must be in (0, 1], got 0"),
    (["forecast", "--batch", "0"], "--batch must be at least 1"),
    (["stopping", "--target", "1.5"], "--target must be in (0, 1]"),
    (["stopping", "--budget", "0"], "--budget must be at least 1"),
    (["stopping", "--batch", "-1"], "--batch must be at least 1"),
    (["query", "-n", "0"], "--budget must be at least 1, got 0"),
    (["query", "-n", "-5"], "--budget must be at least 1, got -5"),
    (["query", "--seed", "-1"], "--seed must be at least 0"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_numeric_options_are_checked_with_their_range(proj, args, message):
    before = runner.invoke(app, ["status", "-p", proj, "--json"]).stdout
    r = runner.invoke(app, [*args, "-p", proj])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    # nothing recorded: no round, no metric
    assert runner.invoke(app, ["status", "-p", proj, "--json"]).stdout == before


@pytest.mark.parametrize("args,message", [
    (["query", "-n", "abc"], "'abc' is not an integer"),
    (["query", "-n", "1.5"], "'1.5' is not an integer"),
    (["forecast", "--target", "high"], "'high' is not a number"),
])
def test_values_of_the_wrong_type_are_usage_errors(proj, args, message):
    r = runner.invoke(app, [*args, "-p", proj], terminal_width=200)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_numbers_and_paths_parse_to_their_types(proj, tmp_path):
    r = runner.invoke(app, ["query", "-p", proj, "-n", "7", "--seed", "3", "--strategy",
                            "random", "--out", str(tmp_path / "b.csv"), "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["rows"]) == 7 and (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("args,message", [
    (["--eval-rate", "1.5"], "--eval-rate must be in [0, 1], got 1.5"),
    (["--eval-share", "-0.1"], "--eval-share must be in [0, 1]"),
    (["--control-share", "2"], "--control-share must be in [0, 1]"),
    (["--eval-cap", "-1"], "--eval-cap must be at least 0"),
    (["--seed", "-3"], "--seed must be at least 0"),
    (["--eval-estimator", "bogus"], "--eval-estimator must be 'ppi' or 'uniform'"),
    (["--dtype", "float64"], "--dtype must be 'float32' or 'float16', got 'float64'"),
])
def test_init_rejects_bad_rates_and_writes_nothing(tmp_path, args, message):
    r = runner.invoke(app, ["init", str(tmp_path / "p"), *args])
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "p").exists()


def test_demo_rejects_zero_rounds(tmp_path):
    r = runner.invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--rounds", "0"])
    assert r.exit_code == 2 and "--rounds must be at least 1" in r.output
    assert not (tmp_path / "d").exists()


def test_json_errors_are_one_object_on_stdout(proj, tmp_path):
    r = runner.invoke(app, ["query", "-p", proj, "-n", "0", "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"error": {"type": "InputError",
                                              "message": "--budget must be at least 1, got 0"}}
    r = runner.invoke(app, ["status", "-p", str(tmp_path / "none"), "--json"])
    assert r.exit_code == 2
    error = json.loads(r.stdout)["error"]
    assert error["type"] == "ProjectError" and "no longtail project" in error["message"]
    (tmp_path / "dup.csv").write_text("id,text\n1,a\n1,b\n")
    r = runner.invoke(app, ["ingest", str(tmp_path / "dup.csv"), "-p", proj, "--text", "text",
                            "--json"])
    assert r.exit_code == 2 and "duplicate id '1'" in json.loads(r.stdout)["error"]["message"]


def test_json_usage_errors_are_one_object_too(proj):
    r = runner.invoke(app, ["query", "-p", proj, "-n", "abc", "--json"])
    assert r.exit_code == 2
    error = json.loads(r.stdout)["error"]
    assert error["type"] == "UsageError" and "'abc' is not an integer" in error["message"]
    r = runner.invoke(app, ["status", "-p", proj, "--no-such-option", "--json"])
    assert r.exit_code == 2 and "--no-such-option" in json.loads(r.stdout)["error"]["message"]
    r = runner.invoke(app, ["status", "-p", proj, "--json"])  # and success still exits 0
    assert r.exit_code == 0 and json.loads(r.stdout)["samples"] == 200


def test_error_messages_are_not_read_as_markup(tmp_path):
    # A file name with brackets is quoted as it is, not swallowed as a style tag.
    (tmp_path / "[red]x.csv").write_text("id,text\n1,a\n1,b\n")
    runner.invoke(app, ["init", str(tmp_path / "p")])
    r = runner.invoke(app, ["ingest", str(tmp_path / "[red]x.csv"), "-p", str(tmp_path / "p"),
                            "--text", "text"])
    assert r.exit_code == 2 and "[red]x.csv" in r.output


def _commands() -> dict:
    """Every command by its words ("labels set"), subcommands of groups included."""
    out = {}

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            out[f"{prefix}{name}"] = cmd
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")

    walk(typer.main.get_command(app), "")
    return out


def test_version_and_short_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"longtail {longtail.__version__}"
    r = runner.invoke(app, ["-h"])
    assert r.exit_code == 0 and "Commands" in r.stdout and "query" in r.stdout


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_an_example_and_described_options(name):
    r = runner.invoke(app, [*name.split(), "-h"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "Example: longtail " + name in r.stdout
    assert "<bool>" not in r.stdout  # a flag takes no value
    undocumented = [p.name for p in _commands()[name].params if not getattr(p, "help", None)]
    assert undocumented == []
