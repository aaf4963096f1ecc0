"""The cold start chooses its geometry from the pool (issue 18): unchanged on vectors
with a falling spectrum, cosine with a batch-sized neighbourhood on flat (whitened) ones."""

from __future__ import annotations

import numpy as np

from longtail.strategies import ArrayVectors, select
from longtail.strategies._base import Context
from longtail.strategies.cold import UnitRows, cold_start, geometry, spectrum_flatness


def _ctx(X, k, state=None):
    return Context(k=k, candidates=np.arange(len(X)), rng=np.random.default_rng(0),
                   vectors=ArrayVectors(X), state=state)


def _directions(n=2000, d=16, classes=10, seed=0):
    """Classes told apart by direction only; radii spread 30-fold; then whitened."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, classes, n)
    r = np.exp(rng.uniform(0, np.log(30), n))[:, None]
    X = r * (centres[y] + 0.15 * rng.normal(size=(n, d)))
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32), y


def test_flatness_is_one_for_isotropic_and_small_for_one_direction():
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(3000, 20)).astype(np.float32)
    line = (rng.normal(size=(3000, 1)) * np.ones((1, 20)) + 0.01 * iso).astype(np.float32)
    assert spectrum_flatness(_ctx(iso, 5)) > 0.9
    assert spectrum_flatness(_ctx(line, 5)) < 0.1


def test_falling_spectrum_keeps_the_euclidean_local_graph():
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(600, 12)) * np.geomspace(10, 0.1, 12)).astype(np.float32)
    ctx = _ctx(X, 10, state={})
    geo = geometry(ctx)
    assert geo["metric"] == "euclidean" and geo["knn"] == 30
    sel = cold_start(ctx)
    assert sel.log["geometry"]["metric"] == "euclidean" and sel.log["knn"] == 30
    # the Euclidean graph is cached for the later arms
    assert "graph" in ctx.state.get("longtail.strategies", {})


def test_flat_spectrum_uses_cosine_with_a_batch_sized_neighbourhood():
    X, _ = _directions()
    geo = geometry(_ctx(X, 20))
    assert geo["metric"] == "cosine" and geo["knn"] == 100  # 2,000 rows / 20 picks
    assert geometry(_ctx(X, 200))["knn"] == 30  # never below the default neighbourhood


def test_on_a_flat_spectrum_the_pick_ignores_row_norms_unlike_euclidean_coverage():
    X, _ = _directions()
    scale = np.exp(np.random.default_rng(5).uniform(-1, 1, (len(X), 1))).astype(np.float32)
    state: dict = {}
    a = cold_start(_ctx(X, 20, state)).rows
    b = cold_start(_ctx(X * scale, 20)).rows
    assert a.tolist() == b.tolist()  # cosine geometry: norms carry no weight
    e1 = select("coverage", 20, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X)
    e2 = select("coverage", 20, np.arange(len(X)), rng=np.random.default_rng(0),
                vectors=X * scale)
    assert e1.rows.tolist() != e2.rows.tolist()  # (what the rule protects against)
    # the cosine graph is not left in state for the Euclidean arms to reuse
    assert "graph" not in state.get("longtail.strategies", {})


def test_unit_rows_reads_unit_norm_rows_and_keeps_zero_rows():
    X = np.array([[3, 4], [0, 0], [1, 0]], dtype=np.float32)
    r = UnitRows(ArrayVectors(X))
    assert np.allclose(np.linalg.norm(r.read(np.array([0, 2])), axis=1), 1)
    assert np.allclose(r.read(np.array([1])), 0)
    rows, v = next(r.iter_chunks(np.array([2, 0])))
    assert rows.tolist() == [2, 0] and np.allclose(v, [[1, 0], [0.6, 0.8]])
