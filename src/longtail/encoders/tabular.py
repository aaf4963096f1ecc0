"""Numeric metadata columns, standardised: ``(value - mean) / sd`` per column."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from longtail.columns import describe_columns, is_label_like, natural_sorted, to_float
from longtail.encoders.base import Encoder, row_names
from longtail.errors import InputError


def _fast_floats(values: list) -> np.ndarray | None:
    """``values`` as float64 when every one is a finite number or numeric string (numpy
    converts the whole list in C), else None and the caller checks value by value."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1 or not np.isfinite(arr).all():
        return None
    # numpy reads True as 1.0; a bool is not a number here.
    types = set(map(type, values))
    if bool in types or np.bool_ in types:
        return None
    return arr


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _as_names(value: Sequence[str] | str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in (s.strip() for s in value.split(",")) if v]
    names = [str(v) for v in value]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise InputError(f"tabular encoder: {what} named twice: {duplicated}")
    return names


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


class _ColumnStats:
    """Per metadata key during an auto-detecting fit: numeric values seen, their
    moments, and the first row whose value is not a finite number."""

    __slots__ = ("numeric", "moments", "first_bad")

    def __init__(self) -> None:
        self.numeric = 0
        self.moments = _RunningMoments()
        self.first_bad: tuple[str, Any] | None = None


class TabularEncoder(Encoder):
    """Standardised numeric metadata columns as a vector, one dimension per column.

    ``fit`` makes one streaming pass over the pool: it picks the columns and their
    mean and population sd; a constant column gets sd 1. An encoder built with
    ``means`` and ``sds`` (as ``config()`` returns them) is already fitted and ``fit``
    leaves it unchanged, so vectors stay comparable across ingest batches and test
    files. Build a new encoder without them to refit.

    Which columns: ``features`` (names, or shell patterns such as ``f*``) when given;
    otherwise every metadata column that holds a finite number (or a numeric string)
    in every row, less ``exclude``, less the caller's ``label_columns`` and less any
    column named like an answer (``label``, ``truth``, ``target``, ``class``, ``y``,
    ``gold``; see ``is_label_like``). Detected columns come in natural order (f0, f1,
    ..., f10). A column numeric in at least half the rows but not in all is an error
    naming the first bad row (a typo in the data must not silently drop a feature);
    one numeric in fewer rows is text and skipped. ``describe()`` reports the choice.

    Time O(rows·columns) for fit and encode; memory O(columns) for fit and one
    batch for encode.

    Parameters
    ----------
    columns : the exact metadata keys to use, in this order (what ``config()``
        stores after a fit); None picks them in ``fit``.
    features : names or patterns of the columns to use (``embed --features``).
    exclude : names or patterns never to use (``embed --exclude``); each must match
        a column of the pool.
    label_columns : the label and truth columns the caller knows of; never features,
        and ignored when the pool has no such metadata column.
    means, sds : the fitted statistics, one per column.
    dim, excluded, skipped : what a fit recorded (``config()`` output); checked or
        kept for ``describe()``.
    """

    name = "tabular"
    needs = "metadata"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        means: Sequence[float] | None = None,
        sds: Sequence[float] | None = None,
        features: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        label_columns: Sequence[str] | str | None = None,
        dim: int | None = None,
        excluded: Sequence[str] | None = None,
        skipped: Sequence[str] | None = None,
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
        self.features = _as_names(features, "feature(s)")
        if self.features is not None and not self.features:
            raise InputError("tabular encoder: --features is empty; name at least one column")
        self.exclude = _as_names(exclude, "excluded column(s)") or []
        self.label_columns = _as_names(label_columns, "label column(s)") or []
        if self.features is not None and self.columns is None:
            answers = [f for f in self.features if f in self.label_columns]
            if answers:
                raise InputError(
                    f"tabular encoder: {answers[0]!r} is a label or truth column, so it cannot "
                    "be a feature (the model would be trained on the answer)")
            clash = [f for f in self.features if f in self.exclude]
            if clash:
                raise InputError(f"tabular encoder: {clash[0]!r} is both in --features and "
                                 "in --exclude")
        self.excluded = list(excluded or [])
        self.skipped = list(skipped or [])
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
        if dim is not None and self.columns is not None and int(dim) != len(self.columns):
            raise InputError(f"tabular encoder: dim {dim} but {len(self.columns)} columns")

    @classmethod
    def check(cls, preview: Any) -> None:
        """Refuse a pool whose previewed samples have no numeric metadata column."""
        if preview.n == 0 or preview.numeric_columns:
            return
        message = (f"encoder 'tabular' needs numeric metadata columns, and none of the "
                   f"first {preview.n} samples has one")
        if preview.columns:
            message += f" (their columns: {describe_columns(preview.columns)})"
        if preview.has_vectors:
            message += ("; the samples carry precomputed vectors "
                        "(`longtail embed --encoder precomputed` uses them)")
        elif preview.has_text:
            message += "; the samples have text: use `longtail embed --encoder minilm`"
        raise InputError(message)

    @property
    def fitted(self) -> bool:
        return self.means_ is not None

    @property
    def dim(self) -> int:
        if self.columns is None:
            raise InputError("tabular encoder: the columns are chosen by fit(); "
                             "call fit on the pool first")
        return len(self.columns)

    def describe(self) -> dict[str, Any]:
        """The columns used, in order, and the dimension; with the columns left out
        (``excluded``: label-like or asked for; ``skipped``: not numeric)."""
        return {"columns": list(self.columns or []),
                "dim": len(self.columns) if self.columns is not None else None,
                "excluded": list(self.excluded), "skipped": list(self.skipped)}

    # -- fit ---------------------------------------------------------------------------

    def fit(self, batches: Iterable[dict]) -> None:
        if self.fitted:
            return
        self._phase("fitting the tabular encoder (one pass over the pool)")
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        if self.columns is None:
            self.columns = self._choose_named(first) if self.features is not None else None

        def again() -> Iterable[dict]:
            yield first
            yield from batches

        if self.columns is not None:
            self._fit_named(again())
        else:
            self._fit_auto(again())

    def _choose_named(self, first: dict) -> list[str]:
        """``features`` resolved against the keys of the first batch: names kept in the
        given order, each pattern expanded in natural order, less ``exclude``."""
        keys = {key for row in self._metadata(first) for key in row}
        chosen: list[str] = []
        for feature in self.features or []:
            if _is_pattern(feature):
                matches = natural_sorted(k for k in keys if fnmatch.fnmatchcase(k, feature))
                if not matches:
                    raise InputError(f"tabular encoder: --features pattern {feature!r} matches "
                                     f"no metadata column; the samples have: "
                                     f"{_listing(keys)}")
            elif feature in keys:
                matches = [feature]
            else:
                raise InputError(f"tabular encoder: --features column {feature!r} is not a "
                                 f"metadata column; the samples have: {_listing(keys)}")
            chosen += [m for m in matches if m not in chosen]
        dropped = self._excluded_by_request(keys) | set(self.label_columns)
        self.excluded = [c for c in chosen if c in dropped]
        chosen = [c for c in chosen if c not in dropped]
        if not chosen:
            raise InputError("tabular encoder: --exclude leaves none of --features")
        return chosen

    def _excluded_by_request(self, keys: set[str]) -> set[str]:
        """The columns ``exclude`` names; each entry must match a column (a typo there
        would leave the column in)."""
        out: set[str] = set()
        for name in self.exclude:
            hits = {k for k in keys if fnmatch.fnmatchcase(k, name)} if _is_pattern(name) \
                else ({name} & keys)
            if not hits:
                raise InputError(f"tabular encoder: --exclude {name!r} matches no metadata "
                                 f"column; the samples have: {_listing(keys)}")
            out |= hits
        return out

    def _fit_named(self, batches: Iterable[dict]) -> None:
        moments = {c: _RunningMoments() for c in self.columns}
        rows_seen = 0
        for batch in batches:
            metadata = self._metadata(batch)
            names = row_names(batch, rows_seen)
            for column in self.columns:
                moments[column].add(self._column_values(metadata, column, names))
            rows_seen += len(metadata)
        if rows_seen == 0:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        self._set_moments([moments[c] for c in self.columns])

    def _fit_auto(self, batches: Iterable[dict]) -> None:
        stats: dict[str, _ColumnStats] = {}
        rows_seen = 0
        first_row_name: str | None = None
        for batch in batches:
            metadata = self._metadata(batch)
            if not metadata:
                continue
            names = row_names(batch, rows_seen)
            if first_row_name is None:
                first_row_name = names[0]
            keys = {key for row in metadata for key in row}
            for key in keys - set(stats):
                stats[key] = _ColumnStats()
                if rows_seen:  # a key absent from every earlier row
                    stats[key].first_bad = (first_row_name, None)
            for key, st in stats.items():
                fast = _fast_floats([row.get(key) for row in metadata])
                if fast is not None:
                    st.numeric += len(fast)
                    st.moments.add(fast)
                    continue
                numbers_ = np.empty(len(metadata), dtype=np.float64)
                k = 0
                for i, row in enumerate(metadata):
                    raw = row.get(key)
                    number = to_float(raw)
                    if number is None:
                        if st.first_bad is None:
                            st.first_bad = (names[i], raw)
                    else:
                        numbers_[k] = number
                        k += 1
                st.numeric += k
                st.moments.add(numbers_[:k])
            rows_seen += len(metadata)
        if rows_seen == 0:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        keys = set(stats)
        asked = self._excluded_by_request(keys)
        excluded = {k for k in keys if k in asked or k in self.label_columns or is_label_like(k)}
        candidates = natural_sorted(keys - excluded)
        chosen = [k for k in candidates if stats[k].numeric == rows_seen]
        # Numeric in at least half the rows but not all: a bad value, not a text column.
        broken = [k for k in candidates if rows_seen > stats[k].numeric >= rows_seen / 2]
        if broken:
            column = broken[0]
            where, raw = stats[column].first_bad
            what = "is missing" if raw is None else f"has non-numeric value {raw!r}"
            others = f" (and {len(broken) - 1} more such column(s): {_listing(broken[1:])})" \
                if len(broken) > 1 else ""
            raise InputError(
                f"tabular encoder: column {column!r} {what} at {where}; it is numeric in "
                f"{stats[column].numeric} of {rows_seen} rows{others}. Fix the value and "
                f"re-ingest with --update, or leave the column out with --exclude {column}")
        if not chosen:
            raise InputError(
                "tabular encoder: no metadata column holds a number in every row; "
                "name the columns to use (--features COLS)"
                + (f"; left out as label-like: {_listing(excluded)}" if excluded else ""))
        self.columns = chosen
        self.excluded = natural_sorted(excluded)
        self.skipped = [k for k in candidates if stats[k].numeric < rows_seen / 2]
        self._set_moments([stats[c].moments for c in chosen])

    def _set_moments(self, moments: list[_RunningMoments]) -> None:
        means = np.array([m.mean for m in moments], dtype=np.float64)
        sds = np.array([m.sd for m in moments], dtype=np.float64)
        # A constant column would divide by zero; sd 1 maps it to 0 everywhere.
        sds[sds <= 1e-12 * np.maximum(1.0, np.abs(means))] = 1.0
        self.means_, self.sds_ = means, sds

    # -- encode ------------------------------------------------------------------------

    def encode(self, batch: dict) -> np.ndarray:
        if not self.fitted:
            raise InputError("tabular encoder is not fitted: call fit on the pool first "
                             "(or build it from a saved config with columns, means and sds)")
        metadata = self._metadata(batch)
        names = row_names(batch, 0)
        out = np.empty((len(metadata), len(self.columns)), dtype=np.float64)
        for j, column in enumerate(self.columns):
            out[:, j] = self._column_values(metadata, column, names)
        return self.transform(out)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """The fitted scaling of raw feature values ``(n, dim)`` (columns in
        ``self.columns`` order) to ``(n, dim)`` float32."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.columns):
            raise InputError(f"tabular encoder: {raw.shape[-1]} feature values per row, "
                             f"expected {len(self.columns)} ({_listing(self.columns)})")
        return ((raw - self.means_) / self.sds_).astype(np.float32)

    def config(self) -> dict[str, Any]:
        return {
            "columns": None if self.columns is None else list(self.columns),
            "means": None if self.means_ is None else self.means_.tolist(),
            "sds": None if self.sds_ is None else self.sds_.tolist(),
            "features": self.features,
            "exclude": list(self.exclude),
            "label_columns": list(self.label_columns),
            "dim": None if self.columns is None else len(self.columns),
            "excluded": list(self.excluded),
            "skipped": list(self.skipped),
        }

    @staticmethod
    def _metadata(batch: dict) -> list[dict]:
        metadata = batch.get("metadata")
        if metadata is None:
            raise InputError("encoder 'tabular' needs metadata columns, and the batch has none")
        return metadata if isinstance(metadata, list) else list(metadata)

    @staticmethod
    def _column_values(metadata: list[dict], column: str, names: list[str]) -> np.ndarray:
        fast = _fast_floats([row.get(column) if isinstance(row, dict) else None
                             for row in metadata])
        if fast is not None:
            return fast
        values = np.empty(len(metadata), dtype=np.float64)
        for i, row in enumerate(metadata):
            raw = row.get(column) if isinstance(row, dict) else None
            number = to_float(raw)
            if number is None:
                what = "is missing" if raw is None else f"has non-numeric value {raw!r}"
                raise InputError(
                    f"tabular encoder: column {column!r} {what} at {names[i]}; "
                    "every value of a tabular column must be a finite number"
                )
            values[i] = number
        return values


def tabular_params(features: Sequence[str] | str | None = None,
                   exclude: Sequence[str] | str | None = None, *,
                   label_columns: Iterable[str | None] = ()) -> dict[str, Any]:
    """Parameters for ``get_encoder("tabular", **params)`` from ``embed --features`` /
    ``--exclude`` (lists or comma-separated text) and the label and truth columns the
    engine knows of (the ingest mappings' ``label`` columns, a ``--truth`` column):
    those are never features."""
    params: dict[str, Any] = {"label_columns": sorted({c for c in label_columns if c})}
    if features is not None:
        params["features"] = _as_names(features, "feature(s)")
    if exclude is not None:
        params["exclude"] = _as_names(exclude, "excluded column(s)")
    return params


def needs_refit(stored_config: dict | None, params: dict[str, Any]) -> bool:
    """Whether ``embed --features/--exclude`` (``params``, as ``tabular_params`` gives
    them) asks for another choice of columns than the stored vector set's config, or
    names as label a column the stored vectors use: then the set must be rebuilt from
    scratch, since resuming would keep the old columns."""
    stored = stored_config or {}
    for key in ("features", "exclude"):
        if params.get(key) is not None and list(params[key]) != list(stored.get(key) or []):
            return True
    used = set(stored.get("columns") or ())
    return any(c in used for c in params.get("label_columns") or ())


def check_not_features(encoder_name: str, encoder_config: dict | None,
                       columns: Iterable[str | None], *, role: str = "truth") -> None:
    """Raise InputError when one of ``columns`` (a ``--truth`` or label column) is a
    feature of the project's vectors: a model trained on them would see the answer."""
    if encoder_name != TabularEncoder.name or not encoder_config:
        return
    used = set(encoder_config.get("columns") or ())
    for column in columns:
        if column and column in used:
            raise InputError(
                f"the {role} column {column!r} is a feature of the tabular vectors, so the "
                f"model would see the answer: embed again without it "
                f"(`longtail embed --encoder tabular --exclude {column}`)")


def _listing(names: Iterable[str], limit: int = 12) -> str:
    names = natural_sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
