"""A saved linear head, loaded to predict only: numpy, no scikit-learn.

`longtail query` needs the latest model's class probabilities over the pool and
nothing else; importing scikit-learn to rebuild a `LinearHead` costs a command more
than the scoring pass itself. `LinearScorer` holds the head's arrays and computes the
same softmax, chunk by chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CHUNK_ROWS = 65_536


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
        out_dtype = np.float64 if X.dtype == np.float64 else np.float32
        out = np.empty((X.shape[0], self.classes_.size), dtype=out_dtype)
        if self.classes_.size == 1:
            out[:] = 1.0
            return out
        compute = np.float64 if out_dtype == np.float64 else np.float32
        coef_t = self.coef_.T.astype(compute)
        intercept = self.intercept_.astype(compute)
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            block = np.asarray(X[start:start + _CHUNK_ROWS], dtype=compute)
            logits = (block @ coef_t).astype(np.float64)
            logits += intercept
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            logits /= logits.sum(axis=1, keepdims=True)
            out[start:start + block.shape[0]] = logits
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
