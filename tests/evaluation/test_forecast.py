import math

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.evaluation import fit_learning_curve, power_law

TRUE = (0.92, 2.5, 0.6)  # a, b, c
N = np.arange(100, 1001, 100)


def noisy_curve(seed, sd=0.004):
    rng = np.random.default_rng(seed)
    return power_law(N, *TRUE) + rng.normal(0, sd, len(N))


def test_recovers_parameters_of_a_clean_curve():
    curve = fit_learning_curve(N, power_law(N, *TRUE), n_boot=0)
    assert curve.method == "power_law"
    assert curve.a == pytest.approx(TRUE[0], abs=1e-4)
    assert curve.b == pytest.approx(TRUE[1], rel=1e-3)
    assert curve.c == pytest.approx(TRUE[2], abs=1e-3)


def test_noisy_fit_forecast_interval_covers_truth():
    covered = 0
    errors = []
    trials = 20
    for seed in range(trials):
        curve = fit_learning_curve(N, noisy_curve(seed), n_boot=100, seed=seed, level=0.9)
        mean, lo, hi = curve.forecast_at(2000, noise=False)
        truth = float(power_law(2000, *TRUE))
        errors.append(mean - truth)
        covered += lo <= truth <= hi
    assert np.mean(np.abs(errors)) < 0.01
    assert covered / trials >= 0.7


def test_labels_to_reach_and_gain():
    curve = fit_learning_curve(N, power_law(N, *TRUE), n_boot=50)
    n, lo, hi = curve.labels_to_reach(0.85)
    a, b, c = TRUE
    assert n == pytest.approx((b / (a - 0.85)) ** (1 / c), rel=0.01)
    assert lo <= n <= hi
    never = curve.labels_to_reach(0.95)
    assert math.isinf(never.n)
    gain = curve.expected_gain(100)
    assert gain.n == 1100
    truth = float(power_law(1100, *TRUE) - power_law(1000, *TRUE))
    assert gain.mean == pytest.approx(truth, rel=0.01)
    assert gain.lo <= gain.mean <= gain.hi


def test_forecast_interval_includes_measurement_noise():
    y = noisy_curve(0, sd=0.01)
    curve = fit_learning_curve(N, y, n_boot=100)
    with_noise = curve.forecast_at(1500)
    curve_only = curve.forecast_at(1500, noise=False)
    assert with_noise.hi - with_noise.lo > curve_only.hi - curve_only.lo
    assert with_noise.lo <= with_noise.mean <= with_noise.hi


def test_metric_sd_sets_weights():
    y = power_law(N, *TRUE)
    y[0] += 0.1  # a wild first point, declared very noisy
    sd = np.full(len(N), 0.002)
    sd[0] = 1.0
    curve = fit_learning_curve(N, y, sd, n_boot=0)
    assert curve.a == pytest.approx(TRUE[0], abs=0.005)


def test_fallbacks_for_few_points():
    two = fit_learning_curve([100, 200], [0.5, 0.6], n_boot=50)
    assert two.method == "fixed_rate"
    mean, lo, hi = two.forecast_at(400)
    assert 0.6 < mean <= 1.0 and lo <= mean <= hi
    one = fit_learning_curve([100], [0.5])
    assert one.method == "flat"
    mean, lo, hi = one.forecast_at(1000)
    assert mean == 0.5 and lo < 0.5 < hi


def test_never_above_ceiling():
    curve = fit_learning_curve(N, np.linspace(0.9, 0.999, len(N)), n_boot=50)
    assert curve.forecast_at(10**6).hi <= 1.0


def test_bad_points():
    with pytest.raises(InputError):
        fit_learning_curve([], [])
    with pytest.raises(InputError):
        fit_learning_curve([0, 100], [0.1, 0.2])
    with pytest.raises(InputError):
        fit_learning_curve([1, 2], [0.1])


def test_backtest_widens_forecasts_of_curves_that_are_not_power_laws():
    clean = fit_learning_curve(N, power_law(N, *TRUE), n_boot=100)
    assert clean.gain_sd == pytest.approx(0.0, abs=0.02)
    # Linear in log n: every power-law fit under-forecasts its own future.
    log_linear = 0.3 + 0.08 * np.log(N)
    curve = fit_learning_curve(N, log_linear, n_boot=100)
    blind = fit_learning_curve(N, log_linear, n_boot=100, backtest=False)
    assert curve.gain_sd > 0.1
    wide, narrow = curve.forecast_at(2000), blind.forecast_at(2000)
    assert wide.hi - wide.lo > narrow.hi - narrow.lo
    # within the fitted range the backtest changes nothing
    assert curve.forecast_at(500, noise=False) == blind.forecast_at(500, noise=False)


def test_one_point_forecasts_nothing_about_the_slope():
    one = fit_learning_curve([200], [0.6])
    assert math.isnan(one.expected_gain(100).mean)
    needed = one.labels_to_reach(0.7)
    assert math.isinf(needed.n) and needed.lo == 200 and math.isinf(needed.hi)


# Labels to a target above the last reading, on curves whose truth is known: a saturating
# law read on an eval set of EVAL_N with binomial noise, every 100 labels.
LAW = (0.90, 1.2, 0.5)
EVAL_N = 400
STEP = 100


def _readings(rng, n):
    return rng.binomial(EVAL_N, power_law(np.asarray(n, float), *LAW)) / EVAL_N


def _sd(y):
    return np.sqrt(np.clip(y * (1 - y), 0.01, None) / EVAL_N)


def _case(seed, target_gap=0.02, horizon=20_000):
    """A fitted curve, its target (last reading + gap) and when a reading really got there."""
    rng = np.random.default_rng(seed)
    n = np.arange(100, 1001, STEP, dtype=float)
    y = _readings(rng, n)
    curve = fit_learning_curve(n, y, _sd(y), n_boot=300, seed=seed)
    target = float(y[-1]) + target_gap
    future = n[-1] + STEP * np.arange(1, horizon // STEP + 1)
    reached = np.flatnonzero(_readings(rng, future) >= target)
    truth = float(future[reached[0]]) if len(reached) else math.inf
    need = curve.labels_to_reach(target, step=STEP, horizon=horizon)
    return need, truth


def test_labels_to_target_interval_covers_the_truth_and_is_bounded():
    cases = [_case(seed) for seed in range(30)]
    covered = [need.lo <= truth <= need.hi for need, truth in cases]
    bounded = [math.isfinite(need.hi) for need, _ in cases]
    # nominal 90%; 30 draws leave room for sampling error, not for a blind interval
    assert np.mean(covered) >= 0.8
    # ten points on 400-label eval sets support an answer: most intervals end (the
    # code before first_reading said "possibly never" to every one), and not far off
    assert np.mean(bounded) >= 0.7
    widths = [need.hi - need.lo for need, _ in cases if math.isfinite(need.hi)]
    assert np.median(widths) < 5_000
    # never zero-width for a target the readings have not reached
    assert all(need.hi > need.lo for need, _ in cases)


def test_labels_to_target_above_the_asymptote_is_possibly_never():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = np.arange(100, 1001, STEP, dtype=float)
        y = _readings(rng, n)
        curve = fit_learning_curve(n, y, _sd(y), n_boot=300, seed=seed)
        need = curve.labels_to_reach(LAW[0] + 0.06, step=STEP, horizon=20_000)
        assert math.isinf(need.hi)


def test_labels_to_target_beyond_the_pool_is_possibly_never():
    rng = np.random.default_rng(3)
    n = np.arange(100, 1001, STEP, dtype=float)
    y = _readings(rng, n)
    curve = fit_learning_curve(n, y, _sd(y), n_boot=300, seed=3)
    target = float(y[-1]) + 0.02
    assert math.isfinite(curve.labels_to_reach(target, step=STEP, horizon=20_000).hi)
    # one batch of pool left cannot promise a 2-point rise
    assert math.isinf(curve.labels_to_reach(target, step=STEP, horizon=STEP).hi)
