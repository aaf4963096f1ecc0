"""A saved linear head, loaded to predict only: numpy, no scikit-learn.

`longtail query` needs the latest model's class probabilities over the pool and
nothing else; importing scikit-learn to rebuild a `LinearHead` costs a command more
than the scoring pass itself. `LinearScorer` holds the head's arrays and computes the
same softmax, chunk by chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

_CHUNK_ROWS = 65_536


def linear_proba(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, n_classes: int,
                 threads: Callable[[], Any] = contextlib.nullcontext,
                 chunk_rows: int = _CHUNK_ROWS) -> np.ndarray:
    """Softmax of ``X @ coef.T + intercept``: (n, C), float32 for float32/float16 input,
    float64 otherwise; chunks of rows, so a memory-mapped X is read once and never
    copied whole. ``threads()`` wraps each matrix product (the head's BLAS limit).
    One class: a column of ones. O(n·d·C) time, O(chunk·C) extra memory."""
    out_dtype = np.float64 if X.dtype == np.float64 else np.float32
    out = np.empty((X.shape[0], n_classes), dtype=out_dtype)
    if n_classes == 1:
        out[:] = 1.0
        return out
    compute = np.float64 if out_dtype == np.float64 else np.float32
    coef_t = np.asarray(coef).T.astype(compute)
    bias = np.asarray(intercept).astype(compute)
    for start in range(0, X.shape[0], chunk_rows):
        block = np.asarray(X[start:start + chunk_rows], dtype=compute)
        with threads():
            logits = (block @ coef_t).astype(np.float64)
        logits += bias
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        out[start:start + block.shape[0]] = logits
    return out


class LinearScorer:
    """``predict_proba`` of a trained multinomial linear head (``coef`` (C, d),
    ``intercept`` (C,), ``classes_`` (C,)). O(n·d·C) time, O(chunk·C) extra memory."""

    def __init__(self, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        self.classes_ = np.asarray(classes)
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)
        self.n_features_in_ = int(self.coef_.shape[1]) if self.coef_.ndim == 2 else 0

    def fit(self, X: Any, y: Any) -> LinearScorer:
        raise TypeError("a LinearScorer only predicts: load the model for training instead")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, C), columns in ``classes_`` order: float32 for
        float32/float16 input, float64 otherwise (as `LinearHead.predict_proba`)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        return linear_proba(X, self.coef_, self.intercept_, self.classes_.size)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
