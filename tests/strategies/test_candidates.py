"""Cluster-level candidates (`strategies.candidates`): above NARROW_ABOVE candidates a
score-ranked strategy scores only the rows of its best clusters, a bounded set that
holds the rows an exact pass would pick; below it nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from longtail.loop import plan_batch
from longtail.strategies import ArrayVectors
from longtail.strategies import candidates as C
from longtail.strategies import scores as S


def _pool(n: int = 6000, clusters: int = 60, d: int = 16, seed: int = 0):
    """Tight clusters, each of one class; two classes share some clusters' borders."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d)).astype(np.float32) * 4
    cl = rng.integers(0, clusters, n)
    X = (centers[cl] + rng.normal(size=(n, d))).astype(np.float32)
    y = (centers[cl, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_rows_of_best_clusters_takes_whole_clusters_best_first_until_the_limit():
    labels = np.array([0, 1, 2, 1, 0, 2, 2, 3])
    score = np.array([0.1, 0.9, 0.5, 0.0])
    np.testing.assert_array_equal(C.rows_of_best_clusters(labels, score, 2), [1, 3])
    np.testing.assert_array_equal(C.rows_of_best_clusters(labels, score, 3), [1, 2, 3, 5, 6])
    assert len(C.rows_of_best_clusters(labels, score, 100)) == 8
    # cluster 1: both sampled members in the top half; cluster 0: one of two; 2: none
    got = C.cluster_scores(np.array([0, 0, 1, 1, 2]), np.array([0.3, 0.8, 0.7, 0.9, 0.1]),
                           np.array([0.5, 0.2, 0.0]), share=0.4)
    assert got[1] > got[0] > got[2]


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(C, "NARROW_ABOVE", 1000)
    monkeypatch.setattr(C, "MIN_ROWS", 500)
    monkeypatch.setattr(C, "ROWS_PER_PICK", 20)


def test_narrowed_candidates_hold_the_rows_an_exact_margin_pass_picks(small_limits):
    X, y = _pool()
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    cand = np.arange(300, len(X), dtype=np.int64)
    state: dict = {}
    got = C.narrow("margin", cand, 50, rng=np.random.default_rng(1), vectors=X,
                   probs_of=model.predict_proba, state=state)
    assert got.log is not None and got.log["narrowed_from"] == len(cand)
    assert 1000 <= len(got.rows) < len(cand) // 4 and np.isin(got.rows, cand).all()
    # An approximation: on this pool the 50 exact picks lie in 32 clusters; the kept
    # fifth of the pool holds most of them, over three times what a random fifth holds.
    exact = cand[np.argsort(-S.margin(model.predict_proba(X[cand])))[:50]]
    recall = np.isin(exact, got.rows).mean()
    assert recall >= 0.5 and recall >= 3 * len(got.rows) / len(cand)
    # the clustering is the index: kept in the state, reused by the next round
    again = C.narrow("margin", cand, 50, rng=np.random.default_rng(2), vectors=X,
                     probs_of=model.predict_proba, state=state)
    assert got.indexes.built() and not again.indexes.built()


def test_few_candidates_or_other_strategies_are_not_narrowed(small_limits):
    X, y = _pool(n=900)
    model = LogisticRegression(max_iter=500).fit(X[:100], y[:100])
    cand = np.arange(100, 900, dtype=np.int64)
    for name, rows in (("margin", cand), ("coreset", np.arange(900, dtype=np.int64))):
        got = C.narrow(name, rows, 10, rng=np.random.default_rng(0), vectors=X,
                       probs_of=model.predict_proba)
        assert got.log is None and got.rows is rows or np.array_equal(got.rows, rows)


def test_a_round_over_a_large_pool_scores_only_the_bounded_set(small_limits):
    X, y = _pool()
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    scored: list[int] = []

    def probs_for(rows):
        scored.append(len(rows))
        return model.predict_proba(X[rows])

    plan = plan_batch(40, np.arange(300, len(X), dtype=np.int64),
                      rng=np.random.default_rng(3), strategy="margin",
                      vectors=ArrayVectors(X), probs_for=probs_for,
                      probs_of=model.predict_proba, classes=model.classes_,
                      labeled_rows=np.arange(300, dtype=np.int64), labeled_y=y[:300],
                      control_share=0.1, state={})
    kept = plan.log["candidates"]["kept"]
    assert scored == [kept] and kept < len(X) - 300
    assert plan.log["selection"]["n_candidates"] == kept
    assert len(plan.rows_of("selected")) == 40 - len(plan.rows_of("control"))


@pytest.mark.parametrize("strategy", ["margin", "auto"])
def test_query_on_a_large_pool_goes_through_cluster_level_candidates(tmp_path, monkeypatch,
                                                                     strategy):
    import json

    from tests.cli.test_cli_engine import _labeled_project, ok

    proj = _labeled_project(tmp_path)
    monkeypatch.setattr(C, "NARROW_ABOVE", 100)
    monkeypatch.setattr(C, "MIN_ROWS", 60)
    monkeypatch.setattr(C, "ROWS_PER_PICK", 3)
    # auto's graph sample (its coverage arms' rows, kept whole) a part of this small pool
    from longtail.strategies import _pool, auto

    for mod in (_pool, auto):
        monkeypatch.setattr(mod, "DEFAULT_GRAPH_ROWS", 30)
    got = json.loads(ok(["query", "-p", proj, "-n", "20", "--strategy", strategy,
                         "--json"]).stdout)
    narrowed = got["log"]["candidates"]
    assert narrowed["kept"] < narrowed["narrowed_from"]
    assert got["log"]["selection"]["n_candidates"] == narrowed["kept"]
    assert narrowed["indexes"][narrowed["index"]]["action"] == "built"


def test_cluster_margin_on_the_narrowed_set_reuses_the_narrowing_clustering(small_limits):
    X, y = _pool()
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    plan = plan_batch(40, np.arange(300, len(X), dtype=np.int64),
                      rng=np.random.default_rng(3), strategy="cluster_margin",
                      vectors=ArrayVectors(X),
                      probs_for=lambda rows: model.predict_proba(X[rows]),
                      probs_of=model.predict_proba, classes=model.classes_,
                      labeled_rows=np.arange(300, dtype=np.int64), labeled_y=y[:300],
                      control_share=0.1, state={})
    name = plan.log["candidates"]["index"]
    assert plan.log["candidates"]["indexes"][name]["action"] == "built"
    used = plan.log["selection"]["indexes"]
    assert list(used) == [name] and used[name]["action"] == "reused"
    assert len(plan.rows_of("selected")) == 40 - len(plan.rows_of("control"))


def test_auto_on_a_large_pool_scores_only_the_best_clusters_and_the_graph_sample(
        small_limits, monkeypatch):
    monkeypatch.setattr(C, "SAMPLE_PER_CLUSTER", 4)
    X, y = _pool()
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    scored: list[np.ndarray] = []
    seen_by_model: list[int] = []

    def probs_for(rows):
        scored.append(np.asarray(rows))
        return model.predict_proba(X[rows])

    def probs_of(V):
        seen_by_model.append(len(V))
        return model.predict_proba(V)

    cand = np.arange(300, len(X), dtype=np.int64)
    state: dict = {}
    plan = plan_batch(40, cand, rng=np.random.default_rng(3), strategy="auto",
                      vectors=ArrayVectors(X), probs_for=probs_for, probs_of=probs_of,
                      classes=model.classes_, labeled_rows=np.arange(300, dtype=np.int64),
                      labeled_y=y[:300], control_share=0.1, state=state,
                      params={"graph_rows": 400})
    narrowed = plan.log["candidates"]
    kept = narrowed["kept"]
    # the model saw the kept rows once, and before that only a sample and the centroids
    assert [len(r) for r in scored] == [kept] and kept < len(cand) // 2
    assert sum(seen_by_model) < len(cand) // 4
    # the kept set holds the whole graph sample's candidates (the coverage arms' rows)
    graph = state["longtail.strategies"]["graph"]
    in_graph = graph.rows[np.isin(graph.rows, cand)]
    assert narrowed["graph_rows"] == len(in_graph) > 0 and np.isin(in_graph, scored[0]).all()
    sel = plan.log["selection"]
    assert sel["n_candidates"] == kept
    # the whole pool decides the large-pool arms: cluster_margin leads, no plain margin
    assert sel["arm"] == "cluster_margin" and "margin" not in sel["allowed_arms"]
    picked = plan.rows_of("selected")
    assert len(picked) == 40 - len(plan.rows_of("control"))
    assert len(np.unique(plan.rows)) == len(plan.rows) and np.isin(plan.rows, cand).all()


@pytest.mark.parametrize("arm", ["coverage", "cluster_margin", "margin_coverage"])
def test_each_of_autos_large_pool_arms_selects_from_the_narrowed_set(small_limits, arm):
    from longtail.strategies import select

    X, y = _pool()
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    cand = np.arange(300, len(X), dtype=np.int64)
    labeled = np.arange(300, dtype=np.int64)
    state: dict = {}
    got = C.narrow("auto", cand, 40, rng=np.random.default_rng(1), vectors=X,
                   probs_of=model.predict_proba, state=state, labeled_rows=labeled,
                   params={"graph_rows": 400})
    assert got.log is not None and len(got.rows) < len(cand)
    assert got.params["pool_rows"] == len(X) and "n_clusters" in got.params
    graph = state["longtail.strategies"]["graph"]
    in_graph = graph.rows[np.isin(graph.rows, cand)]
    assert np.isin(in_graph, got.rows).all()
    sel = select(arm, 40, got.rows, rng=np.random.default_rng(2), vectors=ArrayVectors(X),
                 probs=model.predict_proba(X[got.rows]), classes=model.classes_,
                 labeled_rows=labeled, labeled_y=y[:300], params=got.params, state=state)
    rows = np.asarray(sel.rows)
    assert len(rows) == 40 == len(np.unique(rows)) and np.isin(rows, got.rows).all()
    if arm != "cluster_margin":  # the coverage arms pick graph rows, as on the whole pool
        assert np.isin(rows, in_graph).all()
    # no arm built an index of its own over the narrowed set: the whole pool's are reused
    assert not [n for n, r in sel.log.get("indexes", {}).items() if r["action"] == "built"]


def test_the_narrowing_threshold_can_be_set_by_environment(monkeypatch):
    X, y = _pool(n=3000)
    model = LogisticRegression(max_iter=500).fit(X[:300], y[:300])
    cand = np.arange(300, 3000, dtype=np.int64)
    monkeypatch.setattr(C, "MIN_ROWS", 500)
    monkeypatch.setattr(C, "ROWS_PER_PICK", 20)
    monkeypatch.setenv(C.NARROW_ENV, "1000")
    got = C.narrow("margin", cand, 10, rng=np.random.default_rng(0), vectors=X,
                   probs_of=model.predict_proba)
    assert got.log is not None and len(got.rows) < len(cand)
    monkeypatch.setenv(C.NARROW_ENV, "many")
    from longtail.errors import InputError

    with pytest.raises(InputError, match=C.NARROW_ENV):
        C.narrow("margin", cand, 10, rng=np.random.default_rng(0), vectors=X,
                 probs_of=model.predict_proba)
