"""Every benchmark runs in its smoke size and writes a result file with the common keys.

A benchmark whose data is missing exits 0 without writing anything: that one is skipped.
Marked ``slow`` (all smoke runs together take a couple of minutes on a loaded machine);
deselect with ``-m 'not slow'``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(
    p for p in BENCH.glob("*.py") if p.stem not in {"_common", "run"} and not p.stem.startswith("_")
)
COMMON_KEYS = {"benchmark", "dataset", "params", "machine", "git_commit", "started_at"}


def _load(path: Path):
    """A benchmark script as a module, loaded the way `make bench` (bench/run.py) does."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    return load(path)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_smoke(script: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    rc = _load(script).main(["--size", "smoke", "--out", str(out)])
    assert rc in (0, None)
    if not out.exists():
        pytest.skip(f"{script.stem}: wrote no result (its data is missing)")
    result = json.loads(out.read_text())
    missing = COMMON_KEYS - set(result)
    assert not missing, f"{script.stem} result lacks {sorted(missing)}"
    assert result["benchmark"] == script.stem
    assert isinstance(result["params"], dict) and isinstance(result["machine"], dict)
    if script.stem in ("label_efficiency", "cost_aware", "long_tail"):
        assert result["budgets"] and result["methods"]
        for fig in result["methods"].values():
            assert len(fig["accuracy_mean"]) == len(result["budgets"])
    if script.stem == "selection_scale":
        assert result["runs"]


def test_run_discovers_benchmarks() -> None:
    run = _load(BENCH / "run.py")
    names = set(run.discover())
    assert {p.stem for p in SCRIPTS} == names
    assert "_common" not in names and "run" not in names
