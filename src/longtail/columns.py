"""Column names and cell values of samples' metadata, shared by the encoders, the pool
preview and the batch files: natural order, label-like names, numbers."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

# Column names that hold the answer, never a feature, in auto-detection (compared in
# lower case, also as the last word of a name such as "true_label" or "gold-class").
LABEL_LIKE = frozenset({"label", "labels", "truth", "target", "class", "y", "gold"})


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: f0, f1, f2, ..., f10."""
    parts = re.split(r"(\d+)", name)
    # Even positions are text, odd ones digits, so tuples compare type for type.
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name


def natural_sorted(names: Iterable[str]) -> list[str]:
    """``names`` in natural order (numbers inside names compared as numbers)."""
    return sorted(names, key=natural_key)


def is_label_like(name: str) -> bool:
    """True for a column named like an answer: label, truth, target, class, y, gold,
    alone or as the last word (``true_label``, ``gold-class``), any case."""
    words = [w for w in re.split(r"[^0-9a-zA-Z]+", name.lower()) if w]
    return bool(words) and (name.lower() in LABEL_LIKE or words[-1] in LABEL_LIKE)


def is_number(value: Any) -> bool:
    """A real number value (not bool, not a string), finite."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def to_float(value: Any) -> float | None:
    """The value as a finite float, accepting numeric strings; None when it is not one."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def describe_columns(columns: tuple[str, ...], limit: int = 6) -> str:
    """``f0, f1, f2, ... (64 columns)`` for messages."""
    shown = ", ".join(columns[:limit])
    return shown + (f", ... ({len(columns)} columns)" if len(columns) > limit else "")
