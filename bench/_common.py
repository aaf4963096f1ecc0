"""Helpers every benchmark shares: machine facts, git commit, result files, peak RSS."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import resource
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict:
    """CPU count and memory of this machine."""
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "memory_bytes": mem}


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def header(benchmark: str, dataset: str, params: dict) -> dict:
    return {
        "benchmark": benchmark,
        "dataset": dataset,
        "params": params,
        "machine": machine(),
        "git_commit": git_commit(),
        "started_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_result(result: dict, out: str | Path | None = None) -> Path:
    """Write a result file (default bench/results/NAME.json) and return its path."""
    path = Path(out) if out else RESULTS / f"{result['benchmark']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return path


def strategies_hash() -> str:
    """sha1 (10 hex) of longtail.strategies' source files: the cache key of longtail runs."""
    try:
        import longtail.strategies as st
    except ImportError:
        return "none"
    h = hashlib.sha1()
    for p in sorted(Path(st.__file__).parent.rglob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:10]
