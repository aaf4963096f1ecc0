"""How a labeling batch is split: eval labels only as the target interval needs them,
control labels only while the lift is unsettled, the rest for the strategy.

Pure functions of counts and figures; the engine reads them off the catalog.

Eval by need: the managed eval set is a uniform sample of the stream, assigned at
ingest; its rows are *labeled* only as fast as the headline metric needs. With a
target half-width ``h`` (a setting, default 0.03: ±3 points), accuracy ``p`` and
``z = 1.96``, a uniform sample of ``n* = z²·p(1−p)/h²`` labels gives a 95% interval
about ``±h`` wide (``p`` is the latest measured accuracy, or 0.5 — the widest — before
any). Labels are requested while the measured interval is wider than ``h``, and again
when a class appears that the labeled eval set lacks or when the pool has grown past
``regrow`` times its size when the target was last met (new data may differ from the
old). Before the first model there is nothing to evaluate, so the first batch goes
to selection whole.

A cap on the eval share (the precision schedule): while the target is unmet, the
labeled eval set holds at most the project's ``eval_share`` (default
``EVAL_MAX_SHARE``, 0.1) of every label paid so far (eval and training). Eval labels
are uniform draws, not selected ones, so each one spent while the curve climbs costs
the model a selected label; the cap buys a wider interval early (with ``n`` eval
labels at most ``0.1·paid``, ``±z·sd/√n``) that tightens as labels grow, until the
target is met. The reason (``status``, the round log) says which precision was bought
and why. The share was chosen on digits and digits-LT through the product path
(README, product_path).

Tiny batches: shares are kept as running allowances (``allowance``), so five
``query -n 1`` give one row to eval rather than five, or none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
REGROW = 1.25
EVAL_MAX_SHARE = 0.1  # of all labels paid, while the target is unmet: the eval_share default


def eval_sample_size(accuracy: float | None, halfwidth: float, z: float = Z95) -> int:
    """Labeled eval samples for a ``±halfwidth`` interval at accuracy ``accuracy``
    (None: the worst case, 0.5). O(1)."""
    if not 0.0 < halfwidth < 1.0:
        raise ValueError(f"halfwidth must be in (0, 1), got {halfwidth}")
    p = 0.5 if accuracy is None else min(max(float(accuracy), 0.02), 0.98)
    return int(math.ceil(z * z * p * (1.0 - p) / (halfwidth * halfwidth)))


def wilson_halfwidth(accuracy: float, n: int, z: float = Z95) -> float:
    """Half-width of the Wilson score interval of a proportion ``accuracy`` on ``n``
    samples: unlike a bootstrap it does not collapse to 0 when every sample is right
    (20 correct of 20 gives ±0.08, not ±0). O(1)."""
    if n <= 0:
        return 0.5
    p = min(max(float(accuracy), 0.0), 1.0)
    return float(z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n))


@dataclass(frozen=True)
class EvalNeed:
    """Whether this batch asks for eval labels, how many at most, and why."""

    target: float
    halfwidth: float | None  # the latest measured 95% half-width of accuracy
    labeled: int
    pending: int
    wanted: int  # labeled eval samples the target needs at the current accuracy
    request: int  # the most eval rows this batch may take (0: none)
    reason: str
    estimator: str = "uniform"  # whose interval `halfwidth` is (engine/estimates.py)
    estimate_note: str = ""  # e.g. the small-n fallback, power tuning

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def eval_need(*, labeled: int, pending: int, accuracy: float | None,
              halfwidth: float | None, target: float, has_model: bool,
              new_classes: Sequence[str] = (), pool: int = 0,
              pool_when_met: int | None = None, regrow: float = REGROW,
              estimator: str = "uniform", sd1: float | None = None,
              estimate_note: str = "", paid: int | None = None,
              max_share: float = EVAL_MAX_SHARE) -> EvalNeed:
    """The eval labels this batch needs.

    labeled, pending : labeled and not-yet-labeled eval rows. accuracy, halfwidth : the
    latest model's managed-eval accuracy and its interval's half-width (None before
    any). has_model : whether a model exists to evaluate. new_classes : classes in the
    labeled pool that the labeled eval set lacks. pool, pool_when_met : the pool's size
    now and when the target was last met. estimator, sd1, estimate_note : whose interval
    ``halfwidth`` is and its sd per label (``(z·sd1/target)²`` labels meet the target;
    None: the uniform formula at ``accuracy``). paid, max_share : every label paid so
    far (eval included; with the batch being planned, when there is one) and the most of
    it the eval set may hold while the target is unmet (None or a share ≥ 1: no cap).
    """
    wanted = eval_sample_size(accuracy, target)
    if sd1 is not None and math.isfinite(sd1) and sd1 > 0:
        wanted = int(math.ceil((Z95 * sd1 / target) ** 2))

    def need(request: int, reason: str) -> EvalNeed:
        if request > 0 and paid is not None and max_share < 1:
            room = int(math.floor(max_share * paid + 1e-9)) - labeled
            if room < request:
                shown = f"±{100 * halfwidth:.1f} points" if halfwidth is not None else \
                    "no interval yet"
                reason = (f"{reason}; capped at {100 * max_share:g}% of the {paid} labels "
                          f"paid while the target is unmet ({shown} on {labeled} eval labels "
                          f"bought so far)")
                request = max(room, 0)
        return EvalNeed(target, halfwidth, labeled, pending, wanted,
                        int(max(0, min(request, pending))), reason, estimator, estimate_note)

    if pending == 0:
        return need(0, "no eval rows wait for a label (the eval split grows with new data)")
    if not has_model:
        return need(0, "no model yet: the first labels go to selection, eval labels follow")
    if new_classes:
        shown = ", ".join(sorted(new_classes)[:5])
        return need(max(wanted - labeled, len(new_classes), 1),
                    f"class(es) {shown} have no labeled eval sample yet")
    grown = pool_when_met is not None and pool > regrow * pool_when_met
    if grown:
        return need(max(wanted - labeled, int(math.ceil(0.1 * labeled)), 1),
                    f"the pool grew from {pool_when_met} to {pool} since the target was met")
    if halfwidth is not None and halfwidth <= target:
        return need(0, f"target met: ±{100 * halfwidth:.1f} points ≤ ±{100 * target:.1f} "
                       f"({estimator} estimate on {labeled} eval labels)")
    if halfwidth is None:
        return need(max(wanted - labeled, 1),
                    f"no interval yet: about {wanted} labeled eval samples give ±{100 * target:.1f}")
    return need(max(wanted - labeled, 1),
                f"±{100 * halfwidth:.1f} points > ±{100 * target:.1f}: about "
                f"{max(wanted - labeled, 1)} more eval labels wanted")


def allowance(share: float, batch: int, spent_before: int, batches_before: int) -> int:
    """Rows of a ``share`` this batch may take so the share holds over all batches:
    ``floor(share·(batches_before + batch)) − spent_before``, never more than
    ``ceil(share·batch)`` (a share unspent for a while does not come due at once), in
    [0, batch − 1] when the batch has more than one row (the strategy always gets a
    row) and in [0, 1] for a batch of one. O(1)."""
    if share <= 0 or batch <= 0:
        return 0
    room = batch - 1 if batch > 1 else 1
    due = math.floor(share * (batches_before + batch) + 1e-9) - spent_before
    return int(max(0, min(due, math.ceil(share * batch - 1e-9), room)))
