"""The control arm: is selection beating random, here, now?

Every labeling batch carries a small control slice ``R`` drawn uniformly at
random from the same candidates the strategy chose its slice ``S`` from. Once
both are labeled, round t's lift is estimated as follows.

Estimator
---------
With ``L`` the labels from before round t:

1. Draw ``S'``, a uniform random subsample of ``S`` of size ``|R|``, so both
   arms add the same number of labels (if ``|S| < |R|``, ``R`` is subsampled
   to ``|S|`` instead).
2. Train the same learner on ``L ∪ S'`` and on ``L ∪ R``; predict the eval set.
3. Per eval sample i, ``d_i`` = (selected model correct) − (control model
   correct); the round's lift is the mean of ``d_i`` (an accuracy difference,
   in accuracy units; the verdict prints points = ×100).
4. Steps 1–3 are repeated ``n_repeats`` times with fresh ``S'`` (the control
   model is trained once per repeat too, so a learner with randomness gets
   averaged); ``d_i`` is averaged over repeats.
5. Interval: a paired bootstrap over eval samples of the mean of ``d_i``
   gives the eval-noise standard error. The training noise (which labels the
   arms happened to get) is the variance of an arm's accuracy at m = |S'|
   labels. When ``|S| >= 2m`` the repeats subsample ``S`` at exactly m, and
   their spread, σ²(1/m − 1/|S|), gives σ²/m for the selected arm; the control
   arm is taken to have the same. Otherwise (equal slices, or one repeat) each
   arm is also trained ``n_halves`` times on ``L`` plus a random half of its
   slice, and the spread of those accuracies, scaled to m (the delete-d
   jackknife with d = m/2), estimates it per arm; this errs wide (about 1.5–2×
   the standard error in our tests, where accuracy's variance falls faster than
   1/m). The selected arm's variance shrinks with the averaging over repeats
   only for the part due to subsampling ``S``; the control arm's counts in
   full. The interval is ``lift ± z·se``.

   (Without the half-samples the spread of the selected arm across repeats is
   zero when ``|S| = |R|``: two arms drawn alike then got a "beating" verdict
   about half the time; tested in tests/evaluation/test_lift.py.)

6. The eval-noise part may come from the project's accuracy estimator instead
   (``estimator="ppi"``, the default of `train`'s verdict): PPI++ on the paired outcome
   ``d_i`` over the whole eval population (the labeled eval rows plus the unlabeled rows
   of the eval split, ``X_pop``), with the surrogate ``g = q[pred_sel] − q[pred_ctrl]``,
   ``q`` the two arms' mean class probabilities — the ``d`` expected if ``q`` were the
   truth, 0 wherever the arms agree (where ``d`` is 0 too). Valid for the same reason
   as the accuracy's PPI (labeled eval rows a uniform draw of the population, no arm
   trained on it); tighter where the arms' confidences say which of them is right on
   the rows where they differ. With fewer than ``MIN_MINORITY`` rows where the arms
   differ the large-sample interval does not hold and the bootstrap is used, and the
   lift's ``note`` says so.

The cumulative lift over rounds is the precision-weighted (1/se²) mean of
the per-round lifts, with standard error ``1/sqrt(Σ 1/se²)``.

Assumptions, to read the figure right:

- It measures the marginal value of one round's selected labels over the
  same number of random labels, on top of the same earlier labels; it is not
  the gap between a whole active-learning run and a whole random run (that
  compounds over rounds and is usually larger).
- ``S'`` is a random part of ``S``: a strategy whose value lies in the
  batch's composition (diversity) is judged at the control slice's size,
  which can understate it when the control slice is much smaller than S.
- Control samples come from the same candidate pool at the same time as S,
  so drift in the stream affects both arms alike.
- The eval set is a random (or stratified) draw from the stream, labeled
  correctly and never trained on; the figure speaks about that population.
- Rounds are independent given their eval sets; rounds scored on the same
  eval set are positively correlated, so the cumulative interval is on the
  narrow side.
- Small control slices give wide intervals: that is the honest answer, and
  the verdict says "no measurable difference yet" until they narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from longtail.errors import InputError

__all__ = ["Lift", "crossfit_lift", "round_lift", "cumulative_lift", "verdict",
           "paired_surrogate"]

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# fit_proba(X, y, X_new) -> (classes (C,), probabilities (len(X_new), C))
FitProba = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
LIFT_ESTIMATORS = ("uniform", "ppi")


@dataclass(frozen=True)
class Lift:
    """A lift estimate in accuracy units (0.031 = 3.1 points).

    lift : selected-arm accuracy minus control-arm accuracy.
    lo, hi : interval at `level`. se : its standard error.
    n_labels : labels per arm added this round (cumulative: summed over rounds).
    n_eval : eval samples scored. n_rounds : rounds combined (1 for a round).
    acc_selected, acc_control : the two arms' eval accuracies (round only).
    """

    lift: float
    lo: float
    hi: float
    se: float
    level: float
    n_labels: int
    n_eval: int
    n_rounds: int = 1
    acc_selected: float | None = None
    acc_control: float | None = None
    estimator: str = "uniform"  # what gave the eval-noise part: "uniform" (bootstrap) or "ppi"
    note: str = ""


def _concat(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    if a is None or len(a) == 0:
        return np.asarray(b)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def paired_surrogate(classes_a: np.ndarray, probs_a: np.ndarray, classes_b: np.ndarray,
                     probs_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pred_a, pred_b, g) for n rows scored by two models: each model's predicted
    class, and ``g = q[pred_a] − q[pred_b]`` with ``q`` the two models' mean class
    probabilities (over the union of their classes): a surrogate of ``correct_a −
    correct_b``, exactly 0 where the two predict alike. probs_* : (n, C_*). O(n·C)."""
    classes_a, classes_b = np.asarray(classes_a), np.asarray(classes_b)
    classes = np.union1d(classes_a, classes_b)
    q = np.zeros((len(probs_a), len(classes)))
    q[:, np.searchsorted(classes, classes_a)] += 0.5 * np.asarray(probs_a)
    q[:, np.searchsorted(classes, classes_b)] += 0.5 * np.asarray(probs_b)
    pred_a = classes_a[np.asarray(probs_a).argmax(1)]
    pred_b = classes_b[np.asarray(probs_b).argmax(1)]
    rows = np.arange(len(q))
    g = q[rows, np.searchsorted(classes, pred_a)] - q[rows, np.searchsorted(classes, pred_b)]
    return pred_a, pred_b, g


def _ppi_parts(folds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
               ) -> tuple[float, float, str] | None:
    """(lift, eval se, note) by PPI++ over each fold's labeled rows and the unlabeled
    population rows, folds weighted by their labeled rows; None when the large-sample
    interval does not hold (fewer than MIN_LABELS labeled rows, or fewer than
    MIN_MINORITY of them where the arms differ, all folds together).
    folds: (d (n_j,), g on those rows (n_j,), g on the unlabeled rows (m,))."""
    from longtail.evaluation.estimators import MIN_LABELS, MIN_MINORITY, ppi_parts

    n = sum(len(d) for d, _, _ in folds)
    if n < MIN_LABELS or sum(np.count_nonzero(d) for d, _, _ in folds) < MIN_MINORITY:
        return None
    value = var = 0.0
    lams = []
    for d, g_lab, g_pop in folds:
        if len(d) < 2:
            return None
        est, v, lam = ppi_parts(d, g_lab, np.concatenate([g_lab, g_pop]))
        w = len(d) / n
        value += w * est
        var += w * w * v
        lams.append(lam)
    value = min(max(value, -1.0), 1.0)
    return value, float(np.sqrt(var)), (
        f"PPI++ over {n} labeled and {len(folds[0][2])} unlabeled eval rows"
        + (f" in {len(folds)} halves" if len(folds) > 1 else "")
        + f" (power tuning λ {min(lams):.2f}" + (f"-{max(lams):.2f})" if len(lams) > 1 else ")"))


def _check_estimator(estimator: str, fit_proba: FitProba | None) -> None:
    if estimator not in LIFT_ESTIMATORS:
        raise InputError(f"the lift's estimator must be one of {LIFT_ESTIMATORS}, got {estimator!r}")
    if estimator == "ppi" and fit_proba is None:
        raise InputError("a PPI lift needs fit_proba (the arms' class probabilities)")


_PPI_FELL_BACK = ("ppi asked; fewer than {k} eval rows where the arms differ: the "
                  "large-sample interval does not hold, the bootstrap over eval rows instead")


def _eval_lift(d: np.ndarray, ppi_folds: list | None, n_boot: int,
               rng: np.random.Generator) -> tuple[float, float, str, str]:
    """(lift, eval-noise se, estimator used, note) from per-eval-sample differences
    ``d``: PPI++ over ``ppi_folds`` when given and it applies (`_ppi_parts`), else the
    mean of ``d`` with a paired-bootstrap se (and a note when PPI was asked for)."""
    parts = _ppi_parts(ppi_folds) if ppi_folds is not None else None
    if parts is not None:
        lift, se, note = parts
        return lift, se, "ppi", note
    from longtail.evaluation.estimators import MIN_MINORITY

    note = _PPI_FELL_BACK.format(k=MIN_MINORITY) if ppi_folds is not None else ""
    return float(d.mean()), _bootstrap_se(d, n_boot, rng), "uniform", note


def _bootstrap_se(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> float:
    """Standard error of mean(d) by resampling eval samples; vectorised, chunked."""
    n = len(d)
    chunk = max(1, 2_000_000 // n)
    means = []
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        means.append(d[rng.integers(0, n, size=(size, n))].mean(axis=1))
    return float(np.std(np.concatenate(means), ddof=1)) if n_boot > 1 else 0.0


def _half_sample_var(
    fit_predict: FitPredict, X_prev: np.ndarray | None, y_prev: np.ndarray | None,
    X_arm: np.ndarray, y_arm: np.ndarray, m: int, X_eval: np.ndarray, y_eval: np.ndarray,
    rng: np.random.Generator, n_halves: int,
) -> float:
    """Variance of the eval accuracy of a model trained on ``L`` plus m random labels
    of this arm's kind, by the delete-d jackknife: ``n_halves`` fits on h = m // 2 of
    the arm's n labels; Var(acc at h, drawn from n) ≈ σ²(1/h − 1/n), rescaled to σ²/m."""
    n = len(y_arm)
    h = m // 2
    if n_halves < 2 or h < 1 or h >= n:
        return 0.0
    accs = np.empty(n_halves)
    for k in range(n_halves):
        rows = rng.choice(n, size=h, replace=False)
        pred = fit_predict(_concat(X_prev, np.asarray(X_arm)[rows]),
                           _concat(y_prev, np.asarray(y_arm)[rows]), X_eval)
        accs[k] = np.mean(np.asarray(pred) == y_eval)
    return float(np.var(accs, ddof=1)) * (h * n) / (m * (n - h))


def round_lift(
    fit_predict: FitPredict,
    X_prev: np.ndarray | None,
    y_prev: np.ndarray | None,
    X_sel: np.ndarray,
    y_sel: np.ndarray,
    X_ctrl: np.ndarray,
    y_ctrl: np.ndarray,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    rng: np.random.Generator,
    *,
    n_repeats: int = 5,
    n_halves: int = 6,
    n_boot: int = 1000,
    level: float = 0.95,
    estimator: str = "uniform",
    fit_proba: FitProba | None = None,
    X_pop: np.ndarray | None = None,
) -> Lift:
    """One round's lift of the selected slice over the random control slice.

    fit_predict : ``fit_predict(X, y, X_eval) -> y_pred`` trains the project's
        learner from scratch on (X, y) and predicts X_eval; called
        ``2·n_repeats`` times, plus ``2·n_halves`` fits on half the slice when
        ``|S| < 2·|R|`` or ``n_repeats == 1`` (see step 5).
    X_prev, y_prev : (n_prev, d), (n_prev,) labels from earlier rounds (may be
        None or empty).
    X_sel, y_sel : (n_sel, d), (n_sel,) the strategy's slice of this round.
    X_ctrl, y_ctrl : (n_ctrl, d), (n_ctrl,) the random control slice.
    X_eval, y_eval : (n_eval, d), (n_eval,) the eval set.
    rng : seeded generator for the subsamples and the bootstrap.
    n_halves : half-sample fits per arm for the training noise when the repeats
        cannot give it (0: leave it out, the interval then reflects eval noise only).
    estimator : "uniform" (the eval noise by a paired bootstrap) or "ppi" (step 6:
        PPI++ over the eval population; needs ``fit_proba``, which then trains the
        arms, and ``X_pop`` (m, d), the eval population's unlabeled rows).

    Returns a `Lift` (see the module docstring for the estimator).
    """
    _check_estimator(estimator, fit_proba)
    n_sel, n_ctrl, n_eval = len(y_sel), len(y_ctrl), len(y_eval)
    if n_sel == 0 or n_ctrl == 0:
        raise InputError(
            f"lift needs both a selected and a control slice, got {n_sel} and {n_ctrl} labels"
        )
    if n_eval == 0:
        raise InputError("lift needs a labeled eval set, and it is empty")
    if n_repeats < 1:
        raise InputError(f"n_repeats must be >= 1, got {n_repeats}")
    if n_halves < 0 or n_halves == 1:
        raise InputError(f"n_halves must be 0 or >= 2, got {n_halves}")
    size = min(n_sel, n_ctrl)
    y_eval_arr = np.asarray(y_eval)
    correct_sel = np.zeros(n_eval)
    correct_ctrl = np.zeros(n_eval)
    acc_sel_repeats = np.zeros(n_repeats)
    ppi = estimator == "ppi"
    X_pop = np.asarray(X_pop) if ppi and X_pop is not None and len(X_pop) else None
    X_scored = X_eval if X_pop is None else np.concatenate([np.asarray(X_eval), X_pop])
    g = np.zeros(len(X_scored))
    for r in range(n_repeats):
        sel_rows = rng.choice(n_sel, size=size, replace=False)
        ctrl_rows = rng.choice(n_ctrl, size=size, replace=False) if n_ctrl > size else slice(None)
        train_sel = (_concat(X_prev, np.asarray(X_sel)[sel_rows]),
                     _concat(y_prev, np.asarray(y_sel)[sel_rows]))
        train_ctrl = (_concat(X_prev, np.asarray(X_ctrl)[ctrl_rows]),
                      _concat(y_prev, np.asarray(y_ctrl)[ctrl_rows]))
        if ppi:
            pred_sel, pred_ctrl, g_r = paired_surrogate(*fit_proba(*train_sel, X_scored),
                                                        *fit_proba(*train_ctrl, X_scored))
            g += g_r / n_repeats
            pred_sel, pred_ctrl = pred_sel[:n_eval], pred_ctrl[:n_eval]
        else:
            pred_sel = fit_predict(*train_sel, X_eval)
            pred_ctrl = fit_predict(*train_ctrl, X_eval)
        hit_sel = np.asarray(pred_sel) == y_eval_arr
        correct_sel += hit_sel
        correct_ctrl += np.asarray(pred_ctrl) == y_eval_arr
        acc_sel_repeats[r] = hit_sel.mean()
    correct_sel /= n_repeats
    correct_ctrl /= n_repeats
    d = correct_sel - correct_ctrl
    lift, se_eval, used, note = _eval_lift(d, [(d, g[:n_eval], g[n_eval:])] if ppi else None,
                                           n_boot, rng)
    # Training noise: the variance of an arm's accuracy at `size` labels (module
    # docstring, step 5).
    if n_repeats >= 2 and n_sel >= 2 * size:
        # The repeats subsample S at exactly `size`: their spread is σ²(1/size - 1/n_sel).
        var_sel = float(np.var(acc_sel_repeats, ddof=1)) * n_sel / (n_sel - size)
        var_ctrl = var_sel
    else:
        var_sel, var_ctrl = (
            _half_sample_var(fit_predict, X_prev, y_prev, X_arm, y_arm, size,
                             X_eval, y_eval_arr, rng, n_halves)
            for X_arm, y_arm in ((X_sel, y_sel), (X_ctrl, y_ctrl)))
    # An arm averaged over subsamples of its n labels keeps the noise of those n.
    var_train = (var_sel * (size / n_sel + (1.0 - size / n_sel) / n_repeats)
                 + var_ctrl * (size / n_ctrl + (1.0 - size / n_ctrl) / n_repeats))
    se = float(np.sqrt(se_eval**2 + var_train))
    se = max(se, 0.5 / n_eval)  # never claim more precision than one eval sample's worth
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return Lift(
        lift=lift, lo=lift - z * se, hi=lift + z * se, se=se, level=level,
        n_labels=int(size), n_eval=int(n_eval), n_rounds=1,
        acc_selected=float(correct_sel.mean()), acc_control=float(correct_ctrl.mean()),
        estimator=used, note=note,
    )


def crossfit_lift(
    fit_predict: FitPredict,
    X_active: np.ndarray,
    y_active: np.ndarray,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    rng: np.random.Generator,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    estimator: str = "uniform",
    fit_proba: FitProba | None = None,
    X_pop: np.ndarray | None = None,
) -> Lift:
    """Selection against random at equal label count, with the eval set as the random
    arm: no control labels needed.

    The labeled eval set is a uniform sample of the pool, which is what a random
    labeling of the pool would have bought. Split it at random into halves A and B;
    with m = min(|A|, |B|, len(y_active)), the active arm is the learner trained on the
    run's first m labels (``X_active`` in the order they were paid for), the random arm
    the learner trained on m labels of A, scored on B; then A and B swap. Each eval
    sample is scored once, by models that never saw it; ``d_i`` = active correct −
    random correct, the lift is mean(d), the interval a paired bootstrap over eval
    samples (eval noise; one training draw per half). Calls ``fit_predict`` 3 times.
    With ``estimator="ppi"`` (``fit_proba`` trains the arms, ``X_pop`` holds the eval
    population's unlabeled rows) each half's lift is PPI++ over the half it scores plus
    ``X_pop`` (module docstring, step 6) and the two are averaged, weighted by size.
    Raises InputError with fewer than 20 labeled eval samples.
    """
    _check_estimator(estimator, fit_proba)
    n_eval = len(y_eval)
    if n_eval < 20:
        raise InputError(f"a cross-fitted lift needs 20 or more labeled eval samples, got {n_eval}")
    y_eval = np.asarray(y_eval)
    order = rng.permutation(n_eval)
    halves = (order[: n_eval // 2], order[n_eval // 2:])
    m = int(min(len(halves[0]), len(halves[1]), len(y_active)))
    if m < 1:
        raise InputError("a cross-fitted lift needs labels in the active run")
    ppi = estimator == "ppi"
    X_pop = np.asarray(X_pop) if ppi and X_pop is not None and len(X_pop) else None
    X_eval = np.asarray(X_eval)
    X_scored = X_eval if X_pop is None else np.concatenate([X_eval, X_pop])
    if ppi:
        active_fit = fit_proba(np.asarray(X_active)[:m], np.asarray(y_active)[:m], X_scored)
        active_pred = active_fit[0][active_fit[1][:n_eval].argmax(1)]
    else:
        active_pred = np.asarray(fit_predict(np.asarray(X_active)[:m],
                                             np.asarray(y_active)[:m], X_eval))
    correct_active = active_pred == y_eval
    correct_random = np.zeros(n_eval, dtype=bool)
    folds = []  # PPI: (scored rows, g on them, g on the population) per half
    for train, score in (halves, halves[::-1]):
        pick = train[rng.choice(len(train), size=m, replace=False)]
        if ppi:
            rows = np.concatenate([score, n_eval + np.arange(len(X_scored) - n_eval)])
            classes, probs = fit_proba(X_eval[pick], y_eval[pick], X_scored[rows])
            _, pred, g = paired_surrogate(active_fit[0], active_fit[1][rows], classes, probs)
            pred = pred[:len(score)]
            folds.append((score, g[:len(score)], g[len(score):]))
        else:
            pred = np.asarray(fit_predict(X_eval[pick], y_eval[pick], X_eval[score]))
        correct_random[score] = pred == y_eval[score]
    d = correct_active.astype(float) - correct_random.astype(float)
    lift, se, used, note = _eval_lift(
        d, [(d[score], g_lab, g_pop) for score, g_lab, g_pop in folds] if ppi else None,
        n_boot, rng)
    se = max(se, 0.5 / n_eval)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return Lift(lift=lift, lo=lift - z * se, hi=lift + z * se, se=se, level=level,
                n_labels=m, n_eval=int(n_eval), n_rounds=1,
                acc_selected=float(correct_active.mean()), acc_control=float(correct_random.mean()),
                estimator=used, note=note)


def cumulative_lift(round_lifts: Sequence[Lift], *, level: float | None = None) -> Lift:
    """Combine per-round lifts: precision-weighted (1/se²) mean, se = 1/sqrt(Σ 1/se²).

    level : interval level; default the first round's. Assumes the rounds'
    errors are independent (see the module docstring).
    """
    if not round_lifts:
        raise InputError("no rounds with a control slice yet: there is no lift to combine")
    level = round_lifts[0].level if level is None else level
    lifts = np.array([r.lift for r in round_lifts])
    se = np.array([max(r.se, 0.5 / max(r.n_eval, 1)) for r in round_lifts])
    weights = 1.0 / se**2
    mean = float(np.sum(weights * lifts) / np.sum(weights))
    se_total = float(1.0 / np.sqrt(np.sum(weights)))
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return Lift(
        lift=mean, lo=mean - z * se_total, hi=mean + z * se_total, se=se_total, level=level,
        n_labels=int(sum(r.n_labels for r in round_lifts)),
        n_eval=int(max(r.n_eval for r in round_lifts)), n_rounds=len(round_lifts),
    )


def verdict(lift: Lift) -> str:
    """The lift in plain words, in points (accuracy × 100)."""
    pct = f"{lift.level * 100:.0f}%"
    interval = f"({pct} CI {lift.lo * 100:.1f} to {lift.hi * 100:.1f})"
    if lift.lo > 0:
        return f"selection is beating random by {lift.lift * 100:.1f} points {interval}"
    if lift.hi < 0:
        return f"random is beating selection by {-lift.lift * 100:.1f} points {interval}"
    return (
        f"no measurable difference yet: random would do as well "
        f"(lift {lift.lift * 100:.1f} points, {interval[1:-1]})"
    )
