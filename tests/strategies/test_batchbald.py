"""BatchBALD: a batch informative together, not the top-k BALD scores."""

from __future__ import annotations

import numpy as np

from longtail.strategies import STRATEGIES, bald, select
from longtail.strategies.batchbald import batchbald_order


def _committee(seed: int = 0, m: int = 20, n: int = 60, c: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(m, n, c)) * rng.uniform(0.1, 3.0, size=(1, n, 1))
    p = np.exp(logits)
    return p / p.sum(axis=2, keepdims=True)


def _duplicated_pool(seed: int = 1, copies: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Six uncertain samples, each present `copies` times (the same posterior in every
    MC sample: an image and its near-copies), among 40 calmer singles.
    Returns (committee (m, n, C), group of each column)."""
    rng = np.random.default_rng(seed)
    m, c = 20, 3
    hot = np.exp(rng.normal(size=(m, 6, c)) * 3.0)
    calm = np.exp(rng.normal(size=(m, 40, c)) * 0.8)
    hot /= hot.sum(axis=2, keepdims=True)
    calm /= calm.sum(axis=2, keepdims=True)
    P = np.concatenate([np.repeat(hot, copies, axis=1), calm], axis=1)
    group = np.concatenate([np.repeat(np.arange(6), copies), 6 + np.arange(40)])
    return P, group


def test_batchbald_avoids_the_copies_bald_takes_together():
    P, group = _duplicated_pool()
    cand = np.arange(len(group))
    top_bald = select("bald", 6, cand, rng=np.random.default_rng(0), probs=P.mean(0),
                      committee_probs=P)
    bb = select("batchbald", 6, cand, rng=np.random.default_rng(0), probs=P.mean(0),
                committee_probs=P)
    # BALD scores copies alike, so its top 6 are copies of the two or three most
    # uncertain samples; BatchBALD's batch is six different samples.
    assert len(set(group[top_bald.rows])) <= 3
    assert len(set(group[bb.rows])) == 6
    assert len(set(bb.rows.tolist())) == 6 and bb.log["strategy"] == "batchbald"


def test_a_batch_of_one_is_bald():
    for seed in range(5):
        P = _committee(seed=seed)
        cand = np.arange(500, 560)
        one = select("batchbald", 1, cand, rng=np.random.default_rng(seed),
                     probs=P.mean(0), committee_probs=P)
        assert one.rows.tolist() == [500 + int(np.argmax(bald(P)))]
        np.testing.assert_allclose(one.scores, [bald(P).max()], atol=1e-9)


def test_gains_shrink_and_stay_within_bald():
    """Each pick adds at most its own BALD (joint information is subadditive) and the
    greedy gains never grow; past the exact table the configurations are sampled."""
    P = _committee(seed=7, n=80)
    order, gains = batchbald_order(P, 12, np.random.default_rng(0), configs=64)
    b = bald(P)
    assert len(set(order.tolist())) == 12
    assert (gains <= b[order] + 1e-9).all()
    # Exact picks (up to 64 configurations: the first three of 4 classes) never grow.
    assert (np.diff(gains[:3]) <= 1e-9).all()


def test_batchbald_is_registered_outside_auto_and_falls_back_before_a_model():
    assert "committee" in STRATEGIES["batchbald"].needs
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8))
    sel = select("batchbald", 5, np.arange(50), rng=rng, vectors=X)
    assert len(sel.rows) == 5
