"""Observed labeling time, trimmed of idle time, and the money it cost.

Seconds per answer arrive from every path (a `seconds` column in `import-labels`, the
service's answers, Label Studio's `lead_time`). A recorded time also holds whatever the
annotator did between opening and answering: a task left open over lunch is not
labeling time. Trimming rule (documented for users in the README):

    cap = max(CAP_FLOOR_SECONDS, CAP_MEDIANS × median of the project's timed answers)

and each answer counts min(seconds, cap); the setting `cost_seconds_cap` replaces the
rule with a fixed cap. A median-based cap follows the annotators' own pace (a 5-second
crowd task and a 3-minute expert review both keep their real spread) while a
90-minute gap counts as `cap`. Answers without a time are imputed with the median
trimmed time of their pool's timed answers (of all timed answers when the pool has
none), and counted as imputed, so nothing silently costs zero.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CAP_FLOOR_SECONDS", "CAP_MEDIANS", "idle_cap", "trim", "impute", "money"]

CAP_FLOOR_SECONDS = 60.0
CAP_MEDIANS = 5.0


def idle_cap(seconds: np.ndarray, fixed: float | None = None) -> float:
    """The cap on one answer's seconds: `fixed` when given, else max(60, 5 × median of
    the finite entries of `seconds`); 60 when there are none. O(n)."""
    if fixed is not None:
        return float(fixed)
    s = np.asarray(seconds, dtype=float)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return CAP_FLOOR_SECONDS
    return float(max(CAP_FLOOR_SECONDS, CAP_MEDIANS * float(np.median(s))))


def trim(seconds: np.ndarray, cap: float) -> np.ndarray:
    """min(seconds, cap) elementwise; NaN (no time recorded) stays NaN. (n,) -> (n,)."""
    s = np.asarray(seconds, dtype=float)
    return np.where(np.isfinite(s), np.minimum(s, cap), np.nan)


def impute(seconds: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN entries of `seconds` with the median of their group's finite entries,
    or of all finite entries when the group has none (0 when nothing is timed).

    Returns (filled (n,), imputed mask (n,) bool). O(n log n)."""
    s = np.asarray(seconds, dtype=float).copy()
    missing = ~np.isfinite(s)
    if not missing.any():
        return s, missing
    finite = s[~missing]
    overall = float(np.median(finite)) if len(finite) else 0.0
    groups = np.asarray(groups, dtype=object)
    for g in set(groups[missing].tolist()):
        in_g = groups == g
        timed = s[in_g & ~missing]
        s[in_g & missing] = float(np.median(timed)) if len(timed) else overall
    return s, missing


def money(seconds: np.ndarray, rate_per_hour: np.ndarray) -> np.ndarray:
    """Money of each answer: seconds / 3600 × its pool's hourly rate (NaN rate: NaN)."""
    return np.asarray(seconds, dtype=float) / 3600.0 * np.asarray(rate_per_hour, dtype=float)


def finite_sum(values: np.ndarray) -> float:
    """Sum of the finite entries (0.0 when none)."""
    v = np.asarray(values, dtype=float)
    total = float(v[np.isfinite(v)].sum())
    return 0.0 if math.isnan(total) else total
