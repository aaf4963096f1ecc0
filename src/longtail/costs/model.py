"""Predicted labeling cost of unlabeled samples: a ridge regression of log cost on the
sample's vector plus simple features (log text length, numeric metadata), shrunk
toward a prior while few answers are observed.

    pred(x) = exp( (n · ridge(x) + k · log(prior)) / (n + k) )

with n observed answers and k = `prior_strength` pseudo-answers at the prior (the
median observed cost, or `default` before any answer): with 5 answers the prior
dominates, with 500 the data. Regressing the log keeps predictions positive and treats
"twice as long" alike for a 10-second and a 3-minute task. The cost is money when the
project prices answers (a pool's rate, and a `where` rule by class, are then learned
from the vectors) and seconds otherwise. Held-out error: K-fold out-of-fold
predictions, mean absolute error with a bootstrap interval. Pure: arrays in and out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CostModel", "HoldoutError", "cost_features", "fit_cost_model", "holdout_error"]

DEFAULT_PRIOR = 30.0  # seconds of one answer before any is observed


def cost_features(vectors: np.ndarray, text_len: np.ndarray,
                  numeric_meta: np.ndarray | None = None) -> np.ndarray:
    """(n, d + 1 [+ m]) float64: the vectors, log(1 + text length), numeric metadata."""
    parts = [np.asarray(vectors, dtype=np.float64),
             np.log1p(np.asarray(text_len, dtype=np.float64))[:, None]]
    if numeric_meta is not None and numeric_meta.size:
        parts.append(np.asarray(numeric_meta, dtype=np.float64))
    return np.hstack(parts)


@dataclass
class CostModel:
    """A fitted cost model; `predict(X)` gives costs (n,)."""

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    log_prior: float
    n_obs: int
    prior_strength: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted cost per row of X (n, p). O(n·p)."""
        if self.n_obs == 0:
            return np.full(len(X), np.exp(self.log_prior))
        z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        fitted = z @ self.coef + self.intercept
        w = self.n_obs / (self.n_obs + self.prior_strength)
        return np.exp(w * fitted + (1.0 - w) * self.log_prior)


def fit_cost_model(X: np.ndarray, cost: np.ndarray, *, prior: float | None = None,
                   prior_strength: float = 20.0, alpha: float = 10.0) -> CostModel:
    """Ridge on log(cost) (answers with cost <= 0 or NaN are left out). `prior`:
    default the median observed cost, DEFAULT_PRIOR without any. O(n·p² + p³)."""
    X = np.asarray(X, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    keep = np.isfinite(cost) & (cost > 0)
    X, y = X[keep], np.log(cost[keep])
    if prior is None:
        prior = float(np.exp(np.median(y))) if len(y) else DEFAULT_PRIOR
    p = X.shape[1] if X.ndim == 2 else 0
    if len(y) < 2:
        return CostModel(np.zeros(p), float(np.log(prior)), np.zeros(p), np.ones(p),
                         float(np.log(prior)), int(len(y)), prior_strength)
    mean = X.mean(0)
    scale = X.std(0)
    scale[scale == 0] = 1.0
    z = (X - mean) / scale
    intercept = float(y.mean())
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(p), z.T @ (y - intercept))
    return CostModel(coef, intercept, mean, scale, float(np.log(prior)), int(len(y)),
                     prior_strength)


@dataclass(frozen=True)
class HoldoutError:
    """Out-of-fold error of the cost model over `n` answers: mean absolute error `mae`
    (cost units) with its bootstrap interval [lo, hi] at `level`, the same error of a
    constant prediction (`mae_constant`, what the model must beat), and the mean
    absolute relative error."""

    n: int
    mae: float
    lo: float
    hi: float
    mae_constant: float
    relative_error: float
    level: float

    def rounded(self, digits: int = 6) -> HoldoutError:
        """The same with its floats rounded (for reports)."""
        return HoldoutError(self.n, *(round(float(v), digits) for v in (
            self.mae, self.lo, self.hi, self.mae_constant, self.relative_error, self.level)))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def holdout_error(X: np.ndarray, cost: np.ndarray, rng: np.random.Generator, *,
                  folds: int = 5, n_boot: int = 1000, level: float = 0.95,
                  **fit_kw: float) -> HoldoutError | None:
    """Out-of-fold error of the cost model: mean absolute error (in cost units) with a
    bootstrap interval, the same for a constant prediction (the median of the other
    folds: what the model must beat), and the mean absolute relative error. None with
    fewer than 2·folds answers."""
    cost = np.asarray(cost, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(cost) & (cost > 0))
    if len(keep) < 2 * folds:
        return None
    X, cost = np.asarray(X)[keep], cost[keep]
    fold = rng.permutation(len(cost)) % folds
    pred = np.empty(len(cost))
    flat = np.empty(len(cost))
    for f in range(folds):
        train, test = fold != f, fold == f
        pred[test] = fit_cost_model(X[train], cost[train], **fit_kw).predict(X[test])
        flat[test] = np.median(cost[train])
    err = np.abs(pred - cost)
    boots = np.array([err[rng.integers(0, len(err), len(err))].mean() for _ in range(n_boot)])
    tail = (1.0 - level) / 2.0
    return HoldoutError(n=int(len(cost)), mae=float(err.mean()),
                        lo=float(np.quantile(boots, tail)),
                        hi=float(np.quantile(boots, 1 - tail)),
                        mae_constant=float(np.abs(flat - cost).mean()),
                        relative_error=float((err / cost).mean()), level=level)
