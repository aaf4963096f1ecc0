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
    """HEAD of the checkout the benchmark runs from ("unknown" outside git)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty(root: Path | None = None) -> bool | None:
    """Whether the checkout differs from HEAD (tracked changes or untracked files)
    outside bench/results/ (the results themselves are output, not code); None
    outside git. A figure from a dirty tree was not produced by ``git_commit``.
    ``root``: the checkout (default: the one holding this file)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)bench/results"],
            capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parents[1] if root is None else root,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(out.strip())


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def header(benchmark: str, dataset: str, params: dict, started_at: str | None = None) -> dict:
    """The keys every result file carries. ``started_at``: when the run began (pass the
    time taken before any work; default now); ``git_dirty`` says whether uncommitted
    code was running."""
    return {
        "benchmark": benchmark,
        "dataset": dataset,
        "params": params,
        "machine": machine(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "started_at": started_at or now_iso(),
    }


def write_result(result: dict, out: str | Path | None = None) -> Path:
    """Write a result file (default bench/results/NAME.json) and return its path."""
    path = Path(out) if out else RESULTS / f"{result['benchmark']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return path


def code_hash(modules: tuple[str, ...] = ("longtail",), extra: tuple[str, ...] = ()) -> str:
    """sha1 (10 hex) of every source file of the named packages plus ``extra`` texts
    (e.g. the benchmark's own functions): a cache key that changes with any code that can
    change a result. "none" for a package that cannot be imported."""
    import importlib

    h = hashlib.sha1()
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            h.update(f"{name}:none".encode())
            continue
        path = Path(mod.__file__)
        files = sorted(path.parent.rglob("*.py")) if hasattr(mod, "__path__") else [path]
        for p in files:
            h.update(f"{name}/{p.relative_to(path.parent)}".encode())
            h.update(p.read_bytes())
    for text in extra:
        h.update(text.encode())
    return h.hexdigest()[:10]


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


def first_reach(target: float, xs: list[float], acc: list[float]) -> float | None:
    """Where a curve (`acc` at `xs`: labels, money...) first reaches `target`, linear
    between points; the first x when it starts there; None if it never does."""
    for i, a in enumerate(acc):
        if a >= target:
            if i == 0:
                return float(xs[0])
            a0, x0 = acc[i - 1], xs[i - 1]
            return float(x0 + (target - a0) / max(a - a0, 1e-12) * (xs[i] - x0))
    return None
