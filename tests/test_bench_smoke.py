"""Every benchmark runs in its smoke size and writes a result file with the common keys.

No benchmark may skip for want of data: the ones that read Banking77 or Fashion-MNIST
run on a synthetic stand-in when the files are absent, and
``test_data_benchmarks_run_on_standins`` checks exactly that by pointing them at an empty
folder. Marked ``slow`` (all smoke runs together take a couple of minutes on a loaded
machine); deselect with ``-m 'not slow'``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(
    p for p in BENCH.glob("*.py")
    if p.stem not in {"_common", "run", "datasets"} and not p.stem.startswith("_")
)
COMMON_KEYS = {"benchmark", "dataset", "params", "machine", "git_commit", "git_dirty",
               "started_at"}


def _load(path: Path):
    """A benchmark script as a module, loaded the way `make bench` (bench/run.py) does."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    return load(path)


def _check(result: dict, stem: str) -> None:
    missing = COMMON_KEYS - set(result)
    assert not missing, f"{stem} result lacks {sorted(missing)}"
    assert result["benchmark"] == stem
    assert isinstance(result["params"], dict) and isinstance(result["machine"], dict)
    assert result["git_dirty"] in (True, False, None)
    if stem in ("label_efficiency", "cost_aware", "long_tail"):
        assert result["budgets"] and result["methods"]
        for fig in result["methods"].values():
            assert len(fig["accuracy_mean"]) == len(result["budgets"])
    if stem == "selection_scale":
        assert result["runs"]
    if stem == "long_tail":
        for fig in result["methods"].values():
            assert len(fig["macro_f1_mean"]) == len(fig["rare_recall_mean"]) == \
                len(result["budgets"])
    if stem == "novelty":
        for figs in result["datasets"].values():
            assert 0.0 <= figs["auroc"] <= 1.0 and figs["per_class"]
    if stem == "search":
        assert all({"pool", "recall_at_10", "seconds", "cli_seconds"} <= set(r)
                   for r in result["runs"])
    if stem == "honest_numbers":
        assert {"interval_coverage_min", "stop_regret_mean_points_max", "stop_rate_min",
                "forecast_coverage_min"} <= set(result["summary"])
        assert result["summary"]["interval_coverage_min"] >= 0.94
    if stem == "eval_estimators":
        for figs in result["datasets"].values():
            assert {"default_estimator", "default_coverage",
                    "default_label_ratio_vs_uniform"} <= set(figs)
    if stem == "images":
        assert result["budgets"] and result["transfer"]
        for fig in result["methods"].values():
            assert len(fig["accuracy_mean"]) == len(result["budgets"])
    if stem == "stream":
        keys = {"step", "pool", "ingest_seconds", "index_update_seconds", "query_seconds",
                "rebuilt"}
        runs = result["runs"]
        assert runs and all(keys <= set(r) for r in runs)
        assert runs[0]["rebuilt"]  # step 1 builds the indexes...
        # ...later steps join new rows to them; a rebuild only where the log says drift
        assert all("drift" in r["pool_check"] for r in runs[1:] if r["rebuilt"])
        assert all(r["index_update_seconds"] <= r["query_seconds"] for r in runs)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_smoke(script: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    rc = _load(script).main(["--size", "smoke", "--out", str(out)])
    assert rc in (0, None)
    assert out.exists(), f"{script.stem} wrote no result"
    _check(json.loads(out.read_text()), script.stem)


def _no_shared_data(monkeypatch, tmp_path: Path) -> None:
    """Point every data path of the benchmarks at an empty folder (as in CI)."""
    import datasets

    empty = tmp_path / "absent"
    monkeypatch.setattr(datasets, "SHARED_DATA", empty)
    monkeypatch.setattr(datasets, "FASHION_DIR", empty / "fashion-mnist")
    monkeypatch.setattr(datasets, "EMBED_CACHE", empty / "emb.npz")
    # no text encoder either: the stand-in is the last resort
    monkeypatch.setattr(datasets, "embed_banking77", lambda *a, **k: None)


@pytest.mark.slow
@pytest.mark.parametrize("stem,argv", [
    ("label_efficiency", ["--dataset", "banking77"]),
    ("label_efficiency", ["--dataset", "fashion_mnist"]),
    ("label_efficiency", ["--dataset", "digits"]),
    ("forecast", []),
    ("managed_eval", []),
    ("first_batch", ["--methods", "longtail:auto,skactiveml:MaxHerding"]),
    ("honest_numbers", ["--datasets", "banking77"]),
], ids=["le-banking77", "le-fashion", "le-digits", "forecast", "managed_eval", "first_batch",
        "honest_numbers"])
def test_data_benchmarks_run_on_standins(stem, argv, tmp_path, monkeypatch) -> None:
    mod = _load(BENCH / f"{stem}.py")
    _no_shared_data(monkeypatch, tmp_path)
    if hasattr(mod, "DATA"):
        monkeypatch.setattr(mod, "DATA", tmp_path / "absent" / "banking77" / "minilm.npz")
    out = tmp_path / "x.json"
    assert mod.main(["--size", "smoke", "--out", str(out), *argv]) in (0, None)
    result = json.loads(out.read_text())
    _check(result, stem)
    if "--dataset" in argv and argv[1] == "digits":
        assert "load_digits" in result["dataset"]  # digits ships with scikit-learn
    elif stem == "first_batch":
        assert all("stand-in" in e["source"] for n, e in result["datasets"].items()
                   if n != "digits")
    else:
        assert "stand-in" in result["dataset"]


def test_run_discovers_benchmarks() -> None:
    run = _load(BENCH / "run.py")
    names = set(run.discover())
    assert {p.stem for p in SCRIPTS} == names
    assert "_common" not in names and "run" not in names and "datasets" not in names
