"""A pool that grows: new rows join the saved kNN graph and clusterings (O(new rows));
a rebuild only on drift or large growth, and the log says which and why."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.strategies import select
from longtail.strategies._pool import GROWTH_REBUILD, knn_search
from longtail.strategies.state import set_pool

from ._data import blobs

CENTERS = np.random.default_rng(1).normal(0, 10, size=(6, 8))
CLASSES = np.array([f"c{i}" for i in range(6)], dtype=object)


def _probs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, n]).dirichlet(np.ones(6), size=n)


def _state() -> dict:
    state: dict = {}
    set_pool(state, "minilm", fingerprint="v1")
    return state


def _select(name: str, X: np.ndarray, state: dict | None, seed: int,
            labeled: np.ndarray | None = None, **params):
    lab = np.zeros(0, dtype=np.int64) if labeled is None else labeled
    cand = np.setdiff1d(np.arange(len(X)), lab)
    return select(name, 10, cand, rng=np.random.default_rng(seed), vectors=X,
                  probs=_probs(len(cand), seed), classes=CLASSES, state=state,
                  labeled_rows=lab if len(lab) else None,
                  labeled_y=CLASSES[lab % 6] if len(lab) else None, params=params)


def _same(n_per: int, seed: int) -> np.ndarray:
    return blobs(n_per, CENTERS, 1.0, seed)[0]


def _recall(g, X: np.ndarray) -> float:
    """Share of each graph row's true kNN (among the graph's rows) that its list holds."""
    knn = g.nbr.shape[1]
    true, _ = knn_search(X[g.rows], X[g.rows], knn, exclude_self=True)
    hits = sum(len(set(a[a >= 0].tolist()) & set(b.tolist())) for a, b in zip(g.nbr, true,
                                                                               strict=True))
    return hits / true.size


@pytest.mark.parametrize("graph_rows", [100_000, 700])
def test_joined_graph_holds_the_true_neighbours(graph_rows):
    # 700: the graph is a sample of the pool; rows leave it as new ones come in
    X = _same(100, 0)
    state = _state()
    _select("coverage", X, state, 0, graph_rows=graph_rows)
    for step in range(1, 5):
        X = np.concatenate([X, _same(50, step)])
        log = _select("coverage", X, state, step, graph_rows=graph_rows).log
        rec = log["indexes"]["graph"]
        assert rec["action"] == "updated", rec
        assert log["indexes_built"] == []
        g = state["longtail.strategies"]["graph"]
        assert len(g.rows) == min(len(X), graph_rows)
        assert _recall(g, X) >= 0.95
        assert np.array_equal(g.seen, np.arange(len(X)))
    if graph_rows > len(X):
        # the joined graph is the graph a rebuild makes, up to a rare missed neighbour
        fresh = _state()
        _select("coverage", X, fresh, 9)
        g2 = fresh["longtail.strategies"]["graph"]
        assert np.array_equal(g.rows, g2.rows)
        same = np.mean([len(set(a.tolist()) & set(b.tolist())) / len(a)
                        for a, b in zip(g.nbr, g2.nbr, strict=True)])
        assert same >= 0.98
        assert g.sigma2 == pytest.approx(g2.sigma2, rel=0.05)


def test_a_sampled_graph_stays_a_uniform_sample():
    X = _same(100, 0)  # 600 rows, graph of 300
    state = _state()
    _select("coverage", X, state, 0, graph_rows=300)
    X = np.concatenate([X, _same(300, 1)])  # 1,800 new rows: 3/4 of the pool
    _select("coverage", X, state, 1, graph_rows=300)
    g = state["longtail.strategies"]["graph"]
    assert len(g.rows) == 300
    new_share = np.mean(g.rows >= 600)
    assert 0.65 <= new_share <= 0.85  # 0.75 for a uniform draw of the whole pool


def test_new_rows_join_their_nearest_centroid_and_k_is_kept():
    X = _same(100, 0)
    state = _state()
    first = _select("cluster_margin", X, state, 0)
    (name,) = first.log["indexes_built"]
    cl0 = state["longtail.strategies"][name]
    X = np.concatenate([X, _same(100, 1)])  # the pool doubles: K would follow 2·sqrt(n)
    log = _select("cluster_margin", X, state, 1).log
    assert list(log["indexes"]) == [name] and log["indexes_built"] == []
    rec = log["indexes"][name]
    assert rec["action"] == "updated" and "600 new rows assigned" in rec["reason"]
    assert rec["drift"]["drifted"] is False and rec["drift"]["rows_added"] == 600
    cl = state["longtail.strategies"][name]
    assert np.array_equal(cl.centroids, cl0.centroids)
    new = np.arange(600, 1200)
    d2 = ((X[new, None, :] - cl.centroids[None]) ** 2).sum(axis=2)
    assert np.array_equal(cl.lookup(new), d2.argmin(axis=1))
    assert np.allclose(cl.d2[np.searchsorted(cl.rows, new)], d2.min(axis=1), rtol=1e-4)


@pytest.mark.parametrize("strategy, index", [("coverage", "graph"),
                                             ("cluster_margin", "pool_")])
def test_a_drifted_batch_rebuilds_and_the_log_says_drift(strategy, index):
    X = _same(100, 0)
    state = _state()
    _select(strategy, X, state, 0)
    far = blobs(20, CENTERS[:3] + 60.0, 1.0, 7)[0]  # 60 rows far from every old row
    X = np.concatenate([X, far])
    log = _select(strategy, X, state, 1).log
    assert log["pool_check"]["verdict"] == "update"  # rows were only appended...
    (name,) = [n for n in log["indexes"] if n.startswith(index)]
    rec = log["indexes"][name]
    assert rec["action"] == "built" and log["indexes_built"] == [name]  # ...yet rebuilt
    assert rec["reason"].startswith("rebuilt: drift: 100% of the 60 rows added")
    assert rec["drift"]["drifted"] is True and rec["drift"]["share"] == 1.0
    # the rebuilt index covers the new region: the next batch from it is no drift
    X = np.concatenate([X, blobs(20, CENTERS[:3] + 60.0, 1.0, 8)[0]])
    again = _select(strategy, X, state, 2).log["indexes"][name]
    assert again["action"] == "updated" and again["drift"]["drifted"] is False


@pytest.mark.parametrize("strategy", ["coverage", "cluster_margin", "auto"])
def test_same_distribution_batches_do_not_rebuild_even_when_they_double_the_pool(strategy):
    X = _same(50, 0)
    state = _state()
    # auto on a "large" pool with 5 labels per class: the graph and a pool clustering
    params = {"graph_rows": 250} if strategy == "auto" else {}
    labeled = np.arange(0, 300, 10)
    first = _select(strategy, X, state, 0, labeled, **params)
    assert first.log["indexes_built"]
    if strategy == "auto":
        assert "graph" in first.log["indexes_built"] and len(first.log["indexes_built"]) == 2
    names = set(first.log["indexes_built"])
    for step in range(1, 4):  # 300 -> 600 -> 1200 -> 2400 rows
        X = np.concatenate([X, _same(50 * 2 ** (step - 1), step)])
        log = _select(strategy, X, state, step, labeled, **params).log
        assert log["indexes_built"] == [], log["indexes"]
        assert set(log["indexes"]) <= names
        for rec in log["indexes"].values():
            assert rec["action"] in ("updated", "reused")
            if rec["action"] == "updated":
                assert rec["drift"]["drifted"] is False
                assert rec["drift"]["share"] < 0.2


def test_growth_past_the_threshold_rebuilds_and_says_so():
    X = _same(5, 0)  # 30 rows
    state = _state()
    _select("coverage", X, state, 0)
    X = np.concatenate([X, _same(int(5 * GROWTH_REBUILD), 1)])  # 17x the rows
    rec = _select("coverage", X, state, 1).log["indexes"]["graph"]
    assert rec["action"] == "built"
    assert rec["reason"].startswith("rebuilt: the pool grew 17.0x since the build")


def test_selection_after_an_update_matches_a_rebuild():
    X = _same(100, 0)
    state = _state()
    _select("coverage", X, state, 0)
    X = np.concatenate([X, _same(100, 1)])
    updated = _select("coverage", X, state, 1)
    rebuilt = _select("coverage", X, _state(), 1)
    assert updated.log["indexes"]["graph"]["action"] == "updated"
    assert rebuilt.log["indexes"]["graph"]["action"] == "built"
    assert len(set(updated.rows.tolist()) & set(rebuilt.rows.tolist())) >= 8


def test_a_new_pool_clustering_replaces_the_old_one_in_the_state():
    X = _same(20, 0)  # 120 rows: K = 22
    state = _state()
    first = _select("cluster_margin", X, state, 0)
    (old,) = first.log["indexes_built"]
    X = np.concatenate([X, _same(20 * 17, 1)])  # 18x: past the growth threshold, K x4+
    log = _select("cluster_margin", X, state, 1).log
    (name,) = log["indexes_built"]
    assert name != old and log["indexes"][name]["reason"].startswith(f"replaces {old}")
    assert old not in state["longtail.strategies"]
