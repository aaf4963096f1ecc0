"""SIGKILL at every hooked point: no acknowledged label lost, nothing half-written
visible, `longtail check` passes, and the command re-runs to the uninterrupted result.
Uses the harness of bench/crash.py (each trial is a `longtail` subprocess)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _harness():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    return load(BENCH / "crash.py")


crash = _harness()
POINTS = [(phase, point) for phase, (_, points, _) in crash.PHASES.items() for point in points]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    base, files = crash.prepare(root, 300)
    return root, base, files, crash.content(base)


def test_crashpoint_kills_only_at_the_named_point_and_count(tmp_path):
    import subprocess

    code = ("from longtail.crashpoints import crashpoint\n"
            "for i in range(3):\n    crashpoint('a:b'); crashpoint('a:c'); print(i, flush=True)\n")
    env = {**os.environ, "PYTHONPATH": crash._src_path(), "LONGTAIL_CRASH_AT": "a:b@2"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL and r.stdout.split() == ["0"]
    env.pop("LONGTAIL_CRASH_AT")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ["0", "1", "2"]


def test_the_same_point_pauses_until_told_to_go(tmp_path):
    """One mechanism: LONGTAIL_CRASH_ACTION=pause holds the process at the named point
    (the concurrency tests' interleaving) instead of killing it."""
    import subprocess
    import time

    code = ("from longtail.crashpoints import crashpoint\n"
            "for i in range(3):\n    crashpoint('a:b'); print(i, flush=True)\n")
    env = {**os.environ, "PYTHONPATH": crash._src_path(), "LONGTAIL_CRASH_AT": "a:b@2",
           "LONGTAIL_CRASH_ACTION": "pause", "LONGTAIL_PAUSE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*.paused")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        assert proc.stdout.readline().split() == ["0"] and proc.poll() is None  # held at 2nd
        (tmp_path / "go").touch()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out.split() == ["1", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("phase,point", POINTS, ids=[f"{ph}/{p}" for ph, p in POINTS])
def test_sigkill_at_a_hooked_point(prepared, phase, point):
    root, base, files, before = prepared
    ref = root / f"ref-{phase}"
    if not ref.exists():
        shutil.copytree(base, ref)
        assert crash.cli(ref, crash.command(phase, files, ref))[0] == 0
    reference = crash.content(ref)
    # the command does change the project (suspects only reads: it must change nothing)
    assert (reference == before) == (phase == "suspects")
    rec = crash.trial(base, root / point.replace(":", "_"), phase, files, reference, before,
                      point, None)
    assert rec["killed"], rec
    assert rec["lost_labels"] == 0 and rec["check_ok"] and not rec["half_write"], rec
    # A command killed after its commit (query's export still to write) is not re-run
    # when its effect is complete; an idempotent one is re-run anyway.
    assert rec["rerun_ok"] and (rec["reran"] or rec["state"] == "after"), rec
