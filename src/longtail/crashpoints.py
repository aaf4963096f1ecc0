"""Test-only hook points: named places where a test can stop the process, by killing it
(crash tests) or by holding it until told to go on (concurrency tests). One mechanism:

`LONGTAIL_CRASH_AT=phase:step` (e.g. `ingest:after_commit`) makes the first call of
`crashpoint("ingest:after_commit")` act; `phase:step@N` acts at the N-th call instead (a
point inside a loop, or a replan after a lost claim). The action is `LONGTAIL_CRASH_ACTION`:

- `kill` (the default): SIGKILL, so the kill lands exactly inside a transaction or between
  a catalog commit and a file write, where a kill from outside at a random time rarely
  lands (tests/stream, bench/crash.py);
- `pause`: write `<LONGTAIL_PAUSE_DIR>/<pid>.paused` and wait until the file
  `<LONGTAIL_PAUSE_DIR>/go` exists (at most 120 s), so a test can force an interleaving of
  real processes: both read, then both write (tests/engine/test_concurrent_rounds.py).

Without the variable a point costs one dict lookup.

Points: ingest:in_tx, ingest:after_commit, labels:in_tx, train:model_file_written,
train:in_tx (model, metrics and lifts written, not committed), train:after_commit,
round:planned (a round's batch is chosen, not yet claimed), round:in_tx,
round:after_commit, version:in_tx, consensus:in_tx, suspects:scored,
embed:vectors_written, run:step.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "LONGTAIL_CRASH_AT"
ACTION_ENV = "LONGTAIL_CRASH_ACTION"  # kill (default) or pause
PAUSE_DIR_ENV = "LONGTAIL_PAUSE_DIR"
PAUSE_TIMEOUT = 120.0
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Act (kill, or pause) when `LONGTAIL_CRASH_AT` names this point and its count."""
    target = os.environ.get(ENV)
    if not target:
        return
    point, _, nth = target.partition("@")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != int(nth or 1):
        return
    action = os.environ.get(ACTION_ENV, "kill")
    if action == "pause":
        _pause(name)
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        raise ValueError(f"{ACTION_ENV}={action!r}: kill or pause")


def _pause(name: str) -> None:
    folder = Path(os.environ.get(PAUSE_DIR_ENV, "."))
    (folder / f"{os.getpid()}.paused").write_text(name)
    deadline = time.monotonic() + PAUSE_TIMEOUT
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
