"""What an eval set of a given size can resolve, and what a larger eval rate would cost.

±5 points at 90% accuracy needs about 140 eval labels, ±3 about 385: more than a
small pool can spare at the default 5% eval rate (a 178-row pool gets 9 eval rows).
`eval_resolution` says so in numbers, for `init`, `status` and the small-eval warning.
Pure arithmetic (no scipy), so `status` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from longtail.evaluation.budget import eval_sample_size, wilson_halfwidth

__all__ = ["EvalResolution", "eval_resolution", "pool_needed"]

#: The accuracy assumed before any is measured (a ±h interval is widest at 0.5, but a
#: working classifier sits near here, and this is what the README's examples use).
ASSUMED_ACCURACY = 0.9


@dataclass(frozen=True)
class EvalResolution:
    """eval_rows : rows in the eval split; resolves : the 95% half-width they give at
    `accuracy` (Wilson, about); target : the wanted half-width; wanted : eval labels the
    target needs; enough : eval_rows >= wanted; rate_needed : the eval rate that would
    give `wanted` rows of this project (> 1: more than the whole project);
    extra_labels : eval labels beyond the split's rows that would take (labels not spent
    on training)."""

    eval_rows: int
    accuracy: float
    resolves: float
    target: float
    wanted: int
    enough: bool
    rate_needed: float
    extra_labels: int

    def to_dict(self) -> dict:
        return {**self.__dict__, "text": self.text()}

    def text(self) -> str:
        """One sentence for people."""
        head = (f"the eval split holds {self.eval_rows} rows: at {100 * self.accuracy:.0f}% "
                f"accuracy they resolve about ±{100 * self.resolves:.1f} points")
        if self.enough:
            return head + f", within the ±{100 * self.target:.1f} target"
        if self.rate_needed > 1:
            return (head + f"; ±{100 * self.target:.1f} needs about {self.wanted} eval labels, "
                    "more than the whole project: figures on every labeled row, cross-fitted, "
                    "stand beside the eval set's")
        return (head + f"; ±{100 * self.target:.1f} needs about {self.wanted}: an eval rate of "
                f"{100 * self.rate_needed:.0f}% (`init --eval-rate`) would give them, "
                f"{self.extra_labels} more labels kept from training")


def eval_resolution(eval_rows: int, total_rows: int, *, target: float,
                    accuracy: float | None = None) -> EvalResolution:
    """What `eval_rows` eval rows (of `total_rows` in the project) resolve at `accuracy`
    (default 0.9), against the ``±target`` half-width. O(1)."""
    p = ASSUMED_ACCURACY if accuracy is None else min(max(float(accuracy), 0.02), 0.98)
    wanted = eval_sample_size(p, target)
    resolves = wilson_halfwidth(p, eval_rows) if eval_rows > 0 else 0.5
    rate = wanted / total_rows if total_rows > 0 else math.inf
    return EvalResolution(int(eval_rows), p, float(resolves), float(target), int(wanted),
                          eval_rows >= wanted, float(rate), int(max(0, wanted - eval_rows)))


def pool_needed(eval_rate: float, target: float, accuracy: float | None = None) -> int | None:
    """Rows a project needs for its eval split, at `eval_rate`, to reach ``±target``
    (None when the rate is 0). O(1)."""
    if eval_rate <= 0:
        return None
    p = ASSUMED_ACCURACY if accuracy is None else accuracy
    return int(math.ceil(eval_sample_size(p, target) / eval_rate))
