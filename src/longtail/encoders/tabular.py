"""Numeric metadata columns, standardised: ``(value - mean) / sd`` per column."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from longtail.encoders.base import Encoder
from longtail.errors import InputError


def _is_number(value: Any) -> bool:
    """A real number value (not bool, not a string), finite."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def _to_float(value: Any) -> float | None:
    """The value as a finite float, accepting numeric strings; None when it is not one."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class _RunningMoments:
    """Streaming count, mean and sum of squared deviations (Chan et al.'s merge of Welford)."""

    __slots__ = ("count", "mean", "m2")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, values: np.ndarray) -> None:
        n = values.size
        if n == 0:
            return
        batch_mean = float(values.mean())
        batch_m2 = float(((values - batch_mean) ** 2).sum())
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta * delta * self.count * n / total
        self.count = total

    @property
    def sd(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


class TabularEncoder(Encoder):
    """Standardised numeric metadata columns as a vector, one dimension per column.

    ``fit`` makes one streaming pass over the pool: it picks the columns (when
    ``columns`` is None, every column whose value is a number in every row) and
    their mean and population sd; a constant column gets sd 1. An encoder built
    with ``means`` and ``sds`` (as ``config()`` returns them) is already fitted and
    ``fit`` leaves it unchanged, so vectors stay comparable across ingest batches.
    Build a new encoder without them to refit.

    Time O(rows·columns) for fit and encode; memory O(columns) for fit and one
    batch for encode.

    Parameters
    ----------
    columns : metadata keys to use, in this order; None picks them in ``fit``
        (sorted by name). Numeric strings such as ``"3.5"`` are accepted in
        named columns; auto-detection takes only numbers.
    means, sds : the fitted statistics, one per column.
    """

    name = "tabular"
    needs = "metadata"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        means: Sequence[float] | None = None,
        sds: Sequence[float] | None = None,
    ) -> None:
        if isinstance(columns, str):
            columns = [columns]
        self.columns = None if columns is None else [str(c) for c in columns]
        if self.columns is not None:
            if not self.columns:
                raise InputError("tabular encoder: columns is empty; name at least one "
                                 "numeric metadata column or pass None to detect them")
            duplicated = sorted({c for c in self.columns if self.columns.count(c) > 1})
            if duplicated:
                raise InputError(f"tabular encoder: column(s) named twice: {duplicated}")
        if (means is None) != (sds is None):
            raise InputError("tabular encoder: give both means and sds, or neither")
        self.means_: np.ndarray | None = None
        self.sds_: np.ndarray | None = None
        if means is not None:
            if self.columns is None:
                raise InputError("tabular encoder: means and sds need the columns they "
                                 "belong to")
            means_arr = np.asarray(means, dtype=np.float64)
            sds_arr = np.asarray(sds, dtype=np.float64)
            if means_arr.shape != (len(self.columns),) or sds_arr.shape != means_arr.shape:
                raise InputError(
                    f"tabular encoder: {len(self.columns)} columns but {means_arr.size} means "
                    f"and {sds_arr.size} sds"
                )
            if not (np.isfinite(means_arr).all() and np.isfinite(sds_arr).all()
                    and (sds_arr > 0).all()):
                raise InputError("tabular encoder: means must be finite and sds finite and > 0")
            self.means_, self.sds_ = means_arr, sds_arr

    @property
    def fitted(self) -> bool:
        return self.means_ is not None

    @property
    def dim(self) -> int:
        if self.columns is None:
            raise InputError("tabular encoder: the columns are chosen by fit(); "
                             "call fit on the pool first")
        return len(self.columns)

    def fit(self, batches: Iterable[dict]) -> None:
        if self.fitted:
            return
        moments: dict[str, _RunningMoments] = {}
        rejected: set[str] = set()  # auto mode: columns with a non-number somewhere
        rows_seen = 0
        for batch in batches:
            metadata = self._metadata(batch)
            if self.columns is not None:
                for column in self.columns:
                    values = self._column_values(metadata, column, rows_seen)
                    moments.setdefault(column, _RunningMoments()).add(values)
            else:
                keys = {key for row in metadata for key in row}
                for key in keys - rejected:
                    values = [row.get(key) for row in metadata]
                    if all(_is_number(v) for v in values):
                        moments.setdefault(key, _RunningMoments()).add(
                            np.asarray(values, dtype=np.float64))
                    else:
                        rejected.add(key)
            rows_seen += len(metadata)
        if rows_seen == 0:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        if self.columns is None:
            # A column that is absent from some rows is not numeric everywhere.
            chosen = sorted(k for k, m in moments.items()
                            if k not in rejected and m.count == rows_seen)
            if not chosen:
                raise InputError(
                    "tabular encoder: no metadata column holds a number in every row; "
                    "name the columns to use (columns=[...])"
                )
            self.columns = chosen
        means = np.array([moments[c].mean for c in self.columns], dtype=np.float64)
        sds = np.array([moments[c].sd for c in self.columns], dtype=np.float64)
        # A constant column would divide by zero; sd 1 maps it to 0 everywhere.
        sds[sds <= 1e-12 * np.maximum(1.0, np.abs(means))] = 1.0
        self.means_, self.sds_ = means, sds

    def encode(self, batch: dict) -> np.ndarray:
        if not self.fitted:
            raise InputError("tabular encoder is not fitted: call fit on the pool first "
                             "(or build it from a saved config with columns, means and sds)")
        metadata = self._metadata(batch)
        out = np.empty((len(metadata), len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            out[:, j] = self._column_values(metadata, column, 0)
        out -= self.means_
        out /= self.sds_
        return out.astype(np.float32)

    def config(self) -> dict[str, Any]:
        return {
            "columns": None if self.columns is None else list(self.columns),
            "means": None if self.means_ is None else self.means_.tolist(),
            "sds": None if self.sds_ is None else self.sds_.tolist(),
        }

    @staticmethod
    def _metadata(batch: dict) -> list[dict]:
        metadata = batch.get("metadata")
        if metadata is None:
            raise InputError("encoder 'tabular' needs metadata columns, and the batch has none")
        return metadata if isinstance(metadata, list) else list(metadata)

    @staticmethod
    def _column_values(metadata: list[dict], column: str, first_row: int) -> np.ndarray:
        values = np.empty(len(metadata), dtype=np.float64)
        for i, row in enumerate(metadata):
            raw = row.get(column) if isinstance(row, dict) else None
            number = _to_float(raw)
            if number is None:
                what = "is missing" if raw is None else f"has non-numeric value {raw!r}"
                raise InputError(
                    f"tabular encoder: column {column!r} {what} at row {first_row + i}; "
                    "every value of a tabular column must be a finite number"
                )
            values[i] = number
        return values
