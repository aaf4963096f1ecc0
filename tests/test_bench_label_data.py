"""label_efficiency without the shared embeddings embeds the CSVs itself (BENCHMARKS.md §1)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench"


class _HashEncoder:
    """A stand-in text encoder: deterministic 8-d vectors from the text's characters."""

    def __init__(self):
        self.calls = 0

    def encode(self, batch: dict) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), *(ord(c) for c in (t + " " * 7)[:7])] for t in batch["text"]],
                        dtype=np.float32)


def test_missing_shared_embeddings_are_made_from_the_csvs_and_cached(tmp_path):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    le = load(BENCH / "label_efficiency.py")
    enc = _HashEncoder()
    cache = tmp_path / "emb.npz"
    (X, y, Xt, yt, names), path = le.load_data("full", shared=tmp_path / "none", cache=cache,
                                               encoder=enc)
    assert path == str(cache) or Path(path) == cache
    assert X.shape == (10_003, 8) and Xt.shape == (3_080, 8) and len(names) == 77
    assert len(y) == len(X) and len(yt) == len(Xt)
    calls = enc.calls
    le.load_data("smoke", shared=tmp_path / "none", cache=cache, encoder=enc)
    assert enc.calls == calls  # the second load reads the cache


def _bench(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    return load(BENCH / f"{name}.py")


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """An MNIST-format IDX file (gzip): magic 0x0000 0x08 ndim, big-endian dims, uint8."""
    import gzip

    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.astype(np.uint8).tobytes())


def _fake_fashion(root: Path, n_train: int = 400, n_test: int = 120) -> None:
    """Images from a few strong latent patterns plus noise (a falling PCA spectrum)."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True)
    patterns = rng.normal(size=(5, 28 * 28))
    for split, n in (("train", n_train), ("t10k", n_test)):
        lab = rng.integers(0, 10, n)
        z = rng.normal(size=(n, 5)) * np.array([8, 6, 4, 3, 2])
        img = np.clip(128 + 6 * (z @ patterns) + rng.normal(size=(n, 784)) * 5, 0, 255)
        img = img.reshape(n, 28, 28)
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", img)
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz", lab)


def test_fashion_mnist_is_a_seeded_pool_reduced_by_pca_without_whitening(tmp_path):
    _bench("label_efficiency")
    import datasets

    root = tmp_path / "fm"
    _fake_fashion(root)
    (X, y, Xt, yt, names), src = datasets.fashion_mnist(
        "full", root=root, cache_dir=tmp_path / "c", install=False, pool=300)
    assert X.shape == (300, 64) and Xt.shape == (120, 64) and len(names) == 10
    assert X.dtype == np.float32 and y.dtype == np.int64
    sd = X.std(axis=0)
    assert sd[0] > 3 * sd[-1]  # PCA variances fall off: not whitened
    # the components were fitted on the pool: the pool is centred, the test set is not exactly
    assert np.abs(X.mean(axis=0)).max() < 1e-3
    again, _ = datasets.fashion_mnist("full", root=root, cache_dir=tmp_path / "c2",
                                      install=False, pool=300)
    assert np.array_equal(again[1], y) and np.allclose(again[0], X, atol=1e-4)  # seeded
    assert (tmp_path / "c").glob("*.npz")


def test_fashion_mnist_absent_smoke_uses_a_standin_and_full_refuses(tmp_path):
    _bench("label_efficiency")
    import datasets

    (X, y, Xt, yt, names), src = datasets.fashion_mnist("smoke", root=tmp_path / "none")
    assert "stand-in" in src and X.shape[1] == 64 and len(np.unique(y)) == 10
    assert np.abs(np.linalg.norm(X, axis=1) - 1).max() > 0.5  # not unit norm
    import pytest

    with pytest.raises(FileNotFoundError, match="absent"):
        datasets.fashion_mnist("full", root=tmp_path / "none", install=False)


def test_digits_split_is_seeded_stratified_70_30():
    _bench("label_efficiency")
    import datasets

    (X, y, Xt, yt, names), src = datasets.digits("full")
    (X2, y2, *_), _ = datasets.digits("full")
    assert len(X) + len(Xt) == 1797 and abs(len(Xt) / 1797 - 0.3) < 0.01
    assert np.array_equal(y, y2) and np.array_equal(X, X2)
    share = np.bincount(y) / len(y)
    share_t = np.bincount(yt) / len(yt)
    assert np.abs(share - share_t).max() < 0.01
    assert X.max() <= 1.0


def test_figures_with_a_timed_out_seed_average_the_seeds_that_reached_a_budget():
    le = _bench("label_efficiency")
    budgets = [10, 20, 30]
    runs = [{"accuracy": [0.5, 0.6, 0.7], "query_seconds": [1, 1, 1]},
            {"accuracy": [0.7], "query_seconds": [1], "timed_out_at": 20}]
    f = le.figures(runs, budgets, full_acc=0.8)
    assert f["accuracy_mean"][0] == 0.6 and f["accuracy_mean"][1] == 0.6
    assert f["aulc"] is None and f["labels_to_95pct_full"] is None
    assert f["timed_out_at"] == [None, 20] and f["seeds_per_budget"] == [2, 1, 1]
    f = le.figures([{"accuracy": [0.5], "query_seconds": [], "timed_out_at": 20}],
                   budgets, full_acc=0.8)
    assert f["accuracy_mean"] == [0.5, None, None]
    assert "timed out" in le.markdown_table({"budgets": budgets, "methods": {"m": f}})


def test_a_round_over_the_cap_is_recorded_as_timed_out_at_its_budget(monkeypatch):
    import time

    le = _bench("label_efficiency")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    data = (X, y, X, y, np.array(["a", "b"]))
    real = le.Querier.query
    calls = []

    def slow_second(self, model, labeled, k):
        calls.append(len(labeled))
        if len(calls) == 2:
            time.sleep(30)  # interrupted by the cap long before this ends
        return real(self, model, labeled, k)

    monkeypatch.setattr(le.Querier, "query", slow_second)
    t0 = time.perf_counter()
    r = le.run_one("longtail:random", 0, data, [20, 40, 60], 20, round_cap=0.5)
    assert time.perf_counter() - t0 < 10
    assert r["timed_out_at"] == 40 and len(r["accuracy"]) == 1
    assert any("cap" in n for n in r["notes"])


def test_git_dirty_sees_code_changes_but_not_results(tmp_path, monkeypatch):
    import subprocess

    _bench("label_efficiency")
    import _common

    repo = tmp_path / "repo"
    (repo / "bench" / "results").mkdir(parents=True)
    (repo / "bench" / "x.py").write_text("a = 1\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    assert _common.git_dirty(repo) is False
    (repo / "bench" / "results" / "r.json").write_text("{}")
    assert _common.git_dirty(repo) is False  # results are output, not code
    (repo / "bench" / "x.py").write_text("a = 2\n")
    assert _common.git_dirty(repo) is True
    assert _common.git_dirty(tmp_path / "nowhere") is None


def test_code_hash_changes_with_any_source_file_of_a_package(tmp_path, monkeypatch):
    _bench("label_efficiency")
    import _common

    pkg = tmp_path / "pkg_h"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "m.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    h1 = _common.code_hash(("pkg_h",))
    (pkg / "sub" / "m.py").write_text("x = 2\n")
    assert _common.code_hash(("pkg_h",)) != h1
    assert _common.code_hash(("pkg_h",), ("extra",)) != _common.code_hash(("pkg_h",))


def test_a_cached_run_is_rerun_when_any_of_its_code_changes(tmp_path, monkeypatch):
    le = _bench("label_efficiency")
    monkeypatch.setattr(le, "CACHE", tmp_path / "cache")
    keys = {"longtail": "aaa", "skactiveml": "s", "modal": "m"}
    monkeypatch.setattr(le, "source_keys", lambda: dict(keys))
    runs = []
    real = le.run_one
    monkeypatch.setattr(le, "run_one", lambda *a, **k: runs.append(a[0]) or real(*a, **k))
    argv = ["--size", "smoke", "--dataset", "digits", "--methods", "longtail:random",
            "--out", str(tmp_path / "r.json"), "--resume"]
    le.main(argv)
    le.main(argv)
    assert runs == ["longtail:random"]  # the second run reused the cache
    keys["longtail"] = "bbb"  # e.g. longtail.learners changed
    le.main(argv)
    assert runs == ["longtail:random"] * 2
    import json

    assert json.loads((tmp_path / "r.json").read_text())["source_sha1"]["longtail"] == "bbb"


def test_lazy_maxherding_picks_what_scikit_activeml_picks():
    fb = _bench("first_batch")
    le = _bench("label_efficiency")
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(300, 6)) * np.array([3, 2, 1, 1, 0.5, 0.2]) + 1).astype(np.float32)
    y = rng.integers(0, 3, 300)
    lib = le.Querier("skactiveml:MaxHerding", 0, X, y, 3).query(
        None, np.zeros(0, dtype=np.int64), 15)
    assert np.array_equal(fb.maxherding_lazy(X, 15), np.asarray(lib))
