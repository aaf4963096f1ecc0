"""The per-sample cost model: it learns a cost that depends on the sample, leans on its
prior with few answers, and reports a held-out error that beats a constant."""

from __future__ import annotations

import numpy as np

from longtail.costs.model import DEFAULT_PRIOR, cost_features, fit_cost_model, holdout_error


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    text_len = rng.integers(10, 300, n)
    # BENCHMARKS section 6's shape: (4 + 0.12 chars) x a difficulty read off the vector.
    seconds = (4 + 0.12 * text_len) * np.exp(0.5 * X[:, 0]) * np.exp(rng.normal(0, 0.1, n))
    return cost_features(X, text_len), seconds


def test_prior_before_answers_then_the_data():
    F, s = _data(400)
    assert np.allclose(fit_cost_model(F[:0], s[:0]).predict(F[:3]), DEFAULT_PRIOR)
    few = fit_cost_model(F[:3], s[:3], prior=30.0)
    many = fit_cost_model(F, s)
    # With 3 answers the prediction stays near the prior; with 400 it follows the sample.
    assert np.std(np.log(few.predict(F[:50]))) < 0.5 * np.std(np.log(many.predict(F[:50])))
    corr = np.corrcoef(np.log(many.predict(F)), np.log(s))[0, 1]
    assert corr > 0.9


def test_heldout_error_has_an_interval_and_beats_a_constant():
    F, s = _data(300)
    err = holdout_error(F, s, np.random.default_rng(1))
    assert err.lo <= err.mae <= err.hi
    assert err.mae < 0.5 * err.mae_constant
    assert holdout_error(F[:5], s[:5], np.random.default_rng(1)) is None
