"""Cross-fitting: out-of-fold class probabilities, each row predicted by a learner that
never saw it. Pure: arrays in, arrays out (the release estimate and `suspects` use it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from longtail.learners.base import Learner
from longtail.learners.committee import committee_probs


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number in [0, k) per row of `y` (n,), each class dealt round-robin over
    the folds from a random start in a random order, so every fold holds about 1/k of
    every class and a class with 2 or more rows is in every fold's training part.
    O(n log n) time, O(n) memory."""
    y = np.asarray(y)
    fold_of = np.empty(len(y), dtype=np.int64)
    _, codes = np.unique(y, return_inverse=True)
    for c in range(int(codes.max()) + 1 if len(codes) else 0):
        members = np.flatnonzero(codes == c)
        order = rng.permutation(members)
        fold_of[order] = (np.arange(len(order)) + rng.integers(k)) % k
    return fold_of


def cross_fit_probs(make: Callable[[], Learner], X: np.ndarray, y: np.ndarray,
                    fold_of: np.ndarray, *, classes: np.ndarray | None = None,
                    X_extra: np.ndarray | None = None, y_extra: np.ndarray | None = None
                    ) -> np.ndarray:
    """Out-of-fold probabilities (n, C): row i is predicted by a fresh learner from
    `make()` fitted on the rows of the other folds (plus `X_extra`, `y_extra`, always
    trained on and never predicted). Column c is `classes[c]` (default: the sorted
    classes of `y` and `y_extra`); a class a fold's learner never saw gets 0. `X` (n, d),
    `y` (n,), `fold_of` (n,) ints. Time: one fit per fold; memory O(n·C) plus one
    training copy of X."""
    y = np.asarray(y)
    parts = [y] if y_extra is None else [y, np.asarray(y_extra)]
    classes = np.unique(np.concatenate(parts)) if classes is None else np.asarray(classes)
    out = np.zeros((len(y), len(classes)), dtype=np.float64)
    for f in np.unique(fold_of):
        held = fold_of == f
        X_fit: Any = X[~held]
        y_fit = y[~held]
        if X_extra is not None:
            X_fit, y_fit = np.concatenate([X_extra, X_fit]), np.concatenate([y_extra, y_fit])
        model = make().fit(X_fit, y_fit)
        out[held] = committee_probs([model], X[held], classes)[0]
    return out
