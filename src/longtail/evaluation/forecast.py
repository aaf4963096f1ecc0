"""Learning-curve forecasts: where will the metric be after more labels?

The curve model is the inverse power law ``m(n) = a - b · n^(-c)`` (a: the
asymptote, b > 0: the gap, c > 0: the rate), fitted to (labels, metric)
points by bounded, weighted least squares (`scipy.optimize.least_squares`).

Weights: a point's standard deviation is its own ``metric_sd`` when given,
else assumed to shrink like ``1/sqrt(n)`` relative to the others (later
points of a learning curve are both less noisy and more telling about its
tail, Figueroa et al. 2012). `min_labels` can leave the first points out.
The rate c is profiled (for a fixed c the model is linear in a and b), so
one fit, and a whole bootstrap of fits, costs a few milliseconds.

Uncertainty has three parts, all in the forecast's interval:

1. the fit: a bootstrap gives a cloud of curves, refitted ``n_boot`` times.
   Points on one shared eval set (``shared_noise``, as the product fits them):
   the residuals with random signs, plus one normal draw per curve of the
   points' own sd, which moves the level, not the shape. Points on eval sets
   of their own (``metric_sd`` given): a parametric bootstrap that draws each
   point anew around the fit with its own (binomial) sd, times the residual
   scale when the points scatter more than that. Without ``metric_sd``: the
   residuals with random signs (a wild bootstrap);
2. the model: a learning curve is only roughly a power law, and points of
   one curve share most of their labels, so residuals understate the error
   of an extrapolation. The curve backtests itself: fitted on its points up
   to 50%, 60% and 70% of its last label count, how far off was its
   forecast of the last point, as a share of the gain it forecast? The root
   mean square of those shares (``gain_sd``; for points on eval sets of their
   own, less what their noise explains) times a forecast's gain beyond the last
   point is added as a normal error;
3. the measurement: a new point at n is measured with the residual scale
   at n (``forecast_at(..., noise=False)`` leaves this out).

Labels to a target above the last reading (`labels_to_reach`, `first_reading`)
are a question about future readings, so they are simulated: every curve draw
is read once per batch with the eval set's noise, up to the labels the pool has
left, and the interval holds the first reading at or above the target in 90% of
the draws ("possibly never" when more than 5% never get there). Replayed on the
curves the product recorded in bench/results/honest_numbers.json (5 digits, 3
Banking77, 3 Fashion-MNIST runs), this covered the realised labels in 0.98, 0.92
and 1.00 of the forecasts, with 36%, 21% and 54% still "possibly never" (was
100%, 79%, 96%); see the README.

Measured on Banking77 (bench/forecast.py, fit up to 1,000 labels, forecast
2,000, 90% level), this covers the truth in all runs of random, margin and
auto with a mean error under one point; on shorter curves (fit to 400 or
500, forecast 600 or 1,000) it under-forecasts random-selection curves, whose
early part rises faster than a power law with an asymptote at most 1.

Fallbacks: with 3 points or fewer, the rate is fixed (c = 0.5) and only a,
b are fitted, while each bootstrap draw takes a rate between 0.25 and 1, so
the interval carries the unknown rate; with one point, the forecast is flat
and says nothing about gains. No fit ever goes above ``upper`` (1.0 for
accuracy-like metrics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from longtail.errors import InputError

__all__ = ["Forecast", "LabelsNeeded", "LearningCurve", "fit_learning_curve", "power_law"]

_C_FALLBACK = 0.5
_C_FALLBACK_RANGE = (0.25, 1.0)
_C_BOUNDS = (0.05, 3.0)
_C_GRID = 240
_BACKTEST_CUTS = (0.5, 0.6, 0.7)
_BACKTEST_DRAWS = 100  # refits per cut that measure its own noise (_backtest)
_READINGS = 300  # simulated future readings at most (first_reading)


def power_law(n: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """``a - b · n^(-c)``, elementwise over n > 0."""
    return a - b * np.power(np.asarray(n, dtype=np.float64), -c)


@dataclass(frozen=True)
class Forecast:
    """A forecast metric at `n` labels: `mean` and the interval (`lo`, `hi`) at `level`.

    Unpacks as ``mean, lo, hi = curve.forecast_at(n)``.
    """

    n: float
    mean: float
    lo: float
    hi: float
    level: float

    def __iter__(self):  # noqa: D105
        return iter((self.mean, self.lo, self.hi))


@dataclass(frozen=True)
class LabelsNeeded:
    """Labels needed to reach `target`: `n` (central), (`lo`, `hi`) at `level`; inf = never.

    Unpacks as ``n, lo, hi = curve.labels_to_reach(target)``.
    """

    target: float
    n: float
    lo: float
    hi: float
    level: float

    def __iter__(self):  # noqa: D105
        return iter((self.n, self.lo, self.hi))


@dataclass
class LearningCurve:
    """A fitted learning curve with its bootstrap cloud.

    a, b, c : the fitted parameters of ``a - b · n^(-c)``.
    n_labels, metric : (m,) the points fitted (after `min_labels`).
    noise_sd : residual standard deviation at ``n_ref`` labels; a point at n
        has ``noise_sd · (n_ref / n)^noise_power``.
    gain_sd : the backtest's relative extrapolation error (0 without one).
    draws : (B, 3) bootstrap parameter draws; empty for the flat fallback.
    method : "power_law", "fixed_rate" or "flat".
    level : default interval level.
    """

    a: float
    b: float
    c: float
    n_labels: np.ndarray
    metric: np.ndarray
    noise_sd: float
    n_ref: float
    draws: np.ndarray
    method: str
    level: float = 0.9
    upper: float = 1.0
    gain_sd: float = 0.0
    noise_power: float = 0.5
    seed: int = 0
    _noise_z: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)), repr=False)

    def to_dict(self) -> dict[str, float | int | str]:
        """The fit's figures as a JSON-safe dict (for the catalog and reports)."""
        return {
            "a": self.a, "b": self.b, "c": self.c, "method": self.method,
            "noise_sd": self.noise_sd, "gain_sd": self.gain_sd, "level": self.level,
            "n_points": int(len(self.n_labels)), "n_max": self.n_ref,
        }

    def _raw(self, n: np.ndarray | float) -> np.ndarray:
        return power_law(n, self.a, self.b, self.c)

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        """Central curve at n labels, capped at `upper`; shape of n."""
        return np.minimum(self._raw(n), self.upper)

    def _cloud(self, n: float | np.ndarray, noise: bool) -> np.ndarray:
        """Draws of the metric at n: curve draws plus, optionally, a new point's noise.

        n : a number, giving (B,) draws, or (G,) label counts, giving (G, B).
        Beyond the last fitted point the curve draws also get the backtest's
        extrapolation error (``gain_sd`` times the forecast gain); `noise` adds
        the measurement noise of a new point at n.
        """
        n_arr = np.atleast_1d(np.asarray(n, dtype=np.float64))[:, None]
        if len(self.draws):
            a, b, c = self.draws.T
            values = a[None, :] - b[None, :] * np.power(n_arr, -c[None, :])
        else:
            values = np.repeat(self.predict(n_arr), self._noise_z.shape[1], axis=1)
        k = values.shape[1]
        if self.gain_sd > 0:
            gain = np.maximum(self._raw(n_arr) - self._raw(self.n_ref), 0.0) * (n_arr > self.n_ref)
            values = values + self.gain_sd * gain * self._noise_z[1, :k][None, :]
        if noise:
            sd = self.noise_sd * (self.n_ref / n_arr) ** self.noise_power
            values = values + sd * self._noise_z[0, :k][None, :]
        values = np.minimum(values, self.upper)
        return values[0] if np.ndim(n) == 0 else values

    def forecast_at(self, n: float, level: float | None = None, *, noise: bool = True) -> Forecast:
        """The metric at `n` labels with an interval at `level` (default the curve's, 90%).

        noise=True (default) forecasts what the eval set will measure at n
        (curve uncertainty plus measurement noise); False gives the interval
        of the curve itself.
        """
        if n <= 0:
            raise InputError(f"forecast needs a positive number of labels, got {n}")
        level = self.level if level is None else level
        cloud = self._cloud(n, noise)
        alpha = (1.0 - level) / 2.0
        lo, hi = np.quantile(cloud, [alpha, 1.0 - alpha])
        mean = float(self.predict(n))
        return Forecast(float(n), mean, min(float(lo), mean), max(float(hi), mean), float(level))

    def labels_to_reach(
        self, target: float, level: float | None = None, *, n_max: float = 1e9,
        step: float | None = None, horizon: float | None = None,
    ) -> LabelsNeeded:
        """Total labels at which the eval reading reaches `target`, with an interval.

        A target that both the fitted curve and the last reading have passed is
        read off the curve's band: `lo` where the band's upper edge
        reaches it, `hi` where its lower edge does, and the central value
        inverts ``a - b · n^(-c) = target``.

        A target above the last reading or the curve there is a question about
        future readings of the eval set, so it is answered by simulating them
        (`first_reading`): each curve draw (fit, bootstrap and backtest
        uncertainty) is read every `step` labels with the eval set's own noise,
        up to `horizon` labels more, and the interval holds the first reading at
        or above the target in `level` of the draws. `hi` is inf ("possibly
        never") when more than ``(1 - level) / 2`` of the draws never get there
        within the horizon: the target is above the plausible asymptote, or the
        horizon (the pool rows left) is too short.

        step : labels between readings (the batch); default the median spacing
            of the fitted points. horizon : labels beyond the last point that can
            still be bought (the pool rows left); default ``n_max`` minus it.
        """
        level = self.level if level is None else level
        if self.method == "flat" and not self.a >= target:
            # One point says nothing about the slope: the next batch might do, or never.
            return LabelsNeeded(float(target), math.inf, float(self.n_ref), math.inf, float(level))
        if len(self.draws) and min(float(self.metric[-1]), float(self.predict(self.n_ref))) < target:
            return self.first_reading(target, level, step=step,
                                      horizon=n_max - self.n_ref if horizon is None else horizon)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gap = self.a - target
            central = (self.b / gap) ** (1.0 / self.c) if gap > 0 and self.b > 0 else math.inf
        if self.b <= 0 and self.a >= target:
            central = float(self.n_labels.min())
        if central > n_max:
            central = math.inf
        central = max(float(central), 1.0)
        grid = np.geomspace(max(1.0, float(self.n_labels.min())), n_max, 2200)
        alpha = (1.0 - level) / 2.0
        band = np.quantile(self._cloud(grid, False), [alpha, 1.0 - alpha], axis=1).T

        def first(reached: np.ndarray) -> float:
            hits = np.flatnonzero(reached)
            return float(grid[hits[0]]) if len(hits) else math.inf

        lo, hi = first(band[:, 1] >= target), first(band[:, 0] >= target)
        return LabelsNeeded(float(target), central, min(lo, central), max(hi, central), float(level))

    def first_reading(
        self, target: float, level: float | None = None, *, step: float | None = None,
        horizon: float = 1e9,
    ) -> LabelsNeeded:
        """Labels at which a future eval reading first reaches `target`, by simulation.

        Each of the B curve draws is read after every `step` more labels with
        independent eval noise: a normal draw with the eval set's sd at the last
        point (`noise_sd`, at least the binomial sd of the point's own eval set
        when `metric_sd` was given; the eval set does not grow with the labels,
        so the noise is kept, not shrunk). Readings beyond 300 steps are thinned
        to a geometric grid (fewer chances to pass, so `hi` errs late). `lo` is
        the labels before the batch whose reading first passes in
        ``(1 - level) / 2`` of the draws, `hi` the labels after the batch that
        passes in ``(1 + level) / 2`` of them (inf when that many never pass
        within `horizon`), `n` the median draw. O(B · min(horizon / step, 300)).
        """
        level = self.level if level is None else level
        if step is None:
            gaps = np.diff(self.n_labels)
            step = float(np.median(gaps[-5:])) if len(gaps) else max(1.0, self.n_ref)
        step = max(float(step), 1.0)
        k = int(max(1, math.ceil(max(float(horizon), step) / step)))
        ks = np.arange(1, k + 1, dtype=np.float64)
        if k > _READINGS:
            half = _READINGS // 2
            ks = np.unique(np.concatenate(
                [ks[:half], np.round(np.geomspace(half + 1, k, _READINGS - half))]))
        grid = self.n_ref + step * ks
        curves = self._cloud(grid, False).T  # (B, G)
        rng = np.random.default_rng([self.seed, 7])
        readings = curves + rng.standard_normal(curves.shape) * self.noise_sd
        hit = readings >= target
        first = np.where(hit.any(axis=1), ks[np.argmax(hit, axis=1)], np.inf)
        alpha = (1.0 - level) / 2.0
        k_lo, k_mid, k_hi = (float(np.quantile(first, q, method="inverted_cdf"))
                             for q in (alpha, 0.5, 1.0 - alpha))
        return LabelsNeeded(float(target), self.n_ref + step * k_mid,
                            self.n_ref + step * (k_lo - 1.0), self.n_ref + step * k_hi,
                            float(level))

    def expected_gain(
        self, next_batch: int, n_now: float | None = None, level: float | None = None
    ) -> Forecast:
        """Forecast gain of the metric from `next_batch` more labels (curve only, no noise).

        n_now : labels so far; default the largest fitted point. The returned
        Forecast's `n` is ``n_now + next_batch``; mean/lo/hi are gains. With a
        single point (the flat fallback) there is no forecast: mean is NaN,
        the interval 0 to inf.
        """
        if next_batch <= 0:
            raise InputError(f"next batch must add labels, got {next_batch}")
        level = self.level if level is None else level
        n_now = float(self.n_labels.max()) if n_now is None else float(n_now)
        n_next = n_now + next_batch
        if self.method == "flat":
            # One point says nothing about the slope: no forecast (mean NaN, any gain possible).
            return Forecast(n_next, math.nan, 0.0, math.inf, float(level))
        mean = float(self.predict(n_next) - self.predict(n_now))
        gains = self._cloud(n_next, False) - self._cloud(n_now, False)
        alpha = (1.0 - level) / 2.0
        lo, hi = (float(x) for x in np.quantile(gains, [alpha, 1.0 - alpha]))
        lo, hi = min(lo, mean), max(hi, mean)
        return Forecast(n_next, mean, lo, hi, float(level))


def _ab_for_rate(
    x: np.ndarray, Y: np.ndarray, w: np.ndarray, upper: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (a, b) of ``y = a - b·x`` for many curves at once, with b >= 0 and a <= upper.

    x, w : (m,) regressor n^-c and weights 1/sd²; Y : (B, m) curves.
    Returns a, b and the weighted residual sum of squares, each (B,).
    """
    w_sum = w.sum()
    x_bar = np.dot(w, x) / w_sum
    y_bar = Y @ w / w_sum
    dx = x - x_bar
    sxx = np.dot(w, dx * dx)
    b = -((Y - y_bar[:, None]) @ (w * dx)) / sxx if sxx > 0 else np.zeros(len(Y))
    a = y_bar + b * x_bar
    flat = b < 0  # a falling curve is not a learning curve: best flat line instead
    b = np.where(flat, 0.0, b)
    a = np.where(flat, y_bar, a)
    capped = a > upper  # asymptote above the ceiling: pin it there and refit the gap
    if capped.any():
        b_cap = np.maximum(((upper - Y) @ (w * x)) / np.dot(w, x * x), 0.0)
        a = np.where(capped, upper, a)
        b = np.where(capped, b_cap, b)
    resid = Y - a[:, None] + b[:, None] * x[None, :]
    return a, b, (resid * resid) @ w


def _fit_many(
    n: np.ndarray, Y: np.ndarray, sd: np.ndarray, upper: float, fixed_c: float | None
) -> np.ndarray:
    """Weighted least-squares fits of ``a - b·n^-c`` to each row of Y (B, m); returns (B, 3).

    The model is linear in (a, b) for a fixed rate c, so c is profiled: a
    log-spaced grid of rates, the best one per curve, then a parabola through
    its neighbours in log c. O(G · B · m) time for G grid rates; no Python
    loop over curves.
    """
    w = 1.0 / sd**2
    if fixed_c is not None:
        a, b, _ = _ab_for_rate(np.power(n, -fixed_c), Y, w, upper)
        return np.column_stack([a, b, np.full(len(Y), fixed_c)])
    log_c = np.linspace(np.log(_C_BOUNDS[0]), np.log(_C_BOUNDS[1]), _C_GRID)
    rss = np.empty((len(Y), _C_GRID))
    for j, lc in enumerate(log_c):
        rss[:, j] = _ab_for_rate(np.power(n, -np.exp(lc)), Y, w, upper)[2]
    best = np.clip(np.argmin(rss, axis=1), 1, _C_GRID - 2)
    rows = np.arange(len(Y))
    left, mid, right = rss[rows, best - 1], rss[rows, best], rss[rows, best + 1]
    curvature = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
    step = log_c[1] - log_c[0]
    c = np.exp(log_c[best] + np.clip(shift, -1.0, 1.0) * step)
    # At the grid's ends keep the end value when it is the best.
    edge = np.argmin(rss, axis=1)
    c = np.where(edge == 0, np.exp(log_c[0]), c)
    c = np.where(edge == _C_GRID - 1, np.exp(log_c[-1]), c)
    out = np.empty((len(Y), 3))
    for rate in np.unique(c):  # a, b at each curve's own rate
        same = c == rate
        a, b, _ = _ab_for_rate(np.power(n, -rate), Y[same], w, upper)
        out[same] = np.column_stack([a, b, np.full(same.sum(), rate)])
    return out


def _polish(
    n: np.ndarray, y: np.ndarray, sd: np.ndarray, start: np.ndarray, upper: float
) -> np.ndarray:
    """Refine one fit with bounded least squares from the profiled start."""

    def residuals(p: np.ndarray) -> np.ndarray:
        return (power_law(n, *p) - y) / sd

    lower = np.array([-np.inf, 0.0, _C_BOUNDS[0]])
    high = np.array([upper, np.inf, _C_BOUNDS[1]])
    x0 = np.clip(start, lower + 1e-12, high - 1e-12)
    result = optimize.least_squares(residuals, x0, bounds=(lower, high), method="trf")
    better = np.sum(residuals(result.x) ** 2) <= np.sum(residuals(start) ** 2)
    return result.x if better else start


def _backtest(n: np.ndarray, y: np.ndarray, sd: np.ndarray, upper: float,
              noise_last: float = 0.0, seed: int = 0) -> np.ndarray:
    """Relative errors of the curve's own past extrapolations, one row per cut.

    For cuts at 50%, 60% and 70% of the largest label count (each keeping at
    least 4 points), fit on the points up to the cut and forecast the last
    point: ``(observed - forecast) / (forecast - fit at the cut)``, the error
    as a share of the forecast gain. Empty when the curve is too short.

    noise_last : the last point's own measurement sd (absolute; 0 when unknown).
    Part of each error is that noise, and part the spread the cut's own noisy
    points leave at the last point (refits of the cut's points redrawn with their
    sd), not the curve's shape: each row is (error, the squared error that noise
    explains), both as shares of the gain; the caller takes the second off the
    first's mean square, so a power law read on a small eval set is not widened
    as if it were no power law.
    """
    errors = []
    rng = np.random.default_rng([seed, 11])
    for share in _BACKTEST_CUTS:
        seen = n <= share * n[-1]
        if seen.sum() < 4:
            continue
        params = _fit_many(n[seen], y[seen][None, :], sd[seen], upper, None)[0]
        n_cut = n[seen][-1]
        gain = float(power_law(n[-1], *params) - power_law(n_cut, *params))
        if gain > 1e-6:
            error = (y[-1] - float(power_law(n[-1], *params))) / gain
            spread = 0.0
            if noise_last > 0:
                # what the cut's own noisy points leave open at the last point
                fitted = power_law(n[seen], *params)
                redo = fitted[None, :] + rng.standard_normal((_BACKTEST_DRAWS, int(seen.sum()))) \
                    * (sd[seen] * noise_last / sd[-1])[None, :]
                spread = float(np.var(power_law(
                    n[-1], *_fit_many(n[seen], redo, sd[seen], upper, None).T)))
            errors.append((error, (noise_last**2 + spread) / gain**2))
    return np.asarray(errors).reshape(-1, 2)


def fit_learning_curve(
    n_labels: Sequence[float] | np.ndarray,
    metric: Sequence[float] | np.ndarray,
    metric_sd: Sequence[float] | np.ndarray | None = None,
    *,
    level: float = 0.9,
    n_boot: int = 300,
    seed: int = 0,
    min_labels: float = 0,
    weight_power: float = 0.5,
    backtest: bool = True,
    inflation: float = 1.0,
    upper: float = 1.0,
    shared_noise: bool = False,
) -> LearningCurve:
    """Fit ``a - b · n^(-c)`` to learning-curve points and bootstrap its uncertainty.

    n_labels : (m,) labels at each point (> 0).
    metric : (m,) the eval metric at each point (accuracy, macro-F1, ...).
    metric_sd : (m,) optional standard deviation of each point (e.g. half
        the width of its 95% interval / 1.96); sets the weights, and the
        bootstrap moves each point by at least it (eval-set noise).
    level : default interval level of the forecasts (90%).
    n_boot : bootstrap refits; 0 keeps only the central fit (intervals then
        come from the noise alone).
    seed : seed of the bootstrap.
    min_labels : points with fewer labels are left out (unless that would
        leave fewer than 3 points, then the last 3 are kept).
    weight_power : without metric_sd, a point's sd is taken as
        ``(n_max / n)^weight_power`` (relative; the residuals set the level).
    backtest : widen forecasts by the curve's own extrapolation errors (see
        `_backtest`): a forecast's gain beyond the last point gets an extra
        sd of ``rms(relative errors) · gain``.
    inflation : factor on the bootstrap residuals (1: as observed).
    upper : the metric's ceiling (1.0 for accuracy).

    Time: O(G · n_boot · m) for G = 240 profiled rates; a few ms per curve.
    """
    n = np.asarray(n_labels, dtype=np.float64)
    y = np.asarray(metric, dtype=np.float64)
    if n.ndim != 1 or y.shape != n.shape:
        raise InputError(f"n_labels and metric must be 1-D of one length, got {n.shape}, {y.shape}")
    if len(n) == 0:
        raise InputError("no learning-curve points to fit")
    if np.any(n <= 0) or not np.all(np.isfinite(n)) or not np.all(np.isfinite(y)):
        raise InputError("learning-curve points need positive label counts and finite metrics")
    if metric_sd is not None:
        sd = np.asarray(metric_sd, dtype=np.float64)
        if sd.shape != n.shape or np.any(sd <= 0):
            raise InputError("metric_sd must be positive, one value per point")
    else:
        sd = np.power(n.max() / n, weight_power)
    order = np.argsort(n, kind="stable")
    n, y, sd = n[order], y[order], sd[order]
    keep = n >= min_labels
    if keep.sum() < min(3, len(n)):
        keep = np.zeros(len(n), dtype=bool)
        keep[-min(3, len(n)):] = True
    n, y, sd = n[keep], y[keep], sd[keep]
    m = len(n)
    rng = np.random.default_rng(seed)
    n_ref = float(n.max())
    sd_ref = float(sd[-1]) if metric_sd is not None else 1.0
    z = rng.standard_normal((2, max(n_boot, 200)))

    if m == 1:
        noise = float(sd[0]) if metric_sd is not None else 0.02
        return LearningCurve(
            a=float(min(y[0], upper)), b=0.0, c=_C_FALLBACK, n_labels=n, metric=y, noise_sd=noise,
            n_ref=n_ref, draws=np.zeros((0, 3)), method="flat", level=level, upper=upper,
            seed=seed, _noise_z=z,
        )

    fixed_c = _C_FALLBACK if m <= 3 else None
    method = "fixed_rate" if fixed_c is not None else "power_law"
    params = _fit_many(n, y[None, :], sd, upper, fixed_c)[0]
    if fixed_c is None:
        params = _polish(n, y, sd, params, upper)
    fitted = power_law(n, *params)
    resid = y - fitted
    dof = m - (2 if fixed_c is not None else 3)
    if dof > 0:
        scale = float(np.sqrt(np.sum((resid / sd) ** 2) / dof))
    else:
        scale = float(np.std(y)) if metric_sd is None else 1.0
    raw_scale = scale
    if metric_sd is not None:
        scale = max(scale, 1.0)  # never narrower than the points' own noise
    noise_sd = scale * sd_ref

    draws = np.zeros((0, 3))
    if n_boot > 0:
        # Wild bootstrap: the residuals, inflated, with random signs, refitted all at once.
        boot_resid = resid * inflation
        if dof <= 0:
            boot_resid = np.full(m, noise_sd) * sd / sd_ref * inflation
        signs = rng.choice([-1.0, 1.0], size=(n_boot, m))
        curves = fitted[None, :] + signs * boot_resid[None, :]
        if metric_sd is not None and not shared_noise:
            # Each point is measured on an eval set of its own: a parametric bootstrap
            # draws every point anew around the fit with that set's (binomial) sd, times
            # the residual scale when the points scatter more than it (scale >= 1). A
            # curve that fits a few noisy points closely has not shown its shape.
            curves = fitted[None, :] + rng.standard_normal((n_boot, m)) * (
                scale * sd * inflation)[None, :]
        if metric_sd is not None and shared_noise:
            # Every point was scored on one eval set: its noise moves them together
            # (one normal draw per curve, each point by its own sd), which moves the
            # curve's level, not its shape; the residuals carry what is not shared.
            curves = curves + rng.standard_normal((n_boot, 1)) * sd[None, :] * inflation
        if fixed_c is None:
            draws = _fit_many(n, curves, sd, upper, None)
        else:
            # Too few points to fit the rate: each draw takes a plausible one
            # (log-uniform over _C_FALLBACK_RANGE) so the interval shows it.
            rates = np.exp(rng.uniform(*np.log(_C_FALLBACK_RANGE), size=n_boot))
            draws = np.vstack([
                _fit_many(n, curves[i : i + 1], sd, upper, float(rates[i])) for i in range(n_boot)
            ])

    gain_sd = 0.0
    if backtest and fixed_c is None:
        # With absolute sds of independent eval sets, the last point's own scatter (the
        # residual scale, not clamped, times its sd) is noise, not misfit. Points on one
        # shared eval set scatter less than their sd around a curve that has not shown
        # its shape, so there the backtest keeps every error (early curves stay wide).
        noise_last = (raw_scale * float(sd[-1])
                      if metric_sd is not None and not shared_noise else 0.0)
        errors = _backtest(n, y, sd, upper, noise_last, seed)
        if len(errors):
            # mean squared error less what noise explains, pooled over the cuts
            gain_sd = float(np.sqrt(max(np.mean(errors[:, 0] ** 2) - np.mean(errors[:, 1]),
                                        0.0)))
    return LearningCurve(
        a=float(params[0]), b=float(params[1]), c=float(params[2]), n_labels=n, metric=y,
        noise_sd=noise_sd, n_ref=n_ref, draws=draws, method=method, level=level, upper=upper,
        gain_sd=gain_sd, noise_power=weight_power if metric_sd is None else 0.5,
        seed=seed, _noise_z=z,
    )
