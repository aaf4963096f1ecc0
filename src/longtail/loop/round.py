"""One round's batch: pending eval labels first, a random control slice, then the
strategy's picks. Pure: arrays in, a plan out; the project writes it to the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.errors import EmptyPoolError, InputError
from longtail.evaluation.evalset import eval_fill
from longtail.strategies import STRATEGIES, select


@dataclass
class BatchPlan:
    """Rows to label, in order, each with its kind: "eval", "control" or "selected"."""

    rows: np.ndarray
    kinds: list[str]
    log: dict[str, Any] = field(default_factory=dict)

    def rows_of(self, kind: str) -> np.ndarray:
        mask = np.array([k == kind for k in self.kinds], dtype=bool)
        return self.rows[mask] if len(mask) else self.rows[:0]


def plan_batch(
    k: int,
    candidates: np.ndarray,
    *,
    rng: np.random.Generator,
    strategy: str = "auto",
    vectors: Any = None,
    probs_for: Callable[[np.ndarray], np.ndarray] | None = None,
    classes: np.ndarray | None = None,
    labeled_rows: np.ndarray | None = None,
    labeled_y: np.ndarray | None = None,
    committee_for: Callable[[np.ndarray], np.ndarray] | None = None,
    pending_eval: np.ndarray | None = None,
    eval_share: float = 0.2,
    control_share: float = 0.1,
    params: dict | None = None,
    state: dict | None = None,
    history: list[dict] | None = None,
    n_eval: int | None = None,
    n_control: int | None = None,
    probs_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> BatchPlan:
    """Plan a batch of `k` rows.

    `candidates` (int64) must already exclude labeled, queued and eval rows. Up to
    `eval_share`·k pending eval rows come first (the eval set is labeled first); then
    `control_share` of the rest is a uniform random draw from the candidates (the
    control arm that measures lift over random); the strategy picks the remainder from
    the other candidates. `probs_for(rows)` gives the model's probabilities, or is None
    before any model exists. `n_eval` and
    `n_control`, when given, are the caller's counts for those slices (the engine's
    split by need, `longtail.evaluation.budget`), clipped to what is available.
    `probs_of(X)`, the model's probabilities of vectors, lets a pool too large to score
    whole go through cluster-level candidates first (`strategies.candidates.narrow`).
    Memory: O(len(candidates)·C) for the probabilities.
    """
    if k <= 0:
        raise InputError(f"budget must be a positive number of samples, got {k}")
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose one of: "
                         f"{', '.join(sorted(STRATEGIES))}")
    candidates = np.asarray(candidates, dtype=np.int64)
    pending_eval = np.asarray(pending_eval if pending_eval is not None else [], dtype=np.int64)
    if len(candidates) == 0 and len(pending_eval) == 0:
        raise EmptyPoolError("nothing left to select: every pool sample is labeled or queued")
    n_eval = (eval_fill(len(pending_eval), k, eval_share) if n_eval is None
              else int(max(0, min(n_eval, len(pending_eval), k))))
    # A uniform draw, not row order: files often arrive sorted (by class, by time), and
    # the labeled part of the eval set must stay a random sample of it.
    eval_rows = (rng.choice(pending_eval, size=n_eval, replace=False).astype(np.int64)
                 if n_eval else np.empty(0, np.int64))
    rest = min(k - n_eval, len(candidates))
    if n_control is None:
        n_control = int(round(control_share * rest)) if control_share > 0 else 0
    n_control = int(max(0, min(n_control, rest - 1 if rest > 1 else rest)))
    control = (rng.choice(candidates, size=n_control, replace=False).astype(np.int64)
               if n_control else np.empty(0, np.int64))
    remaining = np.setdiff1d(candidates, control, assume_unique=True) if n_control else candidates
    n_select = rest - n_control
    log: dict[str, Any] = {"strategy": strategy, "eval": int(n_eval), "control": int(n_control)}
    selected = np.empty(0, np.int64)
    if n_select > 0 and len(remaining) and probs_of is not None and probs_for is not None:
        from longtail.strategies.candidates import narrow

        narrowed = narrow(strategy, remaining, n_select, rng=rng, vectors=vectors,
                          probs_of=probs_of, state=state, labeled_rows=labeled_rows,
                          params=params)
        remaining = narrowed.rows
        params = narrowed.params if narrowed.params is not None else params
        if narrowed.log is not None:
            log["candidates"] = {**narrowed.log, "indexes": narrowed.indexes.records}
    if n_select > 0 and len(remaining):
        needs = STRATEGIES[strategy].needs
        probs = probs_for(remaining) if (probs_for is not None and needs & {"probs", "committee"}
                                         or strategy == "auto" and probs_for is not None) else None
        committee = (committee_for(remaining) if committee_for is not None
                     and "committee" in needs and probs is not None else None)
        sel = select(
            strategy, n_select, remaining, rng=rng, vectors=vectors, probs=probs,
            classes=classes, labeled_rows=labeled_rows, labeled_y=labeled_y,
            committee_probs=committee, params=params, state=state, history=history,
        )
        selected = np.asarray(sel.rows, dtype=np.int64)
        log["selection"] = sel.log
    rows = np.concatenate([eval_rows, control, selected])
    kinds = ["eval"] * len(eval_rows) + ["control"] * len(control) + ["selected"] * len(selected)
    return BatchPlan(rows=rows, kinds=kinds, log=log)
