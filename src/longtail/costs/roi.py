"""Is active learning paying for itself, in money? The ROI estimator.

The random arm is the labeled eval set, cross-fitted: it is a uniform sample of the
pool, labeled at the pool's own costs, so it tells both what random labels would have
taught (accuracy at m random labels, for m on a grid up to (K-1)/K of the eval set,
each fold scored by models that never saw it) and what a random label costs (the
money of the eval rows' answers). The active arm is the loop's models in order, each
with the money spent up to it (pool labels and compute).

The comparison is made at an accuracy a*: without a ceiling (what `engine.roi` does),
the accuracy both arms reached, min(active's best, random's best); with one, the
accuracy active learning reached (its latest model's on the eval set). The money it
spent to first reach a* is set against the money random labels would have needed for
a* (labels read off the random arm's curve, times the mean cost of a random label);
the eval labels active learning had bought when it first reached a* count on both
sides (both need them to know where they stand; the eval labels bought later are not
part of reaching a*). saving = 1 - money_active / money_random.

The random arm only reaches what (K-1)/K of the eval set teaches, far below a* once the
loop has run a while: with a ceiling, beyond its last size the curve is extrapolated
as a logistic in log m toward it, logit(acc / ceiling) linear in log m through the
arm's last 3 points. The ceiling is what the learner reaches with every label, the same for both
arms (they train the same learner on the same pool): the caller passes draws of it
(e.g. the active curve's asymptote, `evaluation.forecast`). A power law
fitted to the random arm alone is no use here: its early part looks linear in log m,
and on Banking77 a power law fitted to 10-320 random labels puts 0.88 accuracy at
30,000-500,000 labels (the truth: about 2,000). The logistic is not used by default:
with the active curve's fitted asymptote as the ceiling it claimed 70-98% savings on
Banking77 where 47-65% was realised (README, cost_aware).

Interval: a bootstrap over eval samples, resampling the active and random arms'
per-sample correctness and the random label costs together (paired), each replicate
with its own draw of the ceiling, percentile interval. It carries eval noise, the cost
spread and the ceiling's uncertainty; not the training-draw noise of the random arm
(one draw per fold and size) nor the logistic's own misfit. Pure: arrays in, a result
out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Roi", "random_arm", "roi", "size_grid"]

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def size_grid(n_eval: int, folds: int = 5, points: int = 6, smallest: int = 10) -> np.ndarray:
    """Geometric sizes from `smallest` to the largest training fold, unique, int64."""
    top = int(n_eval * (folds - 1) // folds)
    if top < smallest:
        return np.array([top], dtype=np.int64) if top > 0 else np.empty(0, np.int64)
    return np.unique(np.geomspace(smallest, top, points).round().astype(np.int64))


def random_arm(fit_predict: FitPredict, X_eval: np.ndarray, y_eval: np.ndarray,
               sizes: np.ndarray, rng: np.random.Generator, folds: int = 5) -> np.ndarray:
    """Per size m and eval sample i, whether a learner trained on m random eval labels
    of the other folds predicts sample i right: (len(sizes), n_eval) bool. O(folds ·
    len(sizes)) fits; memory O(len(sizes) · n_eval)."""
    n = len(y_eval)
    y_eval = np.asarray(y_eval)
    fold = rng.permutation(n) % folds
    correct = np.zeros((len(sizes), n), dtype=bool)
    for f in range(folds):
        train, score = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(score) == 0:
            continue
        for s, m in enumerate(sizes):
            pick = train[rng.choice(len(train), size=min(int(m), len(train)), replace=False)]
            if len(np.unique(y_eval[pick])) < 2:
                correct[s, score] = y_eval[score] == y_eval[pick][0]
                continue
            pred = np.asarray(fit_predict(X_eval[pick], y_eval[pick], X_eval[score]))
            correct[s, score] = pred == y_eval[score]
    return correct


@dataclass
class Roi:
    """The estimate: saving = 1 - money_active / money_random at accuracy `target`."""

    saving: float
    lo: float
    hi: float
    level: float
    label_saving: float  # the same without compute money
    target: float  # accuracy both arms reached
    random_labels: float  # labels random sampling would have needed for it
    random_labels_lo: float
    random_labels_hi: float
    money_random: float
    money_active: float
    active_labels: float  # labels active learning had when it first reached it
    compute_money: float  # compute active learning spent to reach it
    eval_money: float  # eval labels bought when active learning first reached `target`
    n_eval: int
    unit: str  # "money" or "labels" (no priced answers: one label = one unit)
    verdict: str

    def to_dict(self) -> dict:
        """Floats rounded; an infinite one (random sampling never gets there) as None."""
        return {k: ((round(v, 6) if np.isfinite(v) else None) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


EXTRAPOLATE_POINTS = 3  # the random arm's last sizes the logistic goes through
CEILING_ABOVE = 0.01  # the ceiling is at least this far above the accuracy reached


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _labels_for(acc_random: np.ndarray, sizes: np.ndarray, target: float,
                ceiling: float | None = None) -> float:
    """Random labels for accuracy `target`: interpolation in log m on the running
    maximum of the random curve (more labels never help less); beyond its best, the
    logistic toward `ceiling` (inf when the target is at or above the ceiling, or the
    curve does not rise). Without a ceiling, the arm's largest size (no extrapolation)."""
    best = np.maximum.accumulate(acc_random)
    if target <= best[0]:
        return float(sizes[0])
    if target > best[-1]:
        if ceiling is None:
            return float(sizes[-1])
        return _extrapolate(best, sizes, target, float(ceiling))
    j = int(np.searchsorted(best, target))  # best[j-1] < target <= best[j]
    a0, a1 = best[j - 1], best[j]
    w = 0.0 if a1 == a0 else (target - a0) / (a1 - a0)
    return float(np.exp(np.log(sizes[j - 1]) + w * (np.log(sizes[j]) - np.log(sizes[j - 1]))))


def _extrapolate(best: np.ndarray, sizes: np.ndarray, target: float, ceiling: float) -> float:
    """Labels where logit(acc / ceiling), a line in log m through the last points of the
    running-maximum curve, reaches target / ceiling; inf when the target is at the
    ceiling. A curve with one size, or flat at its end, has no slope to follow: the
    arm's largest size then (what it shows, a saving understated, never 100%)."""
    if target >= ceiling:
        return float("inf")
    k = min(EXTRAPOLATE_POINTS, len(sizes))
    x = np.log(np.asarray(sizes[-k:], dtype=np.float64))
    y = _logit(np.asarray(best[-k:], dtype=np.float64) / ceiling)
    if k < 2 or np.ptp(x) == 0:
        return float(sizes[-1])
    slope, icpt = np.polyfit(x, y, 1)
    if not slope > 0:
        return float(sizes[-1])
    with np.errstate(over="ignore"):  # a nearly flat curve: random never gets there
        m = float(np.exp((float(_logit(np.array([target / ceiling]))[0]) - icpt) / slope))
    return max(m, float(sizes[-1]))


def _active_at(acc_active: np.ndarray, values: np.ndarray, target: float) -> float:
    """Interpolated `values` (money, labels) where the active run first reached `target`."""
    best = np.maximum.accumulate(acc_active)
    j = int(np.searchsorted(best, target))
    if j >= len(best):
        return float(values[-1])
    if j == 0:
        return float(values[0])
    a0, a1 = best[j - 1], best[j]
    w = 1.0 if a1 == a0 else (target - a0) / (a1 - a0)
    return float(values[j - 1] + w * (values[j] - values[j - 1]))


def _one(active_correct, active_labels, active_label_money, active_compute, sizes,
         random_correct, cost, eval_money, idx, ceiling):
    acc_a = active_correct[:, idx].mean(1)
    acc_r = random_correct[:, idx].mean(1)
    # The accuracy reached: the latest model's (the best one's would carry the eval
    # set's noise upward, a winner's curse).
    target = float(acc_a[-1]) if ceiling is not None else float(
        min(acc_a.max(), np.maximum.accumulate(acc_r)[-1]))
    if ceiling is not None:
        # What every label gives is above what some of them gave: a fitted asymptote
        # at or below the accuracy reached (a short or noisy curve) would make random
        # sampling never get there, and the saving 100%.
        ceiling = min(max(ceiling, target + CEILING_ABOVE), 1.0)
    n_r = _labels_for(acc_r, sizes, target, ceiling)
    per_label = float(cost[idx].mean())
    eval_a = _active_at(acc_a, eval_money, target)
    money_r = n_r * per_label + eval_a
    lab_a = _active_at(acc_a, active_label_money, target)
    comp_a = _active_at(acc_a, active_compute, target)
    money_a = lab_a + comp_a + eval_a
    if money_r == float("inf"):  # random sampling would never get there: all saved
        saving = label_saving = 1.0
    else:
        saving = 1.0 - money_a / money_r if money_r > 0 else 0.0
        label_saving = 1.0 - (lab_a + eval_a) / money_r if money_r > 0 else 0.0
    return {"saving": saving, "label_saving": label_saving,
            "target": target, "n_r": n_r, "money_r": money_r, "money_a": money_a,
            "n_a": _active_at(acc_a, active_labels, target), "compute": comp_a,
            "eval": eval_a}


def roi(active_correct: np.ndarray, active_labels: np.ndarray, active_label_money: np.ndarray,
        active_compute: np.ndarray, sizes: np.ndarray, random_correct: np.ndarray,
        random_cost: np.ndarray, eval_money: float | np.ndarray, rng: np.random.Generator, *,
        n_boot: int = 1000, level: float = 0.95, unit: str = "money",
        min_eval: int = 30, ceiling: float | np.ndarray | None = None) -> Roi:
    """The saving of active learning over random sampling, in money, with an interval.

    active_correct : (n_models, n_eval) bool, the loop's models in order on the eval set.
    active_labels, active_label_money, active_compute : (n_models,) labels, cumulative
        pool-label money and compute money spent up to each model.
    sizes, random_correct : the random arm (`size_grid`, `random_arm`).
    random_cost : (n_eval,) money of each eval row's answer (a random label's cost).
    eval_money : (n_models,) money spent on eval labels up to each model (a number: the
        same for every model); what was spent when active learning first reached the
        target counts on both sides.
    ceiling : the accuracy every label would reach: a number, or draws of it (the
        point estimate uses their median, each bootstrap replicate one draw). With it
        the comparison is at the latest model's accuracy, the random arm
        extrapolated beyond its last size; without it, at the accuracy both arms
        reached.
    O(n_boot · (n_models + len(sizes)) · n_eval) time.
    """
    n_eval = active_correct.shape[1]
    eval_money = np.broadcast_to(np.asarray(eval_money, dtype=float), (len(active_labels),))
    draws = None if ceiling is None else np.atleast_1d(np.asarray(ceiling, dtype=float))
    args = (active_correct, active_labels, active_label_money, active_compute, sizes,
            random_correct, random_cost, eval_money)
    point = _one(*args, np.arange(n_eval),
                 None if draws is None else float(np.median(draws)))
    boots = [_one(*args, rng.integers(0, n_eval, n_eval),
                  None if draws is None else float(draws[b % len(draws)]))
             for b in range(n_boot)]
    tail = (1.0 - level) / 2.0
    s = np.array([b["saving"] for b in boots])
    nr = np.array([b["n_r"] for b in boots])
    lo, hi = (float(v) for v in np.quantile(s, [tail, 1.0 - tail]))
    result = Roi(saving=point["saving"], lo=min(lo, point["saving"]),
                 hi=max(hi, point["saving"]), level=level,
                 label_saving=point["label_saving"], target=point["target"],
                 random_labels=point["n_r"],
                 random_labels_lo=float(np.quantile(nr, tail)),
                 random_labels_hi=float(np.quantile(nr, 1.0 - tail)),
                 money_random=point["money_r"], money_active=point["money_a"],
                 active_labels=point["n_a"], compute_money=point["compute"],
                 eval_money=point["eval"], n_eval=int(n_eval), unit=unit, verdict="")
    result.verdict = roi_verdict(result, min_eval=min_eval, top_size=int(sizes[-1]))
    return result


def roi_verdict(r: Roi, *, min_eval: int = 30, top_size: int | None = None) -> str:
    """The estimate in plain words."""
    pct = f"{r.level * 100:.0f}% CI"
    interval = f"({pct} {r.lo * 100:.0f} to {r.hi * 100:.0f})"
    what = "money" if r.unit == "money" else "labels"
    where = (f" to reach accuracy {r.target:.3f}, which random sampling would have needed "
             f"~{r.random_labels:,.0f} labels for" if np.isfinite(r.random_labels) else
             f" to reach accuracy {r.target:.3f}, which random sampling's curve does not reach")
    if r.n_eval < min_eval:
        return (f"no evidence yet: {min_eval - r.n_eval} more eval labels would tell "
                f"({r.n_eval} labeled)")
    if r.lo > 0:
        return f"active learning is saving {r.saving * 100:.0f}% of the {what} here {interval}{where}"
    if r.label_saving > 0 and r.saving <= 0:
        return (f"not paying for its compute: it saves {r.label_saving * 100:.0f}% of the "
                f"labeling money, and its compute ({r.compute_money:,.2f}) costs more than that")
    if r.hi < 0:
        return (f"active learning is costing {-r.saving * 100:.0f}% more than random "
                f"sampling here {interval}{where}")
    half = max((r.hi - r.lo) / 2.0, 1e-9)
    if abs(r.saving) > 1e-6:
        more = int(np.ceil(r.n_eval * ((half / abs(r.saving)) ** 2 - 1.0)))
        if more > 0:
            return (f"no evidence yet: ~{more:,} eval labels more would tell "
                    f"(saving {r.saving * 100:.0f}%, {interval[1:-1]})")
    return f"no evidence yet: no measurable saving (saving {r.saving * 100:.0f}%, {interval[1:-1]})"
