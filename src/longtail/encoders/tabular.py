"""A spreadsheet's metadata columns as vectors: numbers standardised, text one-hot,
missing cells imputed; the choices are fitted once and stored."""

from __future__ import annotations

import fnmatch
import math
import numbers
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from longtail.columns import describe_columns, is_label_like, natural_sorted, to_float
from longtail.encoders.base import Encoder, row_names
from longtail.errors import InputError


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


# Cell values that mean "no value" in spreadsheets and their CSV exports (compared after
# stripping spaces, in lower case); an empty cell or NaN is missing too.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "<na>", "?"})
# String columns with at most this many distinct values are one-hot encoded; more, and
# the column is left out (a dimension per value of an id-like column helps nothing).
MAX_CATEGORIES = 20
# Numeric values kept per column for the median that fills missing cells: exact up to
# this many, a uniform (seeded) sample of them beyond.
MEDIAN_SAMPLE = 50_000


def is_missing(value: Any) -> bool:
    """None, NaN, a blank string or a spreadsheet's marker for no value (NA, n/a, ...)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().lower() in MISSING_MARKERS
    return False


def category_of(value: Any) -> str:
    """The category a cell stands for: text stripped of surrounding spaces, integral
    numbers without a decimal point (1.0 and "1" are the same category)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _floats_or_missing(values: list) -> tuple[np.ndarray, np.ndarray] | None:
    """(floats, missing mask) when every value is a number, a numeric string or missing
    (numpy converts the whole list in C), else None: the caller checks value by value."""
    try:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 1:
        return None
    types = set(map(type, values))
    if bool in types or np.bool_ in types:  # numpy reads True as 1.0
        return None
    if np.isinf(arr).any():
        return None  # inf is a bad value, named by the slow path
    return arr, np.isnan(arr)


class _ColumnStats:
    """Per metadata column during a fit: numeric values seen (moments and a sample for
    the median), missing cells, other values (counted by category while there are at
    most the cap's), and the first row holding a value that is not a number."""

    __slots__ = ("numeric", "missing", "other", "moments", "sample", "seen", "counts",
                 "overflow", "first_bad")

    def __init__(self, missing: int = 0) -> None:
        self.numeric = 0
        self.missing = missing
        self.other = 0
        self.moments = _RunningMoments()
        self.sample = np.empty(0, dtype=np.float64)
        self.seen = 0  # numeric values offered to the median sample
        self.counts: dict[str, int] = {}
        self.overflow = False
        self.first_bad: tuple[str, Any] | None = None

    def add_numbers(self, values: np.ndarray, rng: np.random.Generator) -> None:
        if not values.size:
            return
        self.numeric += values.size
        self.moments.add(values)
        # Reservoir sampling, vectorised: the t-th value replaces a random slot with
        # probability K/t once the sample is full.
        room = MEDIAN_SAMPLE - self.sample.size
        if room > 0:
            self.sample = np.concatenate([self.sample, values[:room]])
        rest = values[max(room, 0):]
        if rest.size:
            t = self.seen + max(room, 0) + np.arange(1, rest.size + 1)
            take = rng.random(rest.size) < MEDIAN_SAMPLE / t
            self.sample[rng.integers(0, MEDIAN_SAMPLE, int(take.sum()))] = rest[take]
        self.seen += values.size
        if not self.overflow:  # numbers count as categories too, should the column be text
            distinct, times = np.unique(values, return_counts=True)
            if distinct.size > MAX_CATEGORIES_TRACKED:
                self._overflow()
            else:
                self.count([category_of(float(v)) for v in distinct], times.tolist())

    def count(self, categories: list[str], times: list[int] | None = None) -> None:
        if self.overflow:
            return
        for k, c in enumerate(categories):
            self.counts[c] = self.counts.get(c, 0) + (1 if times is None else times[k])
        if len(self.counts) > MAX_CATEGORIES_TRACKED:
            self._overflow()

    def _overflow(self) -> None:
        self.overflow = True
        self.counts = {}


# Distinct values tracked per column before it is called high-cardinality: above any cap
# a user may set (--max-categories), bounded so a numeric column's pass stays O(1) memory.
MAX_CATEGORIES_TRACKED = 1000


class TabularEncoder(Encoder):
    """The metadata columns of a spreadsheet as a vector.

    Numeric columns are standardised, ``(value - mean) / sd`` (population sd; a constant
    column gets sd 1); a missing cell (empty, NaN, NA, n/a, null, ?) takes the column's
    median. String columns with at most ``max_categories`` distinct values are one-hot
    encoded, one dimension per value (``column=value``); a missing cell takes the most
    frequent value, a value the fit never saw encodes to zeros. Columns missing in more
    than half the rows, string columns with more values than the cap, and columns with
    one value in every row are left out, each with its reason (``describe()``).

    ``fit`` makes one streaming pass over the pool. An encoder built from ``config()``
    is already fitted and ``fit`` leaves it unchanged, so vectors stay comparable across
    ingest batches and test files (the same medians, categories and scales apply).

    Which columns: ``features`` (names, or shell patterns such as ``f*``) when given;
    otherwise every metadata column less ``exclude``, less the caller's
    ``label_columns`` and less any column named like an answer (``label``, ``truth``,
    ``target``, ``class``, ``y``, ``gold``; see ``is_label_like``), in the pool's
    column order (``column_order``, the files' order; natural order, f0, f1, ..., f10,
    for columns it does not name). A column numeric in at least half its filled cells but holding
    other text too is an error naming the first bad row (a typo in the data must not
    turn a feature into categories).

    Time O(rows·columns) for fit and encode; memory O(columns) for fit (at most
    ``MEDIAN_SAMPLE`` values per numeric column) and one batch for encode.

    Parameters
    ----------
    columns : the metadata keys used, in this order (what ``config()`` stores after a
        fit); None picks them in ``fit``.
    features : names or patterns of the columns to use (``embed --features``).
    exclude : names or patterns never to use (``embed --exclude``); each must match
        a column of the pool.
    label_columns : the label and truth columns the caller knows of; never features,
        and ignored when the pool has no such metadata column.
    means, sds : the fitted scale, one per column (0 and 1 for a one-hot column).
    fill : per column, what a missing cell becomes (a median, or the most frequent
        category); None in a config from before imputation: a missing cell is an error.
    categories : one-hot columns -> their values, in dimension order.
    max_categories : the one-hot cap of a fit.
    column_order : the pool's columns in its files' order, for the order of the
        detected columns (not stored: ``columns`` keeps the outcome).
    dim, excluded, skipped, imputed, left_out : what a fit recorded (``config()``
        output); checked or kept for ``describe()``.
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
        fill: Sequence[Any] | None = None,
        categories: dict[str, Sequence[str]] | None = None,
        max_categories: int = MAX_CATEGORIES,
        imputed: dict[str, dict] | None = None,
        left_out: dict[str, str] | None = None,
        column_order: Sequence[str] | None = None,
    ) -> None:
        if isinstance(columns, str):
            columns = [columns]
        self.columns = None if columns is None else [str(c) for c in columns]
        if self.columns is not None:
            if not self.columns:
                raise InputError("tabular encoder: columns is empty; name at least one "
                                 "metadata column or pass None to detect them")
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
        if not (isinstance(max_categories, int) and max_categories >= 2):
            raise InputError(f"tabular encoder: max_categories must be an integer of at least "
                             f"2, got {max_categories!r}")
        self.max_categories = max_categories
        self.column_order = list(column_order or [])
        self.excluded = list(excluded or [])
        self.skipped = list(skipped or [])
        self.imputed = dict(imputed or {})
        self.left_out = dict(left_out or {})
        self.categories = {str(k): [str(v) for v in vs] for k, vs in (categories or {}).items()}
        if self.columns is not None and any(c not in self.columns for c in self.categories):
            raise InputError("tabular encoder: categories name a column not in columns")
        self.fill = None if fill is None else list(fill)
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
            if self.fill is not None and len(self.fill) != len(self.columns):
                raise InputError(f"tabular encoder: {len(self.columns)} columns but "
                                 f"{len(self.fill)} fill values")
            self.means_, self.sds_ = means_arr, sds_arr
        if dim is not None and self.columns is not None and int(dim) != self._width():
            raise InputError(f"tabular encoder: dim {dim} but the columns make {self._width()}")

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

    def _width(self) -> int:
        return sum(len(self.categories[c]) if c in self.categories else 1
                   for c in self.columns or [])

    @property
    def dim(self) -> int:
        if self.columns is None:
            raise InputError("tabular encoder: the columns are chosen by fit(); "
                             "call fit on the pool first")
        return self._width()

    def dimension_names(self) -> list[str]:
        """One name per dimension: the column, or ``column=value`` for a one-hot one."""
        out: list[str] = []
        for c in self.columns or []:
            out += [f"{c}={v}" for v in self.categories[c]] if c in self.categories else [c]
        return out

    def describe(self) -> dict[str, Any]:
        """The columns used, in order, and the dimension; the one-hot columns and their
        values; the columns whose missing cells were filled (``imputed``: column ->
        count, how and with what); the columns left out (``excluded``: label-like or
        asked for; ``skipped``: not usable, with the reason in ``left_out``)."""
        return {"columns": list(self.columns or []),
                "dim": self._width() if self.columns is not None else None,
                "one_hot": {c: len(v) for c, v in self.categories.items()},
                "imputed": dict(self.imputed),
                "excluded": list(self.excluded), "skipped": list(self.skipped),
                "left_out": dict(self.left_out)}

    # -- fit ---------------------------------------------------------------------------

    def fit(self, batches: Iterable[dict]) -> None:
        if self.fitted:
            return
        self._phase("fitting the tabular encoder (one pass over the pool)")
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        named = None
        if self.columns is not None:
            named = list(self.columns)
        elif self.features is not None:
            named = self._choose_named(first)

        def again() -> Iterable[dict]:
            yield first
            yield from batches

        stats, rows_seen = self._scan(again(), named)
        if named is not None:
            self._choose(stats, rows_seen, named, strict=True)
        else:
            keys = set(stats)
            asked = self._excluded_by_request(keys)
            excluded = {k for k in keys
                        if k in asked or k in self.label_columns or is_label_like(k)}
            self.excluded = natural_sorted(excluded)
            self._choose(stats, rows_seen, self._ordered(keys - excluded), strict=False)

    def _ordered(self, keys: Iterable[str]) -> list[str]:
        """`keys` in the pool's column order (``column_order``, as its files show them),
        any it does not name after them in natural order (f0, f1, ..., f10)."""
        rank = {c: i for i, c in enumerate(self.column_order)}
        keys = list(keys)
        return [k for k in sorted((k for k in keys if k in rank), key=rank.__getitem__)] + \
            natural_sorted(k for k in keys if k not in rank)

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
        """The columns ``exclude`` names; each must match a column (a typo there
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

    def _scan(self, batches: Iterable[dict], named: list[str] | None
              ) -> tuple[dict[str, _ColumnStats], int]:
        """One pass: the statistics of every column (of `named` only, when given)."""
        rng = np.random.default_rng(0)
        stats: dict[str, _ColumnStats] = {c: _ColumnStats() for c in named or []}
        rows_seen = 0
        for batch in batches:
            metadata = self._metadata(batch)
            if not metadata:
                continue
            names = row_names(batch, rows_seen)
            if named is None:
                keys = {key for row in metadata if isinstance(row, dict) for key in row}
                for key in keys - set(stats):
                    stats[key] = _ColumnStats(missing=rows_seen)  # absent from earlier rows
            for key, st in stats.items():
                values = [row.get(key) if isinstance(row, dict) else None for row in metadata]
                fast = _floats_or_missing(values)
                if fast is not None:
                    numbers_, missing = fast
                    st.missing += int(missing.sum())
                    st.add_numbers(numbers_[~missing], rng)
                    continue
                good = []
                other = []
                for i, raw in enumerate(values):
                    if is_missing(raw):
                        st.missing += 1
                        continue
                    number = to_float(raw) if not isinstance(raw, bool | np.bool_) else None
                    if number is None:
                        other.append(category_of(raw) if _is_cell(raw) else repr(raw))
                        if st.first_bad is None:
                            st.first_bad = (names[i], raw)
                    else:
                        good.append(number)
                st.other += len(other)
                st.count(other)
                st.add_numbers(np.asarray(good, dtype=np.float64), rng)
            rows_seen += len(metadata)
        if rows_seen == 0:
            raise InputError("tabular encoder: fit saw no rows; ingest samples first")
        return stats, rows_seen

    def _choose(self, stats: dict[str, _ColumnStats], rows: int, candidates: list[str], *,
                strict: bool) -> None:
        """Decide each candidate column (numeric, one-hot or left out with its reason)
        and set the fitted statistics. `strict` (columns the user named): a column that
        cannot be used is an error rather than left out."""
        chosen: list[str] = []
        means: list[float] = []
        sds: list[float] = []
        fill: list[Any] = []
        broken: list[str] = []
        for c in candidates:
            st = stats[c]
            filled = st.numeric + st.other
            reason = None
            if st.other and st.numeric >= filled / 2:
                broken.append(c)
                continue
            if filled == 0:
                reason = "empty in every row"
            elif st.missing > rows / 2:
                reason = f"missing in {st.missing:,} of {rows:,} rows"
            elif st.other:
                n_values = len(st.counts)
                if st.overflow or n_values > self.max_categories:
                    more = "over 1,000" if st.overflow else f"{n_values:,}"
                    reason = (f"text with {more} distinct values (one-hot takes at most "
                              f"{self.max_categories})")
                elif n_values < 2:
                    reason = "the same value in every row"
            if reason is not None:
                if strict:
                    raise InputError(f"tabular encoder: column {c!r} cannot be a feature: "
                                     f"{reason}")
                self.left_out[c] = reason
                continue
            chosen.append(c)
            if st.other:  # one-hot, values by frequency (ties by name)
                ranked = sorted(st.counts.items(), key=lambda kv: (-kv[1], kv[0]))
                self.categories[c] = natural_sorted(k for k, _ in ranked)
                means.append(0.0)
                sds.append(1.0)
                fill.append(ranked[0][0])
                if st.missing:
                    self.imputed[c] = {"count": st.missing, "how": "most frequent",
                                       "with": ranked[0][0]}
            else:
                means.append(st.moments.mean)
                sds.append(st.moments.sd)
                median = float(np.median(st.sample))
                fill.append(median)
                if st.missing:
                    self.imputed[c] = {"count": st.missing, "how": "median", "with": median}
        if broken:
            column = broken[0]
            where, raw = stats[column].first_bad
            st = stats[column]
            others = f" (and {len(broken) - 1} more such column(s): {_listing(broken[1:])})" \
                if len(broken) > 1 else ""
            raise InputError(
                f"tabular encoder: column {column!r} has non-numeric value {raw!r} at {where}; "
                f"it is numeric in {st.numeric:,} of {st.numeric + st.other:,} filled rows"
                f"{others}. Fix the value and re-ingest with --update, or leave the column "
                f"out with --exclude {shlex.quote(column)}")
        if not chosen:
            raise InputError(
                "tabular encoder: no metadata column can be a feature; name the columns to "
                "use (--features COLS)"
                + (f"; left out as label-like: {_listing(self.excluded)}" if self.excluded
                   else "")
                + (f"; unusable: {_listing(self.left_out)}" if self.left_out else ""))
        self.columns = chosen
        self.skipped = natural_sorted(self.left_out)
        self.fill = fill
        means_arr = np.array(means, dtype=np.float64)
        sds_arr = np.array(sds, dtype=np.float64)
        # A constant column would divide by zero; sd 1 maps it to 0 everywhere.
        sds_arr[sds_arr <= 1e-12 * np.maximum(1.0, np.abs(means_arr))] = 1.0
        self.means_, self.sds_ = means_arr, sds_arr

    # -- encode ------------------------------------------------------------------------

    def encode(self, batch: dict) -> np.ndarray:
        if not self.fitted:
            raise InputError("tabular encoder is not fitted: call fit on the pool first "
                             "(or build it from a saved config with columns, means and sds)")
        metadata = self._metadata(batch)
        names = row_names(batch, 0)
        out = np.zeros((len(metadata), self._width()), dtype=np.float32)
        j = 0
        for k, column in enumerate(self.columns):
            values = [row.get(column) if isinstance(row, dict) else None for row in metadata]
            fill = self.fill[k] if self.fill is not None else None
            if column in self.categories:
                cats = self.categories[column]
                index = {v: i for i, v in enumerate(cats)}
                for i, raw in enumerate(values):
                    key = fill if is_missing(raw) else category_of(raw)
                    hit = index.get(key)
                    if hit is not None:  # a value the fit never saw: all zeros
                        out[i, j + hit] = 1.0
                j += len(cats)
                continue
            raw_numbers = self._numbers(values, column, names, fill)
            out[:, j] = (raw_numbers - self.means_[k]) / self.sds_[k]
            j += 1
        return out

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """The fitted scaling of raw numeric feature values ``(n, len(columns))`` (every
        column numeric, in ``self.columns`` order) to ``(n, dim)`` float32."""
        if self.categories:
            raise InputError("tabular encoder: one-hot columns need encode(), not transform()")
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
            "fill": None if self.fill is None else list(self.fill),
            "categories": {c: list(v) for c, v in self.categories.items()},
            "max_categories": self.max_categories,
            "features": self.features,
            "exclude": list(self.exclude),
            "label_columns": list(self.label_columns),
            "dim": None if self.columns is None else self._width(),
            "excluded": list(self.excluded),
            "skipped": list(self.skipped),
            "imputed": dict(self.imputed),
            "left_out": dict(self.left_out),
        }

    @staticmethod
    def _metadata(batch: dict) -> list[dict]:
        metadata = batch.get("metadata")
        if metadata is None:
            raise InputError("encoder 'tabular' needs metadata columns, and the batch has none")
        return metadata if isinstance(metadata, list) else list(metadata)

    @staticmethod
    def _numbers(values: list, column: str, names: list[str], fill: float | None) -> np.ndarray:
        """A numeric column's values, missing cells as `fill` (an error naming the row
        when there is none), any other non-number an error naming row and value."""
        fast = _floats_or_missing(values)
        if fast is not None:
            numbers_, missing = fast
            if not missing.any():
                return numbers_
            if fill is not None:
                numbers_[missing] = fill
                return numbers_
        out = np.empty(len(values), dtype=np.float64)
        for i, raw in enumerate(values):
            if is_missing(raw) and fill is not None:
                out[i] = fill
                continue
            number = None if isinstance(raw, bool | np.bool_) else to_float(raw)
            if number is None:
                what = "is missing" if is_missing(raw) else f"has non-numeric value {raw!r}"
                raise InputError(
                    f"tabular encoder: column {column!r} {what} at {names[i]}; "
                    "every value of a numeric tabular column must be a finite number"
                )
            out[i] = number
        return out


def _is_cell(value: Any) -> bool:
    """A value a spreadsheet cell holds (text, number, bool), not a list or a dict."""
    return isinstance(value, str | numbers.Number | bool | np.bool_)


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
                f"(`longtail embed --encoder tabular --exclude {shlex.quote(column)}`)")


def _listing(names: Iterable[str], limit: int = 12) -> str:
    names = natural_sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
