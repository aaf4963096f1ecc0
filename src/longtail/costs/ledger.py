"""The compute ledger's meter: process CPU seconds, wall seconds and peak memory of a
command, by phase (ingest, embed, index, score, select, train, evaluate).

    with ledger.command("train") as run:        # the caller (Project) opens the run
        with ledger.phase("train"):              # engine code marks its phases
            ...
    run.record()   # -> a dict the store keeps in `compute_runs`

`phase` is cheap and does nothing outside a command, so the engine marks its phases
whoever calls it (the service, tests). CPU seconds are the process's (every thread,
`time.process_time`); wall seconds `time.perf_counter`; memory is the process's
resident high-water mark (`ru_maxrss`) when the phase ended: a high-water mark cannot
be reset per phase, so a phase's figure is "the most the process had held by then".
A phase run on a GPU (`phase(name, gpu=True)`) counts its wall seconds as GPU seconds.
Time outside every phase is the phase "other". Nested phases count in the innermost.

Money: CPU-hours × `compute_rate_cpu_hour` + GPU-hours × `compute_rate_gpu_hour`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["PHASES", "Phase", "CommandRun", "command", "phase", "current", "compute_money",
           "peak_rss_mb"]

PHASES = ("ingest", "embed", "duplicates", "index", "score", "select", "train", "evaluate",
          "other")


def peak_rss_mb() -> float:
    """The process's resident-memory high-water mark in MiB (0 where unknown)."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
    except (ImportError, OSError):  # pragma: no cover - Windows
        return 0.0


@dataclass
class Phase:
    """One phase's totals within a command."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    gpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    calls: int = 0

    def to_dict(self) -> dict[str, float]:
        return {"cpu_seconds": round(self.cpu_seconds, 4),
                "wall_seconds": round(self.wall_seconds, 4),
                "gpu_seconds": round(self.gpu_seconds, 4),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "calls": self.calls}


@dataclass
class CommandRun:
    """A command being metered: its phases, filled as they end."""

    command: str
    phases: dict[str, Phase] = field(default_factory=dict)
    round_id: int | None = None
    _cpu0: float = field(default_factory=time.process_time)
    _wall0: float = field(default_factory=time.perf_counter)
    _in_phase: list[tuple[str, float, float]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    finished: bool = False
    nested: bool = False  # inside another command: counted there, never recorded alone

    def add(self, name: str, cpu: float, wall: float, gpu: bool) -> None:
        p = self.phases.setdefault(name, Phase())
        p.cpu_seconds += cpu
        p.wall_seconds += wall
        p.gpu_seconds += wall if gpu else 0.0
        p.peak_rss_mb = max(p.peak_rss_mb, peak_rss_mb())
        p.calls += 1

    def finish(self) -> None:
        """Close the run: totals, and the time outside every phase as "other"."""
        if self.finished:
            return
        self.cpu_seconds = time.process_time() - self._cpu0
        self.wall_seconds = time.perf_counter() - self._wall0
        inside_cpu = sum(p.cpu_seconds for p in self.phases.values())
        inside_wall = sum(p.wall_seconds for p in self.phases.values())
        other = self.phases.setdefault("other", Phase())
        other.cpu_seconds += max(0.0, self.cpu_seconds - inside_cpu)
        other.wall_seconds += max(0.0, self.wall_seconds - inside_wall)
        other.peak_rss_mb = max(other.peak_rss_mb, peak_rss_mb())
        other.calls += 1
        self.finished = True

    def record(self) -> dict:
        """The run as the store keeps it (totals are the sums over phases)."""
        self.finish()
        phases = {k: v.to_dict() for k, v in self.phases.items()}
        return {"command": self.command, "round_id": self.round_id,
                "cpu_seconds": round(sum(p["cpu_seconds"] for p in phases.values()), 4),
                "wall_seconds": round(sum(p["wall_seconds"] for p in phases.values()), 4),
                "gpu_seconds": round(sum(p["gpu_seconds"] for p in phases.values()), 4),
                "peak_rss_mb": round(max((p["peak_rss_mb"] for p in phases.values()),
                                         default=0.0), 1),
                "phases": phases}


_stack: list[CommandRun] = []


def current() -> CommandRun | None:
    """The innermost command being metered in this process, if any."""
    return _stack[-1] if _stack else None


@contextmanager
def command(name: str) -> Iterator[CommandRun]:
    """Meter a command; a command inside another (a use case calling another) is
    counted in the outer one only, so nothing is counted twice."""
    if current() is not None:
        yield CommandRun(name, nested=True)
        return
    run = CommandRun(name)
    _stack.append(run)
    try:
        yield run
    finally:
        _stack.remove(run)
        run.finish()


@contextmanager
def phase(name: str, *, gpu: bool = False) -> Iterator[None]:
    """Count the block's CPU and wall seconds to phase `name` of the current command
    (nothing outside a command; the innermost phase when nested)."""
    run = current()
    if run is None:
        yield
        return
    run._in_phase.append((name, time.process_time(), time.perf_counter()))
    # A nested phase's time is taken out of its parent: each second is counted once.
    try:
        yield
    finally:
        _name, cpu0, wall0 = run._in_phase.pop()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        run.add(name, cpu, wall, gpu)
        if run._in_phase:
            parent, pcpu0, pwall0 = run._in_phase[-1]
            run._in_phase[-1] = (parent, pcpu0 + cpu, pwall0 + wall)


def compute_money(cpu_seconds: float, gpu_seconds: float, cpu_rate_hour: float,
                  gpu_rate_hour: float) -> float:
    """Money of compute at hourly rates."""
    return cpu_seconds / 3600.0 * cpu_rate_hour + gpu_seconds / 3600.0 * gpu_rate_hour
