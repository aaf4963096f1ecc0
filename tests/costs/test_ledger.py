"""The compute meter: phases add up to the command, nested commands count once."""

from __future__ import annotations

import time

from longtail.costs import ledger


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_phases_add_up_to_the_command():
    with ledger.command("train") as run:
        with ledger.phase("train"):
            _spin(0.05)
            with ledger.phase("score"):  # nested: counted in score, not twice
                _spin(0.05)
        with ledger.phase("evaluate"):
            _spin(0.02)
        time.sleep(0.02)  # wall time outside every phase is "other"
    rec = run.record()
    phases = rec["phases"]
    assert set(phases) == {"train", "score", "evaluate", "other"}
    assert 0.04 <= phases["train"]["cpu_seconds"] < 0.09
    assert phases["score"]["cpu_seconds"] >= 0.045
    assert abs(sum(p["cpu_seconds"] for p in phases.values()) - rec["cpu_seconds"]) < 1e-3
    assert rec["wall_seconds"] >= 0.13 and phases["other"]["wall_seconds"] >= 0.015
    assert rec["peak_rss_mb"] > 0 and rec["gpu_seconds"] == 0


def test_a_command_inside_a_command_is_counted_in_the_outer_one():
    with ledger.command("run") as outer:
        with ledger.command("train") as inner:
            with ledger.phase("train"):
                _spin(0.02)
    assert inner.nested and not outer.nested
    assert outer.record()["phases"]["train"]["cpu_seconds"] >= 0.015


def test_phases_outside_a_command_cost_nothing():
    with ledger.phase("train"):
        pass
    assert ledger.current() is None


def test_gpu_phases_and_money():
    with ledger.command("embed") as run:
        with ledger.phase("embed", gpu=True):
            time.sleep(0.02)
    rec = run.record()
    assert rec["gpu_seconds"] >= 0.015
    assert ledger.compute_money(3600, 1800, 0.10, 2.0) == 0.10 + 1.0
