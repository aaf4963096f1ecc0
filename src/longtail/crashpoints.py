"""Test-only crash points: named places where a test can SIGKILL the process.

`LONGTAIL_CRASH_AT=phase:step` (e.g. `ingest:after_commit`) makes the first call of
`crashpoint("ingest:after_commit")` kill the process with SIGKILL, so the kill lands
exactly inside a transaction or between a catalog commit and a file write, where a
kill from outside at a random time rarely lands. `phase:step@N` kills at the N-th call
instead (a point inside a loop). Without the variable a crash point costs one dict
lookup. Used by tests/stream and bench/crash.py only.

Points: ingest:in_tx, ingest:after_commit, labels:in_tx, train:model_file_written,
train:after_commit, round:in_tx, version:in_tx, embed:vectors_written, run:step.
"""

from __future__ import annotations

import os
import signal

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
