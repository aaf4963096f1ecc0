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


#: Held-out rows scored each round at most (a seeded sample beyond that keeps each
#: round's scoring pass bounded on a pool of millions).
HELDOUT_MAX = 20_000


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
    eval_share: float = 0.1,
    eval_halfwidth: float = 0.03,
    heldout_max: int = HELDOUT_MAX,
    params: dict | None = None,
    on_round: Callable[[dict], None] | None = None,
) -> dict:
    """Run rounds of `batch` labels from 0 up to `budget` labels paid, as `query` would.

    `truth[row]` is the oracle's label of each row (object array over all rows).
    Each batch is split by the policy `query` uses (`longtail.loop.policy.split_batch`:
    no eval labels before a model, then eval labels by need up to `eval_share`, a
    control slice of `control_share`); eval rows are labeled by the oracle and never
    trained on. Scores each round's model on the held-out truth: the rows of
    `pool_rows` and `eval_rows` the run never labeled (a seeded sample of at most
    `heldout_max` of them, fixed at the start); and on `test` (X, y) when given.
    Returns the curve: per round the training labels, labels paid (training and eval),
    held-out accuracy and its n, managed-eval accuracy and its n, test accuracy and
    its n, the arm auto chose, the pool's class imbalance as auto saw it (None for
    other strategies and before a model), and query seconds. Memory: the candidates'
    probabilities, O(pool·C).
    """
    from longtail.evaluation.budget import eval_need, wilson_halfwidth
    from longtail.evaluation.metrics import proportion_interval
    from longtail.loop.policy import PastBatch, split_batch

    rng = np.random.default_rng(seed)
    pool_rows = np.asarray(pool_rows, dtype=np.int64)
    eval_rows = np.asarray(eval_rows if eval_rows is not None else [], dtype=np.int64)
    everything = np.union1d(pool_rows, eval_rows)
    heldout = (everything if len(everything) <= heldout_max else np.sort(
        np.random.default_rng([seed, 1]).choice(everything, heldout_max, replace=False)))
    model = make_learner(learner, **(learner_params or {}))
    labeled: list[int] = []
    eval_labeled: list[int] = []
    past: list[PastBatch] = []
    state: dict = {}
    history: list[dict] = []
    curve: dict[str, list] = {"n_labels": [], "labels_paid": [], "heldout_accuracy": [],
                              "heldout_n": [], "eval_accuracy": [], "eval_labels": [],
                              "test_accuracy": [], "test_n": [], "arm": [],
                              "class_imbalance": [], "query_seconds": []}
    trained = False
    metric_prev: float | None = None
    halfwidth: float | None = None
    paid = 0
    while paid < budget:
        k = min(batch, budget - paid)
        taken = np.asarray(labeled, dtype=np.int64)
        candidates = np.setdiff1d(pool_rows, taken, assume_unique=True)
        pending = np.setdiff1d(eval_rows, np.asarray(eval_labeled, np.int64), assume_unique=True)
        if len(candidates) == 0 and len(pending) == 0:
            break
        eval_classes = {str(truth[r]) for r in eval_labeled}
        train_classes = {str(truth[r]) for r in labeled}
        need = eval_need(labeled=len(eval_labeled), pending=len(pending), accuracy=metric_prev,
                         halfwidth=halfwidth, target=eval_halfwidth, has_model=trained,
                         new_classes=sorted(train_classes - eval_classes) if eval_labeled
                         else (), pool=len(pool_rows), paid=paid + k,
                         max_share=eval_share)
        n_eval, n_control = split_batch(k, need, eval_share=eval_share,
                                        control_share=control_share, past=past)
        t0 = time.perf_counter()
        plan = plan_batch(
            k, candidates, rng=rng, strategy=strategy, vectors=vectors,
            probs_for=(lambda rows: predict_rows(model, vectors, rows)) if trained else None,
            classes=np.asarray(model.classes_) if trained else None,
            labeled_rows=taken, labeled_y=truth[taken] if len(taken) else None,
            pending_eval=pending, eval_share=eval_share, control_share=control_share,
            params=params, state=state, history=history, n_eval=n_eval, n_control=n_control,
        )
        seconds = time.perf_counter() - t0
        new_train = np.concatenate([plan.rows_of("control"), plan.rows_of("selected")])
        new_eval = plan.rows_of("eval")
        past.append(PastBatch(size=len(plan.rows), eval=len(new_eval),
                              control=len(plan.rows_of("control")),
                              eval_requested=need.request > 0, control_on=control_share > 0))
        paid += len(plan.rows)
        before = len(labeled)
        labeled += [int(r) for r in new_train]
        eval_labeled += [int(r) for r in new_eval]
        if not labeled:
            continue
        rows = np.asarray(labeled, dtype=np.int64)
        model.fit(vectors.read(rows), truth[rows])
        trained = True
        ev = np.asarray(eval_labeled, dtype=np.int64)
        metric = _accuracy(model, vectors.read(ev), truth[ev]) if len(ev) else None
        if metric is not None:
            # As `status` reads it: Clopper-Pearson's half-width, Wilson's as a floor.
            lo, hi = proportion_interval(int(round(metric * len(ev))), len(ev))
            halfwidth = max(float(hi - lo) / 2, wilson_halfwidth(metric, len(ev)))
        arm = plan.log.get("selection", {}).get("arm", strategy)
        imbalance = plan.log.get("selection", {}).get("class_imbalance")
        history.append({"arm": arm, "n_labels_before": before, "n_labels_after": len(labeled),
                        "metric_before": metric_prev, "metric_after": metric})
        metric_prev = metric
        unseen = np.setdiff1d(heldout, np.concatenate([rows, ev]))
        held = _accuracy(model, vectors.read(unseen), truth[unseen]) if len(unseen) else None
        test_acc = _accuracy(model, *test) if test is not None else None
        for key, value in (("n_labels", len(labeled)), ("labels_paid", paid),
                           ("heldout_accuracy", held), ("heldout_n", int(len(unseen))),
                           ("eval_accuracy", metric), ("eval_labels", len(ev)),
                           ("test_accuracy", test_acc),
                           ("test_n", int(len(test[1])) if test is not None else None),
                           ("arm", arm), ("class_imbalance", imbalance),
                           ("query_seconds", seconds)):
            curve[key].append(value)
        if on_round:
            on_round({key: values[-1] for key, values in curve.items()})
    return curve
