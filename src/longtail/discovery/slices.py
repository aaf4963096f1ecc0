"""Rank groups of the pool (clusters, metadata values) by how badly the model does there
and how little of them is labeled.

The error of a slice is prediction-powered (Angelopoulos et al., 2023, with lambda = 1):
the model's predicted error (1 - confidence) averaged over the slice's pool rows, plus
the mean residual (observed error - predicted error) over the slice's labeled eval rows,
which are a uniform sample, so the estimate is unbiased even when confidence is
miscalibrated; its 95% interval adds the two variances. Without eval rows in the slice
the interval is [0, 1]: no evidence beyond the model's own word.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Z95 = 1.959964
UNDER = 0.75  # under-represented: labeled share below three quarters of the pool share


def ppi_error(conf_pool: np.ndarray | None, correct_eval: np.ndarray,
              conf_eval: np.ndarray | None) -> tuple[float | None, float, float]:
    """(estimate, lo, hi) of the error rate. ``conf_pool``: the model's confidence on
    the slice's pool rows; ``correct_eval`` (bool) and ``conf_eval``: its labeled eval
    rows. Falls back to the eval error alone (Wilson interval) without confidences, and
    to (predicted, 0, 1) without eval rows. O(n)."""
    m = len(correct_eval)
    err = 1.0 - np.asarray(correct_eval, dtype=np.float64)
    if conf_pool is None or conf_eval is None or len(conf_pool) == 0:
        if m == 0:
            return None, 0.0, 1.0
        p = float(err.mean())
        centre = (p + Z95 ** 2 / (2 * m)) / (1 + Z95 ** 2 / m)
        half = Z95 * math.sqrt(p * (1 - p) / m + Z95 ** 2 / (4 * m * m)) / (1 + Z95 ** 2 / m)
        return p, max(0.0, centre - half), min(1.0, centre + half)
    pred = 1.0 - np.asarray(conf_pool, dtype=np.float64)
    if m == 0:
        return float(pred.mean()), 0.0, 1.0
    resid = err - (1.0 - np.asarray(conf_eval, dtype=np.float64))
    est = float(pred.mean() + resid.mean())
    var = pred.var() / len(pred) + (resid.var(ddof=1) if m > 1 else 1.0) / m
    half = Z95 * math.sqrt(var)
    est_c = min(1.0, max(0.0, est))
    return est_c, max(0.0, est - half), min(1.0, est + half)


@dataclass
class SliceExample:
    """An unlabeled member of a slice: its row, id, text (200 characters), and the
    model's predicted class and confidence (None before a model)."""

    row: int
    id: str
    text: str
    predicted: str | None
    confidence: float | None


@dataclass
class Slice:
    """One slice (a cluster or a metadata value): ``name`` ("cluster:3",
    "metadata:source=web"), its pool rows and labeled rows with their shares, the
    model's mean confidence, the error estimate with its 95% interval and the eval rows
    behind it, whether it is under-represented, struggling and both (``flag``), its
    ``priority`` (expected errors per label it has) and ``examples`` (filled by the
    engine)."""

    kind: str
    value: str
    name: str
    pool_rows: int
    labeled: int
    pool_share: float
    labeled_share: float
    confidence: float | None
    error: float | None
    error_lo: float
    error_hi: float
    eval_labeled: int
    under_represented: bool
    struggling: bool
    flag: bool
    priority: float
    examples: list[SliceExample] = field(default_factory=list)


def rank_slices(kind: str, values: list[str], codes: np.ndarray, labeled: np.ndarray,
                confidence: np.ndarray | None, eval_codes: np.ndarray | None,
                eval_correct: np.ndarray | None, eval_confidence: np.ndarray | None,
                min_rows: int = 1) -> list[Slice]:
    """One record per value of ``codes`` (pool rows' slice, -1 = none): its pool and
    labeled shares, mean confidence, error with interval, and ``priority`` = expected
    errors in the slice per label it has (error · pool rows / (labeled + 1)); ``flag``
    marks slices both under-represented (labeled share < 0.75 · pool share) and struggling
    (error above the pool's). O(n + S)."""
    codes = np.asarray(codes)
    n = len(codes)
    n_lab = int(labeled.sum())
    S = len(values)
    size = np.bincount(codes[codes >= 0], minlength=S)
    lab = np.bincount(codes[(codes >= 0) & labeled], minlength=S)
    overall = None
    if eval_correct is not None and len(eval_correct):
        overall = ppi_error(confidence, eval_correct, eval_confidence)[0]
    elif confidence is not None and len(confidence):
        overall = float(1 - confidence.mean())
    out = []
    for c in range(S):
        if size[c] < min_rows:
            continue
        member = codes == c
        ev = (eval_codes == c) if eval_codes is not None else np.zeros(0, bool)
        corr = eval_correct[ev] if eval_correct is not None and len(ev) else np.zeros(0, bool)
        err, lo, hi = ppi_error(None if confidence is None else confidence[member], corr,
                                None if eval_confidence is None or not len(ev)
                                else eval_confidence[ev])
        pool_share = size[c] / max(n, 1)
        lab_share = lab[c] / n_lab if n_lab else 0.0
        under = lab_share < UNDER * pool_share
        struggling = err is not None and overall is not None and err > overall
        out.append(Slice(
            kind=kind, value=values[c], name=f"{kind}={values[c]}"
            if kind.startswith("metadata") else f"cluster:{values[c]}",
            pool_rows=int(size[c]), labeled=int(lab[c]),
            pool_share=round(float(pool_share), 5), labeled_share=round(float(lab_share), 5),
            confidence=None if confidence is None else round(float(confidence[member].mean()), 4),
            error=None if err is None else round(err, 4), error_lo=round(lo, 4),
            error_hi=round(hi, 4), eval_labeled=int(len(corr)),
            under_represented=bool(under), struggling=bool(struggling),
            flag=bool(under and struggling),
            priority=round(float((err if err is not None else 0.5) * size[c] / (lab[c] + 1)), 4),
        ))
    return out
