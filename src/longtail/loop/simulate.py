"""Simulation and backtest: the whole loop with an oracle that answers from known labels."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from longtail.learners import make_learner
from longtail.loop.round import plan_batch


def predict_rows(model: Any, vectors: Any, rows: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Class probabilities (len(rows), C) float32 for `rows` of a vector reader, streamed
    `chunk` rows at a time."""
    parts = [model.predict_proba(X) for _, X in vectors.iter_chunks(rows, chunk)]
    return (np.concatenate(parts).astype(np.float32, copy=False) if parts
            else np.empty((0, len(model.classes_)), np.float32))


def _accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    proba = model.predict_proba(X)
    return float(np.mean(np.asarray(model.classes_)[proba.argmax(1)] == y))


def simulate_run(
    vectors: Any,
    pool_rows: np.ndarray,
    truth: np.ndarray,
    *,
    strategy: str = "auto",
    batch: int = 100,
    budget: int = 1000,
    seed: int = 0,
    learner: str = "linear",
    learner_params: dict | None = None,
    eval_rows: np.ndarray | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    control_share: float = 0.0,
    eval_share: float = 0.2,
    params: dict | None = None,
    on_round: Callable[[dict], None] | None = None,
) -> dict:
    """Run rounds of `batch` from 0 labels up to `budget` training labels.

    `truth[row]` is the oracle's label of each row (object array over all rows).
    Eval rows are labeled by the oracle as `query` would label them (up to
    `eval_share` of each batch) and never trained on; `test`, when given, is an
    external labeled set (X, y). Returns the learning curve: per round the number of
    training labels, managed-eval accuracy, test accuracy, the arm auto chose, and
    query seconds. Memory: the candidates' probabilities, O(pool·C).
    """
    rng = np.random.default_rng(seed)
    pool_rows = np.asarray(pool_rows, dtype=np.int64)
    eval_rows = np.asarray(eval_rows if eval_rows is not None else [], dtype=np.int64)
    model = make_learner(learner, **(learner_params or {}))
    labeled: list[int] = []
    eval_labeled: list[int] = []
    state: dict = {}
    history: list[dict] = []
    curve: dict[str, list] = {"n_labels": [], "eval_accuracy": [], "eval_labels": [],
                              "test_accuracy": [], "arm": [], "query_seconds": []}
    trained = False
    metric_prev: float | None = None
    while len(labeled) < budget:
        k = min(batch, budget - len(labeled))
        taken = np.asarray(labeled, dtype=np.int64)
        candidates = np.setdiff1d(pool_rows, taken, assume_unique=True)
        if len(candidates) == 0:
            break
        pending = np.setdiff1d(eval_rows, np.asarray(eval_labeled, np.int64), assume_unique=True)
        t0 = time.perf_counter()
        plan = plan_batch(
            k, candidates, rng=rng, eval_on_top=True,
            strategy=strategy, vectors=vectors,
            probs_for=(lambda rows: predict_rows(model, vectors, rows)) if trained else None,
            classes=np.asarray(model.classes_) if trained else None,
            labeled_rows=taken, labeled_y=truth[taken] if len(taken) else None,
            pending_eval=pending, eval_share=eval_share, control_share=control_share,
            params=params, state=state, history=history,
        )
        seconds = time.perf_counter() - t0
        new_train = np.concatenate([plan.rows_of("control"), plan.rows_of("selected")])
        before = len(labeled)
        labeled += [int(r) for r in new_train]
        eval_labeled += [int(r) for r in plan.rows_of("eval")]
        rows = np.asarray(labeled, dtype=np.int64)
        model.fit(vectors.read(rows), truth[rows])
        trained = True
        ev = np.asarray(eval_labeled, dtype=np.int64)
        metric = _accuracy(model, vectors.read(ev), truth[ev]) if len(ev) else None
        arm = plan.log.get("selection", {}).get("arm", strategy)
        history.append({"arm": arm, "n_labels_before": before, "n_labels_after": len(labeled),
                        "metric_before": metric_prev, "metric_after": metric})
        metric_prev = metric
        test_acc = _accuracy(model, *test) if test is not None else None
        for key, value in (("n_labels", len(labeled)), ("eval_accuracy", metric),
                           ("eval_labels", len(ev)), ("test_accuracy", test_acc), ("arm", arm),
                           ("query_seconds", seconds)):
            curve[key].append(value)
        if on_round:
            on_round({key: values[-1] for key, values in curve.items()})
    return curve
