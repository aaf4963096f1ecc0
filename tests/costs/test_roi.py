"""The ROI estimator on arms whose answer is known: the saving, its interval, and the
verdicts (saving, not paying for its compute, no evidence yet)."""

from __future__ import annotations

import numpy as np

from longtail.costs.roi import random_arm, roi, size_grid

N_EVAL = 1000
SIZES = np.array([10, 20, 40, 80, 160, 320])
ACC = 0.45 + 0.1 * np.log2(SIZES / 10)  # 0.45 ... 0.95


def _correct(accs: np.ndarray, seed: int = 0) -> np.ndarray:
    """Nested right answers: a model at accuracy a gets the first a·n samples of one
    fixed order right (more labels never unlearn a sample)."""
    order = np.random.default_rng(seed).permutation(N_EVAL)
    rank = np.empty(N_EVAL, int)
    rank[order] = np.arange(N_EVAL)
    return np.array([rank < round(a * N_EVAL) for a in accs])


def _run(active_labels, active_compute_per_label=0.0, random_cost=1.0, eval_money=0.0,
         n_eval=N_EVAL, active_acc=ACC):
    active_labels = np.asarray(active_labels, dtype=float)
    a = _correct(active_acc)[:, :n_eval]
    r = _correct(ACC)[:, :n_eval]
    return roi(a, active_labels, active_labels * 1.0, active_labels * active_compute_per_label,
               SIZES, r, np.full(n_eval, random_cost), eval_money,
               np.random.default_rng(0), n_boot=200)


def test_half_the_labels_at_equal_cost_saves_half_the_money():
    res = _run(SIZES / 2)
    assert abs(res.saving - 0.5) < 0.02 and res.lo > 0.3
    assert res.lo <= 0.5 <= res.hi + 1e-9
    assert abs(res.random_labels - 320) < 1 and abs(res.active_labels - 160) < 1
    assert res.verdict.startswith("active learning is saving 50%")


def test_eval_money_counts_on_both_sides():
    res = _run(SIZES / 2, eval_money=320.0)  # the eval set costs as much as random's labels
    assert abs(res.saving - (1 - (160 + 320) / (320 + 320))) < 0.02


def test_cheap_random_labels_undo_the_saving():
    # Active learning's picks cost 1 each, a random label 0.4: it needs half the labels
    # but pays 2.5x per label, so random sampling would have been cheaper.
    res = _run(SIZES / 2, random_cost=0.4)
    assert res.saving < 0 and res.hi < 0
    assert "costing" in res.verdict


def test_compute_that_eats_the_saving_is_named():
    res = _run(SIZES / 2, active_compute_per_label=2.0)
    assert res.label_saving > 0.4 and res.saving < 0
    assert res.verdict.startswith("not paying for its compute")


def test_a_small_eval_set_is_no_evidence():
    res = _run(SIZES / 2, n_eval=20)
    assert res.verdict.startswith("no evidence yet")


def test_random_arm_cross_fits_the_eval_set():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 5)) * 3
    y = rng.integers(0, 3, 300)
    X = centers[y] + rng.normal(size=(300, 5))
    calls = []

    def fit_predict(Xt, yt, Xn):
        calls.append(len(yt))
        means = np.array([Xt[yt == k].mean(0) if (yt == k).any() else np.full(5, 1e9)
                          for k in range(3)])
        return ((Xn[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)

    sizes = size_grid(300)
    assert sizes[0] == 10 and sizes[-1] == 240
    correct = random_arm(fit_predict, X, y, sizes, rng)
    assert correct.shape == (len(sizes), 300) and max(calls) <= 240
    assert correct[-1].mean() > 0.9  # well-separated classes: learned from the folds


def test_eval_money_counts_as_spent_when_the_target_was_reached():
    # The eval set grows with the run: 10 money per model. Active learning reaches the
    # random arm's best accuracy at its 5th model (160 labels; eval 50 by then); the eval
    # labels bought after that are not part of what reaching it cost.
    labels = np.array([5, 10, 20, 40, 80, 160, 320], dtype=float)
    acc = np.r_[ACC[0], ACC[0], ACC[1:3], ACC[3], ACC[5], ACC[5]]
    a = _correct(acc)
    r = _correct(ACC)
    eval_at = 10.0 * np.arange(1, len(labels) + 1)
    res = roi(a, labels, labels, 0 * labels, SIZES, r, np.ones(N_EVAL), eval_at,
              np.random.default_rng(0), n_boot=100)
    assert abs(res.eval_money - 60.0) < 1e-6
    assert abs(res.saving - (1 - (160 + 60) / (320 + 60))) < 0.02


def test_beyond_the_random_arm_the_saving_is_read_off_its_extrapolated_curve():
    # Random sampling's accuracy is known: acc(m) = C / (1 + (40 / m)^1.2), a logistic
    # in log m toward the ceiling C = 0.9 (0.14 at 10 labels ... 0.76 at 160). Its arm
    # is measured up to 160 labels; active learning reaches 0.84, which random
    # sampling reaches at m* = 40 / (0.9 / 0.84 - 1)^(1/1.2) = 365 labels; active
    # learning got there with 120 at the same cost per label: saving 1 - 120/365.
    ceiling, sizes = 0.9, np.array([10, 20, 40, 80, 160])
    acc_r = ceiling / (1 + (40 / sizes) ** 1.2)
    m_star = 40 / (ceiling / 0.84 - 1) ** (1 / 1.2)
    active_acc = np.array([0.5, 0.7, 0.84])
    res = roi(_correct(active_acc), np.array([30.0, 60.0, 120.0]), np.array([30.0, 60.0, 120.0]),
              np.zeros(3), sizes, _correct(acc_r), np.full(N_EVAL, 1.0), 0.0,
              np.random.default_rng(0), n_boot=200, ceiling=np.full(50, ceiling))
    truth = 1 - 120 / m_star
    assert abs(res.target - 0.84) < 0.002
    assert abs(res.random_labels - m_star) / m_star < 0.1
    assert abs(res.saving - truth) < 0.05 and res.lo <= truth <= res.hi
    # Without the ceiling the comparison stops where the random arm stops (0.76),
    # far below what was reached.
    assert _run_plain(active_acc, sizes, acc_r).target < 0.77
    # A fitted ceiling at or below the accuracy reached is taken a point above it:
    # random sampling gets there, late, not never.
    late = roi(_correct(active_acc), np.array([30.0, 60.0, 120.0]),
               np.array([30.0, 60.0, 120.0]), np.zeros(3), sizes, _correct(acc_r),
               np.full(N_EVAL, 1.0), 0.0, np.random.default_rng(0), n_boot=50, ceiling=0.8)
    assert m_star < late.random_labels < float("inf") and late.saving < 1.0


def _run_plain(active_acc, sizes, acc_r):
    return roi(_correct(active_acc), np.array([30.0, 60.0, 120.0]), np.array([30.0, 60.0, 120.0]),
               np.zeros(3), sizes, _correct(acc_r), np.full(N_EVAL, 1.0), 0.0,
               np.random.default_rng(0), n_boot=50)
