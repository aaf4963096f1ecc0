"""Test-only crash points: named places where a test can SIGKILL the process.

`LONGTAIL_CRASH_AT=phase:step` (e.g. `ingest:after_commit`) makes the first call of
`crashpoint("ingest:after_commit")` kill the process with SIGKILL, so the kill lands
exactly inside a transaction or between a catalog commit and a file write, where a
kill from outside at a random time rarely lands. `phase:step@N` kills at the N-th call
instead (a point inside a loop). Without the variable a crash point costs one dict
lookup. Used by tests/stream and bench/crash.py only.

Points: ingest:in_tx, ingest:after_commit, labels:in_tx, train:model_file_written,
train:in_tx (model, metrics and lifts written, not committed), train:after_commit,
round:in_tx, version:in_tx, consensus:in_tx, suspects:scored, embed:vectors_written,
run:step.

Pause points (`pausepoint`) are their sibling for concurrency tests: they hold a process
between a read and the write that depends on it until the test releases it. Points:
round:planned (a round's batch is chosen, not yet claimed).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "LONGTAIL_CRASH_AT"
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """SIGKILL this process when `LONGTAIL_CRASH_AT` names this point (and its count)."""
    target = os.environ.get(ENV)
    if not target:
        return
    point, _, nth = target.partition("@")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


PAUSE_ENV = "LONGTAIL_PAUSE_AT"
PAUSE_DIR_ENV = "LONGTAIL_PAUSE_DIR"
_paused: dict[str, int] = {}


def pausepoint(name: str, *, timeout: float = 120.0) -> None:
    """Stop here until a test says go, when `LONGTAIL_PAUSE_AT` names this point.

    The process writes `<LONGTAIL_PAUSE_DIR>/<pid>.paused` and waits until the file
    `<LONGTAIL_PAUSE_DIR>/go` exists (at most `timeout` seconds), so a test can force an
    interleaving of real processes: both read, then both write. `name@N` pauses at the
    N-th call only (a replan after a lost claim runs on). Without the variable it costs
    one dict lookup."""
    target = os.environ.get(PAUSE_ENV)
    if not target:
        return
    point, _, nth = target.partition("@")
    if point != name:
        return
    _paused[name] = _paused.get(name, 0) + 1
    if _paused[name] != int(nth or 1):
        return
    folder = Path(os.environ.get(PAUSE_DIR_ENV, "."))
    (folder / f"{os.getpid()}.paused").write_text(name)
    deadline = time.monotonic() + timeout
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
