"""Each strategy on small synthetic data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.strategies import (
    STRATEGIES,
    bald,
    mean_kl,
    select,
    typicality,
    vote_entropy,
)
from longtail.strategies.combine import class_rarity, validate_config

from ._data import blobs

CENTERS = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 20]], dtype=np.float64) + 20


def _blobs(n_per=40, seed=0):
    return blobs(n_per, CENTERS, 0.5, seed)


def test_committee_scores_find_disagreement():
    agree = np.tile([[0.9, 0.1]], (3, 1, 1))
    disagree = np.array([[[0.9, 0.1]], [[0.1, 0.9]], [[0.9, 0.1]]])
    committee = np.concatenate([agree, disagree], axis=1)  # (3 members, 2 rows, 2 classes)
    for fn in (vote_entropy, mean_kl, bald):
        s = fn(committee)
        assert s.shape == (2,) and s[1] > s[0], fn.__name__
    sel = select("bald", 1, np.array([5, 9]), rng=np.random.default_rng(0),
                 probs=committee.mean(axis=0), committee_probs=committee)
    assert sel.rows.tolist() == [9]


def test_committee_strategy_without_committee_is_an_input_error():
    with pytest.raises(InputError, match="committee"):
        select("vote_entropy", 1, np.arange(3), rng=np.random.default_rng(0),
               probs=np.full((3, 2), 0.5))


@pytest.mark.parametrize("name", ["typiclust", "coverage", "probcover"])
def test_representative_strategies_pick_one_per_cluster(name):
    X, y = _blobs()
    sel = select(name, 5, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X,
                 state={})
    assert sorted(y[sel.rows].tolist()) == [0, 1, 2, 3, 4]


def test_typiclust_picks_typical_rows_near_the_centre():
    X, y = _blobs()
    sel = select("typiclust", 5, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X)
    dist = np.linalg.norm(X[sel.rows] - CENTERS[y[sel.rows]], axis=1)
    typical = np.median(np.linalg.norm(X - CENTERS[y], axis=1))
    assert np.all(dist < 1.5 * typical)


def test_representative_strategies_skip_covered_clusters():
    X, y = _blobs()
    labeled = np.flatnonzero(y < 3)[::10]  # clusters 0, 1, 2 already labeled
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    for name in ("typiclust", "coverage", "probcover", "coreset"):
        sel = select(name, 2, cand, rng=np.random.default_rng(0), vectors=X,
                     labeled_rows=labeled, labeled_y=y[labeled])
        assert sorted(y[sel.rows].tolist()) == [3, 4], name


def test_coreset_picks_far_points():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.1, size=(100, 2)).astype(np.float32)
    X[[7, 42, 77]] = [[50, 0], [0, 50], [-50, -50]]
    labeled = np.array([0])
    cand = np.arange(1, 100)
    sel = select("coreset", 3, cand, rng=rng, vectors=X, labeled_rows=labeled)
    assert set(sel.rows.tolist()) == {7, 42, 77}


def test_cluster_margin_spreads_uncertain_picks_over_clusters():
    X, y = _blobs(n_per=60)
    probs = np.tile([0.95, 0.05], (len(X), 1))
    # cluster 0 is full of ambiguous rows, the others hold a few each
    probs[np.flatnonzero(y == 0)[:30]] = [0.5, 0.5]
    for c in range(1, 5):
        probs[np.flatnonzero(y == c)[:3]] = [0.6, 0.4]
    sel = select("cluster_margin", 5, np.arange(len(X)), rng=np.random.default_rng(0),
                 vectors=X, probs=probs, params={"n_clusters": 5}, state={})
    assert sorted(y[sel.rows].tolist()) == [0, 1, 2, 3, 4]
    top = select("margin", 5, np.arange(len(X)), rng=np.random.default_rng(0), probs=probs)
    assert set(y[top.rows].tolist()) == {0}


def _badge_brute_force(P, X, k, rng, costs=None):
    """BADGE by the paper, on the explicit n×(C·d) gradient embedding (tiny pools only):
    the largest-norm row first, then k-means++ draws ∝ squared distance (per cost)."""
    A = P.copy()
    A[np.arange(len(P)), P.argmax(1)] -= 1
    G = np.einsum("ic,id->icd", A, X.astype(np.float64)).reshape(len(P), -1)
    picked = [int(np.argmax((G * G).sum(1)))]
    mind = ((G - G[picked[0]]) ** 2).sum(1)
    while len(picked) < k:
        w = mind if costs is None else mind / costs
        c = int(rng.choice(len(P), p=w / w.sum()))
        picked.append(c)
        mind = np.minimum(mind, ((G - G[c]) ** 2).sum(1))
        mind[c] = 0.0
    return picked


@pytest.mark.parametrize("with_costs", [False, True])
def test_select_badge_equals_kmeanspp_on_the_explicit_gradient_embedding(with_costs):
    rng = np.random.default_rng(0)
    n, C, d, k = 40, 4, 6, 8
    P = rng.dirichlet(np.ones(C), size=n)
    X = rng.standard_normal((n, d)).astype(np.float32)
    costs = rng.uniform(1, 5, n) if with_costs else None
    cand = np.arange(n) + 100  # candidate positions, not row numbers, are what is drawn
    V = np.zeros((n + 100, d), dtype=np.float32)
    V[cand] = X
    sel = select("badge", k, cand, rng=np.random.default_rng(7), vectors=V, probs=P,
                 costs=costs)
    expected = _badge_brute_force(P, X, k, np.random.default_rng(7), costs)
    assert sel.rows.tolist() == (cand[expected]).tolist()


def test_badge_prefers_uncertain_and_diverse_rows():
    X, y = _blobs(n_per=30)
    probs = np.tile([0.99, 0.01], (len(X), 1))
    uncertain = [np.flatnonzero(y == c)[0] for c in range(5)]
    probs[uncertain] = [0.5, 0.5]
    sel = select("badge", 5, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X,
                 probs=probs)
    assert len(set(sel.rows.tolist()) & set(uncertain)) >= 4


def test_margin_coverage_picks_uncertain_regions_once_each():
    X, y = _blobs(n_per=40)
    probs = np.tile([0.99, 0.01], (len(X), 1))
    probs[(y == 1) | (y == 3)] = [0.5, 0.5]
    sel = select("margin_coverage", 2, np.arange(len(X)), rng=np.random.default_rng(0),
                 vectors=X, probs=probs)
    assert sorted(y[sel.rows].tolist()) == [1, 3]


def test_density_prefers_uncertain_rows_in_dense_regions():
    X, y = _blobs(n_per=40)
    X = np.concatenate([X, [[100.0, 100.0]]]).astype(np.float32)  # an uncertain outlier
    probs = np.tile([0.9, 0.1], (len(X), 1))
    probs[-1] = [0.5, 0.5]
    probs[5] = [0.55, 0.45]
    sel = select("density", 1, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X,
                 probs=probs)
    assert sel.rows.tolist() == [5]


def test_typicality_is_highest_in_dense_regions():
    X, _ = _blobs(n_per=30)
    X = np.concatenate([X, [[100.0, 100.0]]]).astype(np.float32)
    t = typicality(X, knn=5)
    assert t.shape == (len(X),) and np.argmin(t) == len(X) - 1


def test_class_rarity_favours_under_labeled_classes():
    probs = np.array([[0.9, 0.1], [0.1, 0.9]])
    r = class_rarity(probs, np.array(["a", "b"]), np.array(["a"] * 10 + ["b"]))
    assert r[1] > r[0]


def test_class_balance_serves_the_rare_classes_first():
    rng = np.random.default_rng(0)
    n = 90
    probs = np.zeros((n, 3))
    pred = np.repeat([0, 1, 2], 30)
    probs[np.arange(n), pred] = 0.8
    probs[np.arange(n), (pred + 1) % 3] = 0.2
    labeled_y = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 1)
    sel = select("class_balance", 6, np.arange(n), rng=rng, probs=probs,
                 classes=np.array(["a", "b", "c"]), labeled_rows=np.arange(100, 141),
                 labeled_y=labeled_y)
    assert (pred[sel.rows] == 2).sum() >= 6 - 1


def test_combine_weighted_terms_filters_and_group_balance():
    rng = np.random.default_rng(0)
    n = 60
    probs = np.column_stack([np.linspace(0.5, 1.0, n), 1 - np.linspace(0.5, 1.0, n)])
    groups = np.array(["x", "y", "z"] * 20)
    config = {
        "terms": [{"score": "margin", "weight": 1}],
        "filters": [{"score": "confidence", "lt": 0.8}],
        "balance": {"by": "groups"},
        "groups": groups,
    }
    sel = select("combine", 6, np.arange(n), rng=rng, probs=probs, params=config)
    assert np.all(probs[sel.rows].max(1) < 0.8)
    assert sorted(groups[sel.rows].tolist()) == ["x", "x", "y", "y", "z", "z"]
    assert sel.log["n_passed_filters"] == int((probs.max(1) < 0.8).sum())
    # a filter that lets too few through still yields a full batch, and says so
    tight = {"terms": ["margin"], "filters": [{"score": "confidence", "lt": 0.52}]}
    sel = select("combine", 10, np.arange(n), rng=rng, probs=probs, params=tight)
    assert len(sel.rows) == 10 and sel.log["n_picked_from_passed"] < 10


def test_combine_product_and_sum_agree_on_a_single_term():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=50)
    a = select("combine", 5, np.arange(50), rng=np.random.default_rng(1), probs=probs,
               params={"terms": [{"score": "entropy"}], "combine": "product"})
    b = select("entropy", 5, np.arange(50), rng=np.random.default_rng(1), probs=probs)
    assert set(a.rows.tolist()) == set(b.rows.tolist())


@pytest.mark.parametrize(
    "config, match",
    [
        ({"terms": []}, "terms"),
        ({"terms": [{"score": "nope"}]}, "nope"),
        ({"terms": [{"score": "margin", "weight": -1}]}, "weight"),
        ({"filters": [{"score": "confidence", "below": 0.6}]}, "lt, le, gt, ge"),
        ({"balance": {"by": "colour"}}, "balance"),
        ({"combine": "max"}, "combine"),
        ({"termz": []}, "termz"),
    ],
)
def test_combine_config_errors_name_the_problem(config, match):
    with pytest.raises(InputError, match=match):
        validate_config(config)


def test_combine_needs_follow_the_config():
    entry = STRATEGIES["combine"]
    assert "committee" in entry.needs_for({"terms": [{"score": "bald"}]})
    assert "committee" not in entry.needs_for({"terms": [{"score": "margin"}]})


@pytest.mark.parametrize("name", ["margin", "cluster_margin", "coverage", "typiclust"])
def test_costs_steer_towards_cheap_rows(name):
    X, y = _blobs(n_per=40)
    probs = np.full((len(X), 2), 0.5)
    costs = np.where(np.arange(len(X)) % 2 == 0, 1.0, 1000.0)
    sel = select(name, 5, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X,
                 probs=probs, costs=costs)
    assert np.all(sel.rows % 2 == 0), name


def test_state_cache_is_reused_and_grows_with_new_rows():
    X, y = _blobs(n_per=40)
    state: dict = {}
    first = np.arange(100)
    select("coverage", 5, first, rng=np.random.default_rng(0), vectors=X, state=state)
    g1 = state["longtail.strategies"]["graph"]
    select("coverage", 5, first, rng=np.random.default_rng(0), vectors=X, state=state)
    assert state["longtail.strategies"]["graph"] is g1
    more = np.arange(110)
    sel = select("coverage", 5, more, rng=np.random.default_rng(0), vectors=X, state=state)
    g2 = state["longtail.strategies"]["graph"]
    assert len(g2.rows) == 110 and np.isin(sel.rows, more).all()


@pytest.mark.parametrize("name", ["coverage", "margin_coverage", "auto", "probcover"])
def test_pools_larger_than_the_graph_sample_still_fill_the_batch(name):
    X, y = _blobs(n_per=40)
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=len(X))
    labeled = np.arange(0, 200, 50)
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    state: dict = {}
    sel = select(name, 30, cand, rng=np.random.default_rng(0), vectors=X,
                 probs=probs[cand], classes=np.arange(5), labeled_rows=labeled,
                 labeled_y=y[labeled], params={"graph_rows": 60}, state=state)
    assert len(sel.rows) == 30 and len(np.unique(sel.rows)) == 30
    assert np.isin(sel.rows, cand).all()
    assert len(state["longtail.strategies"]["graph"].rows) == 60


def test_pool_clusters_assign_new_rows_without_retraining():
    from longtail.strategies._base import Context
    from longtail.strategies._pool import pool_clusters

    X, y = _blobs(n_per=40)
    state: dict = {}
    early = np.flatnonzero(np.arange(200) % 40 < 30)  # 30 rows of each of the 5 blobs
    ctx = Context(k=5, candidates=early, rng=np.random.default_rng(0),
                  vectors=__import__("longtail.strategies", fromlist=["ArrayVectors"])
                  .ArrayVectors(X), state=state)
    cl1 = pool_clusters(ctx, 5, name="t")
    ctx.candidates = np.arange(200)
    cl2 = pool_clusters(ctx, 5, name="t")
    assert cl2.centroids is cl1.centroids and len(cl2.rows) == 200
    labels = cl2.lookup(np.arange(200))
    # late rows join their nearest centroid: the cluster of their blob's early rows
    late = np.setdiff1d(np.arange(200), early)
    d2 = ((X[late, None, :] - cl1.centroids[None]) ** 2).sum(axis=2)
    assert np.array_equal(labels[late], d2.argmin(axis=1))
    homes = 0
    for b in range(5):
        home = np.unique(labels[early[y[early] == b]])
        if len(home) == 1:  # (k-means may split a blob and merge two others)
            homes += 1
            assert np.all(labels[late[y[late] == b]] == home[0])
    assert homes >= 3


def test_a_sampled_graph_is_reused_across_rounds():
    X, y = _blobs(n_per=40)
    state: dict = {}
    cand = np.arange(200)
    for r in range(3):
        sel = select("coverage", 5, cand, rng=np.random.default_rng(r), vectors=X,
                     params={"graph_rows": 60}, state=state)
        g = state["longtail.strategies"]["graph"]
        if r == 0:
            first = g
        cand = np.setdiff1d(cand, sel.rows)
    assert g is first, "a graph sampled from a large pool must not be rebuilt every round"
