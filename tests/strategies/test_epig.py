"""EPIG: information about the pool's predictions, not about any parameter."""

from __future__ import annotations

import numpy as np

from longtail.strategies import STRATEGIES, bald, epig, select


def _committee(seed: int = 0, m: int = 16, n: int = 60, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(m, n, c)) * rng.uniform(0.1, 3.0, size=(1, n, 1))
    p = np.exp(logits)
    return p / p.sum(axis=2, keepdims=True)


def test_epig_is_bounded_by_bald_and_zero_when_members_agree():
    P = _committee()
    e = epig(P, np.random.default_rng(1))
    assert e.shape == (60,) and (e >= 0).all()
    # I(y; y*) <= I(y; θ): a label cannot tell more about another prediction than
    # about the parameters both depend on.
    assert (e <= bald(P) + 1e-9).all()
    agree = np.repeat(P[:1], 16, axis=0)
    np.testing.assert_allclose(epig(agree, np.random.default_rng(1)), 0.0, atol=1e-9)


def test_epig_prefers_uncertainty_the_targets_share_over_private_noise():
    """Two candidates with the same BALD: one whose members disagree the way they
    disagree on the pool (it informs the pool's predictions), one whose disagreement is
    its own (an outlier). EPIG ranks the first higher; BALD cannot tell them apart."""
    m, n = 40, 50
    rng = np.random.default_rng(2)
    z = rng.choice([-1.0, 1.0], size=m)  # one parameter the members disagree on
    pool = 1 / (1 + np.exp(-2.0 * z[:, None] * rng.uniform(0.5, 1.5, size=(1, n))))
    private = rng.permutation(z)  # the same spread, unrelated to the pool's
    shared_x = 1 / (1 + np.exp(-2.0 * z))
    private_x = 1 / (1 + np.exp(-2.0 * private))
    p1 = np.concatenate([pool, shared_x[:, None], private_x[:, None]], axis=1)
    P = np.stack([p1, 1 - p1], axis=2)  # (m, n + 2, 2)
    b = bald(P)
    assert abs(b[-1] - b[-2]) < 1e-9
    e = epig(P, np.random.default_rng(3), n_targets=n)
    assert e[-2] > e[-1] + 0.05


def test_epig_is_a_registered_strategy_that_selects_from_a_committee():
    assert "epig" in STRATEGIES and "committee" in STRATEGIES["epig"].needs
    P = _committee(seed=4, n=30)
    sel = select("epig", 5, np.arange(100, 130), rng=np.random.default_rng(0),
                 probs=P.mean(axis=0), committee_probs=P)
    assert len(sel.rows) == 5 and set(sel.rows) <= set(range(100, 130))
