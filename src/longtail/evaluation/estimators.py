"""Estimators of a model's accuracy (or of any mean, e.g. a lift) from eval labels,
with 95% intervals: pure functions over arrays.

The population is a set of N rows the model was never trained on (the managed eval
split: a uniform sample of the stream). Some are labeled; every row has the model's
class probabilities. Four estimators:

- :func:`uniform_mean` — today's: the mean over uniformly drawn labeled rows; the
  Clopper–Pearson interval for a proportion (exact at every n), a normal one otherwise.
- :func:`ppi_mean` — PPI++ (Angelopoulos, Duchi & Zrnic 2023): a surrogate ``f`` of each
  row's outcome (calibrated confidence for correctness) averaged over all N rows and
  corrected by the labeled rows, ``λ·mean_N f + mean_n (y − λ f)``, with the power-tuning
  ``λ`` that minimises the variance (λ = 0 gives back the uniform estimate, so it is
  never worse in the large-sample limit). Valid whatever the surrogate's quality as long
  as the labeled rows are a uniform draw of the N and ``f`` was not fitted on the labels
  that correct it (cross-fit it: :func:`crossfit_confidence`).
- :func:`stratified_mean` — stratified PPI (Fisch et al. 2024): strata by surrogate
  confidence (or predicted class), stratum weights ``N_h / N`` known from all N rows,
  PPI++ within each stratum. Uniform labels give post-stratification; labels drawn by
  :func:`neyman_allocation` (planned from the surrogate alone, ``σ_h² ≈ mean f(1−f)``)
  give the design-based stratified estimate, the tightest of the four on the probe.
- :func:`active_mean` — active testing (Kossen et al. 2021; with a surrogate control as
  in Active Surrogate Estimators, 2022): rows drawn *with replacement* from a proposal
  ``q`` that favours likely errors (:func:`active_proposal`, ``∝ sqrt(f(1−f))`` mixed
  with uniform), weighted ``1/(N q)`` so the estimate stays unbiased (with replacement
  the LURE weights reduce to these). These draws are *not* a uniform sample: keep them
  apart from the uniform eval set.

Each returns an :class:`Estimate`: value, 95% interval, labels used, and ``sd1`` — the
standard deviation per label, so ``(z·sd1/h)²`` labels give ``±h``
(:func:`labels_for`). Large-sample (normal) intervals are used from
:data:`MIN_LABELS` labels and :data:`MIN_MINORITY` of the rarer outcome (and 2 labels
per stratum); below that the uniform-draw estimators fall back to the Clopper–Pearson
interval of the plain labeled proportion
(``longtail.evaluation.metrics.proportion_interval``, the small-n interval), stratified
to per-stratum Clopper–Pearson intervals, active testing to no interval, and each says
so in ``note``.

Macro-F1: :func:`weighted_macro_f1` for any design with known weights (uniform,
stratified, active); PPI has no macro-F1 (F1 is not a mean of per-row outcomes).
Lift over random: the same estimators applied to the paired outcome
``correct_model − correct_random`` with surrogate ``f_model − f_random``
(:func:`lift_estimate`).

Cost: O(N) time over the surrogate (O(N·C) for confidences, in chunks), O(n) for the
labels; no n×n matrix.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054
MIN_LABELS = 30  # below this, normal intervals of these estimators under-cover
# ... and below this many of the rarer outcome (errors, when accuracy is high): a
# plug-in variance from 3 errors collapses (all-correct labels give ±0)
MIN_MINORITY = 10
_CHUNK = 65_536


@dataclass(frozen=True)
class Estimate:
    """An estimate of a mean with its 95% interval."""

    method: str
    value: float
    lo: float
    hi: float
    n_labels: int
    sd1: float  # sd per label: halfwidth ≈ z·sd1/sqrt(n_labels)
    note: str = ""
    fallback: bool = False  # the large-sample interval did not hold: a small-n one instead

    @property
    def halfwidth(self) -> float:
        return (self.hi - self.lo) / 2.0

    def to_dict(self) -> dict:
        return {**asdict(self), "halfwidth": self.halfwidth}


def labels_for(sd1: float, halfwidth: float, z: float = Z95) -> int:
    """Labels an estimator with per-label sd ``sd1`` needs for ``±halfwidth``. O(1)."""
    return int(math.ceil((z * sd1 / halfwidth) ** 2))


def _binary(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


def _small_n(method: str, y: np.ndarray, z: float, bounds: tuple[float, float]) -> Estimate:
    """Fallback below MIN_LABELS: the exact interval of the labeled proportion."""
    from longtail.evaluation.metrics import proportion_interval

    n = len(y)
    lo_b, hi_b = bounds
    why = (f"{n} labels < {MIN_LABELS}" if n < MIN_LABELS else
           f"fewer than {MIN_MINORITY} of the rarer outcome")
    if n == 0:
        return Estimate(method, float("nan"), lo_b, hi_b, 0, float("nan"),
                        "no labels: no estimate", fallback=True)
    mean = float(np.mean(y))
    if _binary(y):
        lo, hi = proportion_interval(int(round(y.sum())), n, level=_level(z))
        lo, hi = float(lo), float(hi)
    else:  # a difference of proportions: the widest honest statement
        lo, hi = lo_b, hi_b
    sd1 = float(np.std(y, ddof=1)) if n > 1 else 0.5
    return Estimate(method, mean, lo, hi, n, sd1,
                    f"{why}: the small-n (Clopper-Pearson) interval of the labeled "
                    "proportion, not the large-sample one", fallback=True)


def _few_minority(y: np.ndarray) -> bool:
    """Whether 0/1 outcomes hold fewer than MIN_MINORITY of the rarer value (differences
    in {-1, 0, 1}: fewer than MIN_MINORITY non-zero)."""
    nonzero = int(np.count_nonzero(y))
    if _binary(y):
        return min(nonzero, len(y) - nonzero) < MIN_MINORITY
    return bool(np.all(np.isin(y, (-1.0, 0.0, 1.0)))) and nonzero < MIN_MINORITY


def _level(z: float) -> float:
    return float(math.erf(z / math.sqrt(2.0)))


def _clip(value: float, half: float, bounds: tuple[float, float]) -> tuple[float, float]:
    return max(bounds[0], value - half), min(bounds[1], value + half)


def uniform_mean(y: np.ndarray, *, z: float = Z95,
                 bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """The mean of outcomes ``y (n,)`` on uniformly drawn rows (today's estimate).

    0/1 outcomes get the Clopper–Pearson interval (exact at any n); others the normal
    interval (from MIN_LABELS). Assumes rows drawn uniformly (with or without
    replacement from a population much larger than n). O(n)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n == 0 or (not _binary(y) and (n < MIN_LABELS or _few_minority(y))):
        return _small_n("uniform", y, z, bounds)
    mean = float(y.mean())
    sd1 = float(np.std(y, ddof=1)) if n > 1 else 0.5
    if _binary(y):
        from longtail.evaluation.metrics import proportion_interval

        lo, hi = proportion_interval(int(round(y.sum())), n, level=_level(z))
        return Estimate("uniform", mean, float(lo), float(hi), n, sd1)
    lo, hi = _clip(mean, z * sd1 / math.sqrt(n), bounds)
    return Estimate("uniform", mean, lo, hi, n, sd1)


def _ppi_parts(y: np.ndarray, f_lab: np.ndarray, f_all: np.ndarray,
               lam: float | None) -> tuple[float, float, float]:
    """(estimate, variance, λ) of PPI++ for one group of rows."""
    n, big_n = len(y), len(f_all)
    if lam is None:
        var_f = float(np.var(f_lab, ddof=1)) if n > 1 else 0.0
        cov = float(np.cov(y, f_lab, ddof=1)[0, 1]) if n > 1 else 0.0
        lam = cov / ((1.0 + n / big_n) * var_f) if var_f > 1e-12 else 0.0
        lam = min(max(lam, 0.0), 1.0)  # the surrogate tracks the outcome, never inverts it
    resid = y - lam * f_lab
    est = lam * float(f_all.mean()) + float(resid.mean())
    var = (float(np.var(resid, ddof=1)) if n > 1 else 0.25) / n \
        + lam * lam * float(np.var(f_all)) / big_n
    return est, var, lam


def ppi_parts(y: np.ndarray, f_labeled: np.ndarray, f_all: np.ndarray,
              lam: float | None = None) -> tuple[float, float, float]:
    """(estimate, variance, λ) of PPI++ with no small-n check: for a caller that checks
    the large-sample conditions over several groups together (e.g. the two halves of a
    cross-fitted lift). Same assumptions as :func:`ppi_mean`. O(n + N)."""
    return _ppi_parts(np.asarray(y, np.float64), np.asarray(f_labeled, np.float64),
                      np.asarray(f_all, np.float64), lam)


def ppi_mean(y: np.ndarray, f_labeled: np.ndarray, f_all: np.ndarray, *,
             lam: float | None = None, z: float = Z95,
             bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """PPI++ estimate of the mean outcome over the N rows.

    y : (n,) outcomes of the labeled rows (1 = correct). f_labeled : (n,) the surrogate on
    those rows. f_all : (N,) the surrogate on all N rows of the population (labeled ones
    included). lam : None tunes power (variance-optimal λ in [0, 1]); 1 is plain PPI.

    Assumes: labeled rows a uniform draw of the N; the surrogate fixed before those
    labels were seen (cross-fitted); n ≥ MIN_LABELS for the normal interval (below it:
    the small-n fallback). O(n + N)."""
    y = np.asarray(y, dtype=np.float64)
    f_labeled = np.asarray(f_labeled, dtype=np.float64)
    f_all = np.asarray(f_all, dtype=np.float64)
    if len(y) < MIN_LABELS or _few_minority(y):
        return _small_n("ppi", y, z, bounds)
    est, var, lam = _ppi_parts(y, f_labeled, f_all, lam)
    sd1 = math.sqrt(var * len(y))
    lo, hi = _clip(est, z * math.sqrt(var), bounds)
    return Estimate("ppi", min(max(est, bounds[0]), bounds[1]), lo, hi, len(y), sd1,
                    f"power tuning λ = {lam:.2f}")


def confidence_strata(f_all: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Strata by surrogate quantiles: (edges (bins-1,), stratum of each row (N,)).
    Ties may leave fewer distinct strata. O(N log N)."""
    f_all = np.asarray(f_all, dtype=np.float64)
    edges = np.unique(np.quantile(f_all, np.linspace(0, 1, bins + 1)[1:-1]))
    return edges, np.searchsorted(edges, f_all, side="right")


def neyman_allocation(f_all: np.ndarray, strata: np.ndarray, n: int) -> np.ndarray:
    """Labels per stratum for a total of ``n``: ``n_h ∝ N_h·σ_h`` with ``σ_h² = mean f(1−f)
    + var f`` in the stratum (the outcome's variance if ``f`` is calibrated), at least 2
    per non-empty stratum (the stratum's variance needs them), never more than ``N_h``.
    Planned from the surrogate alone (no labels). Returns (H,) ints, H = strata.max()+1.
    O(N)."""
    f_all = np.asarray(f_all, dtype=np.float64)
    strata = np.asarray(strata)
    n_strata = int(strata.max()) + 1
    size = np.bincount(strata, minlength=n_strata).astype(np.float64)
    mean = np.bincount(strata, f_all, n_strata) / np.maximum(size, 1)
    second = np.bincount(strata, f_all * f_all, n_strata) / np.maximum(size, 1)
    sd = np.sqrt(np.clip(mean - second, 0, None) + np.clip(second - mean ** 2, 0, None))
    sd = np.maximum(sd, 0.02)  # an over-confident stratum still gets labels
    want = size * sd
    alloc = np.where(size > 0, np.minimum(size, 2), 0).astype(np.int64)
    rest = int(n) - int(alloc.sum())
    if rest > 0 and want.sum() > 0:
        extra = np.floor(rest * want / want.sum()).astype(np.int64)
        alloc = np.minimum(alloc + extra, size.astype(np.int64))
        # hand out what rounding left, largest remainders first, where room is left
        short = int(n) - int(alloc.sum())
        order = np.argsort(-(rest * want / want.sum() - extra))
        for h in order:
            if short <= 0:
                break
            if alloc[h] < size[h]:
                alloc[h] += 1
                short -= 1
    return alloc


def stratified_mean(y: np.ndarray, strata_labeled: np.ndarray, strata_all: np.ndarray, *,
                    f_labeled: np.ndarray | None = None, f_all: np.ndarray | None = None,
                    design: str = "uniform", z: float = Z95,
                    bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """Stratified (PPI++ within strata when a surrogate is given) estimate of the mean.

    y : (n,) outcomes. strata_labeled : (n,) stratum of each labeled row. strata_all :
    (N,) stratum of every row of the population (weights ``N_h/N``). f_labeled, f_all :
    the surrogate, optional (None: plain stratum means). design : "uniform" (labels drawn
    uniformly overall: post-stratification; the small-n fallback is the labeled
    proportion's exact interval) or "stratified" (labels drawn per stratum, e.g. Neyman;
    the fallback is per-stratum exact intervals, Bonferroni-combined).

    Assumes: within each stratum the labeled rows are a uniform draw of its rows
    (uniform labels overall, or labels drawn per stratum, e.g. by
    :func:`neyman_allocation`); at least 2 labels in each non-empty stratum (strata
    with fewer are merged into their neighbour); n ≥ MIN_LABELS. O(n + N)."""
    y = np.asarray(y, dtype=np.float64)
    s_lab = np.asarray(strata_labeled)
    s_all = np.asarray(strata_all)
    if design not in ("uniform", "stratified"):
        raise ValueError(f"design must be 'uniform' or 'stratified', got {design!r}")
    if len(y) < MIN_LABELS or _few_minority(y):
        if design == "uniform":
            return _small_n("stratified", y, z, bounds)
        return _stratified_exact(y, s_lab, s_all, z)
    s_lab, s_all = _merge_thin(s_lab, s_all)
    big_n = len(s_all)
    est = var = 0.0
    lams = []
    for h in np.unique(s_all):
        in_all = s_all == h
        in_lab = s_lab == h
        w = in_all.sum() / big_n
        yh = y[in_lab]
        if f_labeled is not None and f_all is not None:
            e, v, lam = _ppi_parts(yh, np.asarray(f_labeled, np.float64)[in_lab],
                                   np.asarray(f_all, np.float64)[in_all], None)
            lams.append(lam)
        else:
            e, v = float(yh.mean()), float(np.var(yh, ddof=1)) / len(yh)
        est += w * e
        var += w * w * v
    sd1 = math.sqrt(var * len(y))
    lo, hi = _clip(est, z * math.sqrt(var), bounds)
    note = f"{len(np.unique(s_all))} strata"
    if lams:
        note += f", PPI++ within strata (λ {min(lams):.2f}-{max(lams):.2f})"
    return Estimate("stratified", min(max(est, bounds[0]), bounds[1]), lo, hi, len(y), sd1,
                    note)


def _stratified_exact(y: np.ndarray, s_lab: np.ndarray, s_all: np.ndarray,
                      z: float) -> Estimate:
    """Small-n fallback valid for any stratified design: each stratum's Clopper-Pearson
    interval at level 1 − α/H (Bonferroni over the H strata), combined with the weights
    N_h/N (conservative). Strata without labels contribute [0, 1]."""
    from longtail.evaluation.metrics import proportion_interval

    alpha = 1.0 - _level(z)
    ids = np.unique(s_all)
    level = 1.0 - alpha / len(ids)
    big_n = len(s_all)
    value = lo = hi = 0.0
    for h in ids:
        w = float(np.count_nonzero(s_all == h)) / big_n
        yh = y[s_lab == h]
        if len(yh) == 0:
            hi += w
            value += w * 0.5
            continue
        a, b = proportion_interval(int(round(yh.sum())), len(yh), level=level)
        value += w * float(yh.mean())
        lo += w * float(a)
        hi += w * float(b)
    sd1 = float(np.std(y, ddof=1)) if len(y) > 1 else 0.5
    return Estimate("stratified", value, lo, hi, len(y), sd1,
                    f"{len(y)} labels or fewer than {MIN_MINORITY} of the rarer outcome: "
                    "per-stratum Clopper-Pearson intervals (Bonferroni), not the large-sample one",
                    fallback=True)


def _merge_thin(s_lab: np.ndarray, s_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge strata with fewer than 2 labels into the next one (ordered), so every
    stratum has a variance."""
    s_lab, s_all = s_lab.copy(), s_all.copy()
    while True:
        ids = np.unique(s_all)
        counts = {h: int((s_lab == h).sum()) for h in ids}
        thin = [h for h in ids if counts[h] < 2]
        if not thin or len(ids) == 1:
            return s_lab, s_all
        h = thin[0]
        pos = int(np.searchsorted(ids, h))
        into = ids[pos + 1] if pos + 1 < len(ids) else ids[pos - 1]
        s_lab[s_lab == h] = into
        s_all[s_all == h] = into


def active_proposal(f_all: np.ndarray, mix: float = 0.2) -> np.ndarray:
    """Active-testing proposal over the N rows: ``∝ sqrt(f(1−f))`` (the sd of the
    residual ``y − f`` when ``f`` is calibrated: the variance-optimal proposal for the
    surrogate-controlled estimate), mixed with ``mix`` of uniform so no row has a tiny
    probability (bounded weights). Returns (N,) probabilities summing to 1. O(N)."""
    f_all = np.clip(np.asarray(f_all, dtype=np.float64), 0.0, 1.0)
    score = np.sqrt(f_all * (1.0 - f_all))
    score = score / score.sum() if score.sum() > 0 else np.full(len(f_all), 1 / len(f_all))
    return (1.0 - mix) * score + mix / len(f_all)


def active_mean(y: np.ndarray, f_labeled: np.ndarray, q_labeled: np.ndarray,
                f_all: np.ndarray, *, z: float = Z95,
                bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate:
    """Active-testing estimate: ``mean_N f + (1/m) Σ (y_i − f_i) / (N q_i)`` over m draws
    with replacement from the proposal ``q`` (importance weights; with replacement
    LURE's weights reduce to ``1/(N q)``).

    y, f_labeled, q_labeled : (m,) outcome, surrogate and proposal probability of each
    draw (a row drawn twice appears twice). f_all : (N,) surrogate on all rows.
    Assumes: the proposal and the surrogate fixed before the draws (calibrate on other
    labels, e.g. the uniform eval set); m ≥ MIN_LABELS. O(m + N)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < MIN_LABELS or _few_minority(y):
        # the draws are not uniform: no proportion interval applies; say nothing
        return Estimate("active", float("nan"), bounds[0], bounds[1], len(y), float("nan"),
                        f"fewer than {MIN_LABELS} draws or {MIN_MINORITY} of the rarer "
                        "outcome: no valid interval", fallback=True)
    f_all = np.asarray(f_all, dtype=np.float64)
    terms = (y - np.asarray(f_labeled, np.float64)) / (len(f_all) * np.asarray(q_labeled))
    est = float(f_all.mean() + terms.mean())
    sd1 = float(np.std(terms, ddof=1))
    lo, hi = _clip(est, z * sd1 / math.sqrt(len(y)), bounds)
    return Estimate("active", min(max(est, bounds[0]), bounds[1]), lo, hi, len(y), sd1,
                    "importance-weighted draws with a surrogate control")


# --------------------------------------------------------------------------- surrogate


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, None))


def top_confidence(probs: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Top-class probability after temperature scaling ``softmax(log p / T)``: (n, C) ->
    (n,). O(n·C) time, streamed in chunks of rows."""
    out = np.empty(len(probs), dtype=np.float64)
    for i in range(0, len(probs), _CHUNK):
        lp = _log_probs(np.asarray(probs[i:i + _CHUNK], dtype=np.float64)) / temperature
        lp -= lp.max(axis=1, keepdims=True)
        e = np.exp(lp)
        out[i:i + _CHUNK] = 1.0 / e.sum(axis=1)  # the top entry is exp(0) = 1
    return out


_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 61))


def fit_temperature(probs: np.ndarray, correct: np.ndarray, top: int = 16) -> float:
    """The temperature whose top-class confidence best predicts correctness (binary
    log-loss), on a log grid 0.05-5. probs : (n, C); correct : (n,) 0/1. The fit looks
    at each row's ``top`` largest probabilities only (the rest add nothing visible at
    T ≤ 5); :func:`top_confidence` then uses all of them. Returns 1.0 with fewer than
    10 rows. O(n·C + 61·n·top)."""
    correct = np.asarray(correct, dtype=np.float64)
    if len(correct) < 10:
        return 1.0
    lp = _log_probs(np.asarray(probs, dtype=np.float64))
    if lp.shape[1] > top:
        lp = -np.partition(-lp, top - 1, axis=1)[:, :top]
    d = lp - lp.max(axis=1, keepdims=True)
    best, best_t = np.inf, 1.0
    for t in _TEMPERATURES:
        c = np.clip(1.0 / np.exp(d / t).sum(axis=1), 1e-6, 1 - 1e-6)
        loss = -np.mean(correct * np.log(c) + (1 - correct) * np.log(1 - c))
        if loss < best:
            best, best_t = loss, float(t)
    return best_t


def crossfit_confidence(probs_labeled: np.ndarray, correct: np.ndarray,
                        probs_all: np.ndarray, *, folds: int = 2,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated confidence as a surrogate of correctness, cross-fitted so no labeled
    row's surrogate was fitted on its own label: the labeled rows are split in
    ``folds``; fold j's rows get the temperature fitted on the other folds; every row of
    the population gets the mean confidence over the folds' temperatures.

    probs_labeled : (n, C) model probabilities of the labeled rows; correct : (n,) 0/1;
    probs_all : (N, C) of all rows (or an array-like read in chunks). Returns
    (f_labeled (n,), f_all (N,)). The model itself must not have been trained on any of
    these rows. O(folds·(61·n + N)·C)."""
    correct = np.asarray(correct, dtype=np.float64)
    n = len(correct)
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(n) % max(1, folds)
    f_lab = np.empty(n)
    f_all = np.zeros(len(probs_all))
    temps = []
    for j in range(max(1, folds)):
        train = fold_of != j if folds > 1 else np.ones(n, bool)
        t = fit_temperature(probs_labeled[train], correct[train])
        temps.append(t)
        f_lab[fold_of == j] = top_confidence(probs_labeled[fold_of == j], t)
        f_all += top_confidence(probs_all, t)
    return f_lab, f_all / max(1, folds)


# --------------------------------------------------------------------------- macro-F1, lift


def weighted_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray, *,
                      n_boot: int = 500, seed: int = 0, z: float = Z95) -> Estimate:
    """Macro-F1 from weighted eval rows (weights: 1 for uniform rows, ``N_h/n_h`` for a
    stratified draw, ``1/(N q)`` for active draws), with a percentile bootstrap over
    rows (resampled within the design's draws). Plug-in: consistent, not unbiased at
    small n. y_true, y_pred : (n,) int class codes. O(n_boot·n)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    w = np.asarray(weights, dtype=np.float64)
    classes = np.union1d(y_true, y_pred)
    t = np.searchsorted(classes, y_true)
    p = np.searchsorted(classes, y_pred)
    k = len(classes)

    def f1(idx: np.ndarray) -> float:
        ww, tt, pp = w[idx], t[idx], p[idx]
        tp = np.bincount(tt[tt == pp], ww[tt == pp], k)
        sup = np.bincount(tt, ww, k)
        pred = np.bincount(pp, ww, k)
        present = (sup + pred) > 0
        return float(np.sum(2 * tp[present] / (sup + pred)[present]) / max(present.sum(), 1))

    n = len(y_true)
    value = f1(np.arange(n))
    rng = np.random.default_rng(seed)
    boots = np.array([f1(rng.integers(0, n, n)) for _ in range(n_boot)])
    alpha = (1 - _level(z)) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return Estimate("weighted_macro_f1", value, float(lo), float(hi), n,
                    float(np.std(boots) * math.sqrt(n)), "plug-in over weighted rows")


def lift_estimate(method: str, correct_model: np.ndarray, correct_random: np.ndarray,
                  f_model: tuple[np.ndarray, np.ndarray] | None = None,
                  f_random: tuple[np.ndarray, np.ndarray] | None = None, *,
                  z: float = Z95) -> Estimate:
    """Lift over random on the same eval rows: the mean of ``correct_model −
    correct_random`` by "uniform" or "ppi" (surrogates: (f_labeled, f_all) pairs of
    each model). Assumes both models scored on the same uniformly drawn rows, neither
    trained on them. O(n + N)."""
    d = np.asarray(correct_model, np.float64) - np.asarray(correct_random, np.float64)
    if method == "uniform" or f_model is None or f_random is None:
        est = uniform_mean(d, z=z, bounds=(-1.0, 1.0))
    elif method == "ppi":
        est = ppi_mean(d, f_model[0] - f_random[0], f_model[1] - f_random[1], z=z,
                       bounds=(-1.0, 1.0))
    else:
        raise ValueError(f"lift_estimate: method must be 'uniform' or 'ppi', got {method!r}")
    return Estimate(f"lift:{est.method}", est.value, est.lo, est.hi, est.n_labels, est.sd1,
                    est.note, est.fallback)
