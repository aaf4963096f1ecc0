"""The cold start's pool-wide herding term (issue 18): a first batch that covers the
pool's clusters whatever its scale, and beats random on an imbalanced mixture."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from longtail.strategies import ArrayVectors, select
from longtail.strategies._base import Context
from longtail.strategies.cold import cold_start
from longtail.strategies.herding import (
    greedy_local_global,
    kernel_block,
    share_bandwidth,
    unit,
)


def _ctx(X, k, labeled=None, costs=None):
    cand = np.arange(len(X)) if labeled is None else np.setdiff1d(np.arange(len(X)), labeled)
    return Context(k=k, candidates=cand, rng=np.random.default_rng(0), vectors=ArrayVectors(X),
                   labeled_rows=labeled, costs=costs)


def _planted(seed=0):
    """Ten well-separated Gaussian clusters (sizes falling 10-fold, 1,000 to 100 rows) in
    12-d, off-centre (not unit norm)."""
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(1000, 100, 10).astype(int)
    centres = rng.normal(size=(10, 12)) * 10.0 + 20.0
    X = np.concatenate([c + 0.5 * rng.normal(size=(n, 12)) for c, n in
                        zip(centres, sizes, strict=True)])
    return X.astype(np.float32), np.repeat(np.arange(10), sizes)


def test_first_batch_covers_every_planted_cluster_at_scale_1_and_1000():
    X, y = _planted()
    picks = {}
    for scale in (1.0, 1000.0):
        sel = cold_start(_ctx(X * np.float32(scale), 20))
        assert sorted(np.unique(y[sel.rows]).tolist()) == list(range(10)), scale
        picks[scale] = sel.rows.tolist()
    # the bandwidths come from the data, so the scale changes nothing
    assert picks[1.0] == picks[1000.0]


def test_the_local_graph_coverage_alone_misses_a_cluster_there():
    """What the pool-wide term fixes: the 30-NN kernel alone spends the batch on the
    large clusters (if this stops failing, the test above proves less)."""
    X, y = _planted()
    sel = select("coverage", 20, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X)
    assert len(np.unique(y[sel.rows])) < 10


def _mixture(seed=0, n=4000, classes=10, d=16):
    """Gaussian classes with sizes falling 20-fold, uneven scales per dimension, plus a
    balanced test set."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * 1.6
    scale = np.geomspace(3.0, 0.3, d)
    w = np.geomspace(1.0, 1 / 20, classes)
    y = rng.choice(classes, size=n, p=w / w.sum())
    yt = np.arange(2000) % classes

    def draw(lab):
        return ((centres[lab] + rng.normal(size=(len(lab), d))) * scale).astype(np.float32)

    return draw(y), y, draw(yt), yt


def _acc(X, y, Xt, yt, rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LogisticRegression(C=10, max_iter=300).fit(X[rows], y[rows])
    return float(np.mean(m.predict(Xt) == yt))


def test_first_batch_beats_random_on_an_imbalanced_mixture():
    X, y, Xt, yt = _mixture()
    k = 30
    ours = _acc(X, y, Xt, yt, cold_start(_ctx(X, k)).rows)
    rnd = []
    for s in range(10):
        rows = np.random.default_rng(s).choice(len(X), k, replace=False)
        if len(np.unique(y[rows])) > 1:
            rnd.append(_acc(X, y, Xt, yt, rows))
    assert ours > np.mean(rnd) + np.std(rnd), (ours, np.mean(rnd), np.std(rnd))


def test_share_bandwidth_scales_with_the_square_of_the_data_and_shrinks_with_picks():
    Z = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    s = share_bandwidth(Z, 10)
    assert np.isclose(share_bandwidth(Z * 1000, 10), s * 1e6, rtol=1e-3)
    assert share_bandwidth(Z, 100) < s  # more picks: each covers fewer rows
    assert share_bandwidth(Z[:1], 5) == 1.0


def test_lazy_batched_greedy_equals_the_plain_greedy():
    rng = np.random.default_rng(3)
    u, m = 300, 120
    V = unit(rng.normal(size=(u, 6)))
    A = sp.random(u, u, density=0.05, random_state=3, format="csr")
    A = (A.maximum(A.T) + sp.identity(u)).tocsc()
    targets = V[rng.choice(u, m, replace=False)]
    s2 = share_bandwidth(targets, 8)
    picked, gains = greedy_local_global(A, np.zeros(u), np.arange(u), 8, rng, targets, s2,
                                        lambda p: V[p])
    Kd, G = A.toarray(), kernel_block(targets, V, s2)
    cov, tcov, plain = np.zeros(u), np.zeros(m), []
    for _ in range(8):
        f = (np.maximum(Kd - cov[:, None], 0).sum(0) / u
             + np.maximum(G - tcov[:, None], 0).sum(0) / m)
        f[plain] = -1
        j = int(np.argmax(f))
        plain.append(j)
        cov, tcov = np.maximum(cov, Kd[:, j]), np.maximum(tcov, G[:, j])
    assert picked == plain
    assert np.all(np.diff(gains) <= 1e-9)  # diminishing returns


def test_labeled_clusters_count_as_covered():
    X, y = _planted()
    labeled = np.concatenate([np.flatnonzero(y == c)[:3] for c in range(1, 10)])
    sel = cold_start(_ctx(X, 1, labeled=labeled))
    assert y[sel.rows[0]] == 0  # the one cluster without a label


def test_costs_steer_the_pick_away_from_expensive_rows():
    X, y = _planted()
    costs = np.where(y == 0, 1000.0, 1.0)
    sel = cold_start(_ctx(X, 10, costs=costs))
    assert not np.any(y[sel.rows] == 0)


def test_targets_are_the_whole_graph_up_to_the_bound_then_a_seeded_sample():
    X, y = _planted()
    full = cold_start(_ctx(X, 20))
    assert full.log["pool_targets"] == len(X)
    ctx = _ctx(X, 20)
    ctx.params["pool_targets"] = 500
    a = cold_start(ctx)
    assert a.log["pool_targets"] == 500
    ctx2 = _ctx(X, 20)
    ctx2.params["pool_targets"] = 500
    assert cold_start(ctx2).rows.tolist() == a.rows.tolist()  # same seed, same sample


def test_large_batches_use_fewer_targets_so_the_cost_stays_bounded():
    from longtail.strategies.herding import HERDING_WORK

    X, _ = _planted()
    k = 2000
    sel = cold_start(_ctx(X, k))
    assert sel.log["pool_targets"] == HERDING_WORK // k < len(X)
    assert len(np.unique(sel.rows)) == k
