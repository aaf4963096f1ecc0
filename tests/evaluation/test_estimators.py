"""Estimators on populations whose answer is known: coverage by simulation (small
size), tighter intervals when the surrogate is informative, never misled by a useless one."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.evaluation.estimators import (
    MIN_LABELS,
    active_mean,
    active_proposal,
    confidence_strata,
    crossfit_confidence,
    labels_for,
    lift_estimate,
    neyman_allocation,
    ppi_mean,
    stratified_mean,
    uniform_mean,
    weighted_macro_f1,
)

N = 4000


def _population(seed=0):
    """A calibrated surrogate f and outcomes y ~ Bernoulli(f): accuracy ~0.8."""
    rng = np.random.default_rng(seed)
    f = rng.beta(4, 1, N)
    y = (rng.random(N) < f).astype(float)
    return f, y


def _coverage(draw, truth, reps=200):
    hits, widths = 0, []
    for r in range(reps):
        est = draw(np.random.default_rng(100 + r))
        hits += est.lo <= truth <= est.hi
        widths.append(est.halfwidth)
    return hits / reps, float(np.mean(widths))


def test_each_estimator_covers_the_population_accuracy_and_the_surrogate_ones_are_tighter():
    f, y = _population()
    truth = y.mean()
    n = 150
    _, strata = confidence_strata(f, bins=5)
    q = active_proposal(f)

    def uni(rng):
        return uniform_mean(y[rng.choice(N, n, replace=False)])

    def ppi(rng):
        i = rng.choice(N, n, replace=False)
        return ppi_mean(y[i], f[i], f)

    def strat(rng):
        alloc = neyman_allocation(f, strata, n)
        i = np.concatenate([rng.choice(np.flatnonzero(strata == h), a, replace=False)
                            for h, a in enumerate(alloc) if a > 0])
        return stratified_mean(y[i], strata[i], strata, f_labeled=f[i], f_all=f,
                               design="stratified")

    def act(rng):
        i = rng.choice(N, n, replace=True, p=q)
        return active_mean(y[i], f[i], q[i], f)

    res = {name: _coverage(fn, truth) for name, fn in
           (("uniform", uni), ("ppi", ppi), ("stratified", strat), ("active", act))}
    for name, (cov, _) in res.items():
        assert cov >= 0.90, (name, res)
    for name in ("ppi", "stratified", "active"):
        assert res[name][1] < 0.95 * res["uniform"][1], res


def test_a_useless_surrogate_costs_nothing_ppi_falls_back_to_uniform():
    rng = np.random.default_rng(3)
    y = (rng.random(N) < 0.7).astype(float)
    noise = rng.random(N)  # unrelated to y
    i = rng.choice(N, 400, replace=False)
    ppi = ppi_mean(y[i], noise[i], noise)
    uni = uniform_mean(y[i])
    assert ppi.halfwidth <= 1.1 * uni.halfwidth
    assert abs(ppi.value - y.mean()) < 0.08


def test_small_n_falls_back_to_the_exact_interval_and_says_so():
    f, y = _population()
    est = ppi_mean(y[:10], f[:10], f)
    assert est.n_labels == 10 and "small-n" in est.note
    assert est.lo < est.value < est.hi or est.hi == 1.0
    assert uniform_mean(np.ones(10)).lo > 0.6  # Clopper-Pearson never collapses to 0 width
    assert MIN_LABELS >= 20


def test_neyman_allocation_spends_exactly_n_and_favours_uncertain_strata():
    f, _ = _population()
    _, strata = confidence_strata(f, bins=10)
    alloc = neyman_allocation(f, strata, 200)
    assert alloc.sum() == 200 and (alloc >= 2).all()
    assert alloc[0] > alloc[-1]  # low confidence: more variance, more labels


def test_crossfit_confidence_calibrates_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, c = 3000, 5
    logits = rng.normal(0, 3, (n, c))
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(c, p=p) for p in true_p])
    over = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)  # too sharp
    correct = (over.argmax(1) == y).astype(float)
    lab = rng.choice(n, 600, replace=False)
    f_lab, f_all = crossfit_confidence(over[lab], correct[lab], over)
    raw_gap = abs(over.max(1).mean() - correct.mean())
    assert abs(f_all.mean() - correct.mean()) < raw_gap / 2
    assert f_lab.shape == (600,) and f_all.shape == (n,)


def test_lift_and_labels_for():
    f, y = _population()
    rng = np.random.default_rng(1)
    y_r = (rng.random(N) < np.clip(f - 0.1, 0, 1)).astype(float)
    i = rng.choice(N, 300, replace=False)
    est = lift_estimate("ppi", y[i], y_r[i], (f[i], f), (np.clip(f[i] - 0.1, 0, 1),
                                                        np.clip(f - 0.1, 0, 1)))
    assert est.method == "lift:ppi" and est.lo <= y.mean() - y_r.mean() + 0.1
    assert labels_for(0.5, 0.03) == pytest.approx(1068, abs=1)


def test_weighted_macro_f1_matches_the_unweighted_one_with_unit_weights():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, 300)
    p = np.where(rng.random(300) < 0.7, t, rng.integers(0, 4, 300))
    est = weighted_macro_f1(t, p, np.ones(300), n_boot=50)
    assert est.value == pytest.approx(f1_score(t, p, average="macro"))
    assert est.lo <= est.value <= est.hi


def test_asking_until_narrow_enough_keeps_coverage():
    """The eval budget's rule: add 25 labels at a time until the interval is ±5 points,
    then stop. A data-dependent stop; by simulation the interval at the stop still
    covers the population accuracy about 93% of the time or more: uniform (exact
    interval) and PPI (normal interval; 0.927 and 0.945 on two populations at 600 reps,
    its fixed-n coverage is 0.93-0.945 there too). Asserted at 0.92 (with 600 reps the
    figure's standard error is 1 point): PPI sits at the 93% target, not above it."""
    f, y = _population(seed=5)
    truth = y.mean()
    hits = {"uniform": 0, "ppi": 0}
    reps = 600
    for r in range(reps):
        order = np.random.default_rng(1000 + r).permutation(N)
        for name in hits:
            n = 30
            while True:
                i = order[:n]
                est = uniform_mean(y[i]) if name == "uniform" else ppi_mean(y[i], f[i], f)
                if est.halfwidth <= 0.05 or n >= N:
                    break
                n += 25
            hits[name] += est.lo <= truth <= est.hi
    for name, h in hits.items():
        assert h / reps >= 0.92, (name, h / reps)
