"""The batch policy: how many rows of a batch go to the eval set and to the control
slice. One pure function, used by `query` (engine/rounds.py) and by `simulate`
(loop/simulate.py), so a backtest spends eval labels exactly as a real run does.

The eval need itself (`longtail.evaluation.budget.eval_need`) says how many eval
labels the target interval wants; the shares are running allowances over the
earlier batches that wanted them (`longtail.evaluation.budget.allowance`), so tiny
batches stay fair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from longtail.evaluation.budget import EvalNeed, allowance

__all__ = ["PastBatch", "split_batch"]


@dataclass(frozen=True)
class PastBatch:
    """What one earlier (not cancelled) batch spent: its size, its eval and control
    rows, whether it asked for eval rows and whether a control share was on."""

    size: int
    eval: int
    control: int
    eval_requested: bool
    control_on: bool


def split_batch(k: int, need: EvalNeed, *, eval_share: float, control_share: float,
                past: Sequence[PastBatch]) -> tuple[int, int]:
    """(eval rows, control rows) of a batch of `k`.

    need : this batch's eval need (``need.request`` caps the eval rows).
    eval_share : the most of a batch the eval set may take (running allowance over the
        batches that asked for eval rows; one before any model, or with the eval target
        met, neither spends nor owes).
    control_share : this round's control share, of the non-eval rows.
    O(len(past)).
    """
    spent_eval = before = spent_control = before_rest = 0
    for b in past:
        if b.eval_requested:
            spent_eval += b.eval
            before += b.size
        if b.control_on:
            spent_control += b.control
            before_rest += b.size - b.eval
    n_eval = min(need.request, allowance(eval_share, k, spent_eval, before))
    n_control = allowance(control_share, k - n_eval, spent_control, before_rest)
    return int(n_eval), int(n_control)
