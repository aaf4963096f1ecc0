"""The unlabeled pool at work: pseudo-labels for training, never stored as labels.

Two ways, both pure functions on arrays, both returning which unlabeled rows to add
with which class:

- ``self_training``: the model trained on the human labels predicts the unlabeled
  sample; per class, the rows it predicts most confidently are kept, at most ``ratio``
  times that class's human labels (class-balanced, so a class the model over-predicts
  does not swamp the rest: the usual failure of confidence thresholds), and only those
  whose confidence is at least ``min_confidence``.
- ``propagation``: label spreading over a k-nearest-neighbour graph of the labeled and
  unlabeled vectors (scikit-learn's ``LabelSpreading``, ``knn`` kernel, sparse: O(n·k)),
  then the same class-balanced choice on the spread distributions.
- ``agreement``: self-training's choice among the rows where the model and label
  spreading predict the same class (two views that err differently: the model's
  features and the raw vectors' neighbourhoods).

Both work on a seeded sample of at most ``max_unlabeled`` pool rows, so the cost is
bounded whatever the pool size. The caller trains on human ∪ pseudo; pseudo-labels are
counted apart and never written to the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from longtail.errors import InputError

METHODS = ("off", "self-training", "propagation", "agreement")


@dataclass(frozen=True)
class PseudoLabels:
    """``positions`` into the unlabeled array given, their ``labels`` and confidence."""

    positions: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    method: str

    def __len__(self) -> int:
        return int(len(self.positions))


def _balanced_pick(probs: np.ndarray, classes: np.ndarray, y_lab: np.ndarray, ratio: float,
                   min_confidence: float, method: str) -> PseudoLabels:
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    keep: list[np.ndarray] = []
    for k, cls in enumerate(classes):
        cap = int(np.floor(ratio * int(np.sum(y_lab == cls))))
        rows = np.flatnonzero((pred == k) & (conf >= min_confidence))
        if cap <= 0 or not len(rows):
            continue
        keep.append(rows[np.argsort(-conf[rows], kind="stable")[:cap]])
    pos = np.sort(np.concatenate(keep)) if keep else np.empty(0, np.int64)
    return PseudoLabels(pos.astype(np.int64), np.asarray(classes)[pred[pos]], conf[pos], method)


def self_training(predict_proba: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
                  y_lab: np.ndarray, X_unlab: np.ndarray, *, ratio: float = 1.0,
                  min_confidence: float = 0.0) -> PseudoLabels:
    """Class-balanced confident predictions of a model trained on the human labels
    (``predict_proba`` with columns in ``classes`` order). O(n·C)."""
    if len(X_unlab) == 0:
        return PseudoLabels(np.empty(0, np.int64), np.empty(0, object), np.empty(0), "self-training")
    return _balanced_pick(np.asarray(predict_proba(X_unlab)), np.asarray(classes),
                          np.asarray(y_lab), ratio, min_confidence, "self-training")


def spread(X_lab: np.ndarray, y_lab: np.ndarray, X_unlab: np.ndarray, *, k: int = 10,
           alpha: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(classes, label distributions of the unlabeled rows (n_unlab, C)) by label
    spreading over the kNN graph of labeled ∪ unlabeled (cosine on normalised vectors).
    O((n_lab + n_unlab)·k) memory."""
    from sklearn.semi_supervised import LabelSpreading

    classes, y_idx = np.unique(np.asarray(y_lab), return_inverse=True)
    X = np.concatenate([X_lab, X_unlab]).astype(np.float32)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    target = np.concatenate([y_idx, np.full(len(X_unlab), -1)])
    model = LabelSpreading(kernel="knn", n_neighbors=int(min(k, len(X) - 1)), alpha=alpha,
                           max_iter=50)
    model.fit(X, target)
    dist = np.asarray(model.label_distributions_[len(X_lab):])
    return classes, np.nan_to_num(dist, nan=1.0 / len(classes))


def propagation(X_lab: np.ndarray, y_lab: np.ndarray, X_unlab: np.ndarray, *,
                ratio: float = 1.0, min_confidence: float = 0.0, k: int = 10,
                alpha: float = 0.2) -> PseudoLabels:
    """Label spreading (`spread`), then the class-balanced choice."""
    if len(X_unlab) == 0:
        return PseudoLabels(np.empty(0, np.int64), np.empty(0, object), np.empty(0), "propagation")
    classes, dist = spread(X_lab, y_lab, X_unlab, k=k, alpha=alpha)
    return _balanced_pick(dist, classes, np.asarray(y_lab), ratio, min_confidence,
                          "propagation")


def agreement(predict_proba: Callable[[np.ndarray], np.ndarray], classes: np.ndarray,
              X_lab: np.ndarray, y_lab: np.ndarray, X_unlab: np.ndarray, *,
              ratio: float = 1.0, min_confidence: float = 0.0) -> PseudoLabels:
    """The class-balanced choice on the model's probabilities, among the rows whose
    label-spreading class is the model's. O(n·C) plus `spread`."""
    if len(X_unlab) == 0:
        return PseudoLabels(np.empty(0, np.int64), np.empty(0, object), np.empty(0), "agreement")
    classes = np.asarray(classes)
    probs = np.asarray(predict_proba(X_unlab), dtype=np.float64).copy()
    spread_classes, dist = spread(X_lab, y_lab, X_unlab)
    col = {str(c): j for j, c in enumerate(classes)}
    spread_pred = np.array([col.get(str(c), -1) for c in spread_classes])[dist.argmax(1)]
    probs[spread_pred != probs.argmax(1)] = 0.0  # disagreeing rows: never picked
    return _balanced_pick(probs, classes, np.asarray(y_lab), ratio,
                          max(min_confidence, 1e-12), "agreement")


def pseudo_labels(method: str, *, predict_proba: Callable[[np.ndarray], np.ndarray] | None,
                  classes: np.ndarray, X_lab: np.ndarray, y_lab: np.ndarray,
                  X_unlab: np.ndarray, ratio: float = 1.0,
                  min_confidence: float = 0.0) -> PseudoLabels:
    """Dispatch on ``method`` (one of METHODS; "off" gives none)."""
    if method not in METHODS:
        raise InputError(f"pseudo_labels must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "off":
        return PseudoLabels(np.empty(0, np.int64), np.empty(0, object), np.empty(0), "off")
    if method == "self-training":
        if predict_proba is None:
            raise InputError("self-training needs a trained model")
        return self_training(predict_proba, classes, y_lab, X_unlab, ratio=ratio,
                             min_confidence=min_confidence)
    if method == "agreement":
        if predict_proba is None:
            raise InputError("agreement needs a trained model")
        return agreement(predict_proba, classes, X_lab, y_lab, X_unlab, ratio=ratio,
                         min_confidence=min_confidence)
    return propagation(X_lab, y_lab, X_unlab, ratio=ratio, min_confidence=min_confidence)
