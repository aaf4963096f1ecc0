"""The default learner: multinomial logistic regression on vectors, warm-started per round."""

from __future__ import annotations

import contextlib
import numbers
import time
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from longtail.errors import InputError

_FORMAT = "longtail.LinearHead/1"
_CHUNK_ROWS = 16_384


class LinearHead(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression (L2, lbfgs) on embeddings; the default learner.

    Between rounds the labels grow and new classes appear. With ``warm_start``
    the previous round's weights are the solver's starting point: each class
    keeps its row, a new class starts from a zero row, a vanished class is
    dropped. Near the optimum already, lbfgs needs far fewer iterations.

    One class only: nothing to learn, ``predict_proba`` is a column of ones.

    A scikit-learn estimator (``clone``, a ``Pipeline``'s last step, ``score``).

    Learned state: ``classes_`` (C,), ``coef_`` (C, d), ``intercept_`` (C,),
    always in multinomial form (a two-class model holds ``-w/2, +w/2``, which
    gives the same probabilities as sklearn's binary ``w``); ``n_iter_``,
    ``converged_`` and ``fit_seconds_`` of the last fit.

    ``fit``: O(n·d·C) per lbfgs iteration, O(n·C + d·C) memory beyond X (sklearn
    copies X only when it is not C-contiguous float32/float64).
    ``predict_proba``: O(n·d·C) time, O(chunk·C) temporary memory.

    ``n_threads`` caps the BLAS threads during fit and predict (None: leave BLAS
    as configured). One thread is the default because lbfgs makes many small
    BLAS calls on a (C·d)-long vector: with OpenBLAS threads on a busy machine
    they spin and wait, measured 10-50x slower than one thread on 2 shared cores.
    """

    def __init__(
        self,
        C: float = 10.0,
        max_iter: int = 300,
        warm_start: bool = True,
        tol: float = 1e-4,
        class_weight: dict | str | None = None,
        n_threads: int | None = 1,
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.tol = tol
        self.class_weight = class_weight
        self.n_threads = n_threads

    # -- training -------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> LinearHead:
        """Fit on ``X`` (n, d) and labels ``y`` (n,); warm-started from the last fit."""
        self._check_params()
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2:
            raise InputError(f"LinearHead.fit: X must be 2-d (n, d), got shape {X.shape}")
        n, d = X.shape
        if n == 0:
            raise InputError("LinearHead.fit: no labeled samples to train on; label some first")
        if y.shape != (n,):
            raise InputError(f"LinearHead.fit: {n} rows in X but y has shape {y.shape}")
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        classes = np.unique(y)
        started = time.perf_counter()
        if classes.size == 1:
            coef = np.zeros((1, d), dtype=np.float64)
            intercept = np.zeros(1, dtype=np.float64)
            n_iter, converged = 0, True
        else:
            model = LogisticRegression(
                C=self.C, max_iter=self.max_iter, tol=self.tol,
                class_weight=self.class_weight, solver="lbfgs",
            )
            init = self._warm_init(classes, d) if self.warm_start else None
            if init is not None:
                start_coef, start_intercept = init
                model.warm_start = True
                if classes.size == 2:  # sklearn's binary model has one row: w1 - w0
                    model.coef_ = (start_coef[1] - start_coef[0])[None, :]
                    model.intercept_ = np.array([start_intercept[1] - start_intercept[0]])
                else:
                    model.coef_ = start_coef
                    model.intercept_ = start_intercept
            with warnings.catch_warnings(), self._blas_threads():
                # Not converging within max_iter is reported by converged_, not a warning.
                warnings.simplefilter("ignore", ConvergenceWarning)
                # Early AL rounds have ~1 label per class; sklearn then guesses "regression".
                warnings.filterwarnings("ignore", message="The number of unique classes")
                model.fit(X, y)
            coef = np.asarray(model.coef_, dtype=np.float64)
            intercept = np.asarray(model.intercept_, dtype=np.float64)
            if classes.size == 2:
                coef = np.vstack([-coef[0] / 2, coef[0] / 2])
                intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
            n_iter = int(np.max(model.n_iter_))
            converged = n_iter < self.max_iter
        self.fit_seconds_ = time.perf_counter() - started
        self.classes_ = classes
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_features_in_ = d
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self

    def _warm_init(self, classes: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The last fit's weights re-ordered to ``classes``; None when there is none to use."""
        if getattr(self, "coef_", None) is None or self.n_features_in_ != d:
            return None
        previous = {c: i for i, c in enumerate(self.classes_.tolist())}
        coef = np.zeros((classes.size, d), dtype=np.float64)
        intercept = np.zeros(classes.size, dtype=np.float64)
        kept = np.zeros(classes.size, dtype=bool)
        for row, label in enumerate(classes.tolist()):
            old = previous.get(label)
            if old is not None:
                coef[row] = self.coef_[old]
                intercept[row] = self.intercept_[old]
                kept[row] = True
        if not kept.any():
            return None
        # Softmax is unchanged by a shift common to all rows. Centring the kept rows
        # (a no-op unless a class vanished) puts a new class's zero row at the
        # average class rather than above or below all of them.
        coef[kept] -= coef[kept].mean(axis=0)
        intercept[kept] -= intercept[kept].mean()
        return coef, intercept

    # -- prediction -----------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, C), columns in ``classes_`` order.

        float32 for float32/float16 input, float64 otherwise. Computed in chunks
        of rows, so a memory-mapped X is read once and never copied whole.
        """
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"LinearHead.predict_proba: X must have shape (n, "
                             f"{self.n_features_in_}), got {X.shape}")
        from longtail.learners.scorer import linear_proba

        # The same function scores a head loaded to predict only (`LinearScorer`).
        return linear_proba(X, self.coef_, self.intercept_, self.classes_.size,
                            self._blas_threads, chunk_rows=_CHUNK_ROWS)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class per row, (n,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- saving without pickle -------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"meta": JSON-serialisable dict, "arrays": {"coef": (C, d), "intercept": (C,)}}``.

        Save ``meta`` as JSON and ``arrays`` with ``numpy.savez``;
        ``LinearHead.from_state_dict`` rebuilds a learner that predicts identically
        and warm-starts from these weights.
        """
        self._check_fitted()
        meta = {
            "format": _FORMAT,
            "params": self.get_params(),
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str if self.classes_.dtype != object
            else "object",
            "n_features_in": int(self.n_features_in_),
            "n_iter": int(self.n_iter_),
            "converged": bool(self.converged_),
            "fit_seconds": float(self.fit_seconds_),
        }
        arrays = {"coef": self.coef_.copy(), "intercept": self.intercept_.copy()}
        return {"meta": meta, "arrays": arrays}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LinearHead:
        meta, arrays = state["meta"], state["arrays"]
        if meta.get("format") != _FORMAT:
            raise InputError(f"not a saved LinearHead (format {meta.get('format')!r}, "
                             f"expected {_FORMAT!r})")
        head = cls(**meta["params"])
        dtype = object if meta["classes_dtype"] == "object" else np.dtype(meta["classes_dtype"])
        head.classes_ = np.asarray(meta["classes"], dtype=dtype)
        head.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        head.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
        head.n_features_in_ = int(meta["n_features_in"])
        head.n_iter_ = int(meta["n_iter"])
        head.converged_ = bool(meta["converged"])
        head.fit_seconds_ = float(meta["fit_seconds"])
        c, d = head.classes_.size, head.n_features_in_
        if head.coef_.shape != (c, d) or head.intercept_.shape != (c,):
            raise InputError(f"saved LinearHead is inconsistent: {c} classes, {d} features, "
                             f"coef {head.coef_.shape}, intercept {head.intercept_.shape}")
        return head

    # -- scikit-learn conventions ---------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"C": self.C, "max_iter": self.max_iter, "warm_start": self.warm_start,
                "tol": self.tol, "class_weight": self.class_weight, "n_threads": self.n_threads}

    def set_params(self, **params: Any) -> LinearHead:
        for key, value in params.items():
            if key not in self.get_params():
                raise InputError(f"LinearHead has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"LinearHead({params})"

    def _check_params(self) -> None:
        if not (isinstance(self.C, numbers.Real) and self.C > 0):
            raise InputError(f"LinearHead: C must be a positive number, got {self.C!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter > 0):
            raise InputError(f"LinearHead: max_iter must be a positive integer, "
                             f"got {self.max_iter!r}")
        if not (isinstance(self.tol, numbers.Real) and self.tol > 0):
            raise InputError(f"LinearHead: tol must be a positive number, got {self.tol!r}")
        if self.n_threads is not None and not (isinstance(self.n_threads, numbers.Integral)
                                               and self.n_threads > 0):
            raise InputError(f"LinearHead: n_threads must be a positive integer or None, "
                             f"got {self.n_threads!r}")

    def _blas_threads(self):
        if self.n_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=self.n_threads, user_api="blas")

    def _check_fitted(self) -> None:
        if getattr(self, "coef_", None) is None:
            raise InputError("LinearHead is not trained yet: call fit (longtail train) first")
