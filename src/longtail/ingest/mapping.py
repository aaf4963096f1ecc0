"""Column mapping and per-batch validation: turn a record batch into checked arrays."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from longtail.errors import InputError


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns of the file mean what. Everything not mapped is kept as metadata
    unless `metadata` names the columns to keep."""

    id: str = "id"
    text: str | None = None
    label: str | None = None
    vector: str | None = None          # one list<float> column
    vector_prefix: str | None = None   # columns PREFIX0, PREFIX1, ... (numbered)
    metadata: tuple[str, ...] | None = None
    annotator: str | None = None
    seconds: str | None = None
    delimiter: str | None = None       # a CSV's; None: sniffed (, ; tab |)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["metadata"] = list(self.metadata) if self.metadata is not None else None
        return d


@dataclass
class ResolvedColumns:
    vector_columns: list[str] = field(default_factory=list)
    metadata_columns: list[str] = field(default_factory=list)


def resolve(mapping: ColumnMapping, names: list[str], path: str) -> ResolvedColumns:
    """Check that every mapped column exists; work out vector and metadata columns."""
    def need(col: str | None, what: str) -> None:
        if col is not None and col not in names:
            raise InputError(f"{path}: {what} column {col!r} not found; the file has columns: "
                             f"{', '.join(names)}")

    need(mapping.id, "id")
    need(mapping.text, "text")
    need(mapping.label, "label")
    need(mapping.vector, "vector")
    need(mapping.annotator, "annotator")
    need(mapping.seconds, "seconds")
    out = ResolvedColumns()
    if mapping.vector_prefix:
        pat = re.compile(re.escape(mapping.vector_prefix) + r"(\d+)$")
        numbered = sorted((int(m.group(1)), n) for n in names if (m := pat.match(n)))
        if not numbered:
            raise InputError(f"{path}: no columns named {mapping.vector_prefix}0, "
                             f"{mapping.vector_prefix}1, ... for --vector-prefix")
        out.vector_columns = [n for _, n in numbered]
    used = {mapping.id, mapping.text, mapping.label, mapping.vector, mapping.annotator,
            mapping.seconds, *out.vector_columns} - {None}
    if mapping.metadata is not None:
        for col in mapping.metadata:
            need(col, "metadata")
        out.metadata_columns = list(mapping.metadata)
    else:
        out.metadata_columns = [n for n in names if n not in used]
    return out


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def string_column(batch: pa.RecordBatch, col: str) -> pa.Array:
    """A column as a pyarrow string array (other types cast)."""
    arr = batch.column(col)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def column_strings(batch: pa.RecordBatch, col: str, path: str, row0: int, *, allow_null: bool
                   ) -> list[str | None]:
    arr = batch.column(col)
    if arr.null_count and not allow_null:
        bad = _first_bad(np.asarray(arr.is_null()))
        raise InputError(f"{path}: row {row0 + bad + 1}, column {col!r}: empty value")
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        # The CSV reader keeps bytes that are not UTF-8 as binary: name the first such
        # row rather than fail in the cast.
        for i, v in enumerate(arr.to_pylist()):
            try:
                if v is not None:
                    v.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}: row {row0 + i + 1}, column {col!r}: not UTF-8 "
                                 "text (save the file as UTF-8)") from None
    return string_column(batch, col).to_pylist()


def vectors_of(batch: pa.RecordBatch, mapping: ColumnMapping, resolved: ResolvedColumns,
               path: str, row0: int) -> np.ndarray | None:
    """(n, d) float32 vectors of the batch, or None when the mapping has none."""
    if mapping.vector:
        arr = batch.column(mapping.vector)
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)
                or pa.types.is_fixed_size_list(arr.type)):
            raise InputError(f"{path}: column {mapping.vector!r} holds {arr.type}, not a list of "
                             "numbers")
        if arr.null_count:
            bad = _first_bad(np.asarray(arr.is_null()))
            raise InputError(f"{path}: row {row0 + bad + 1}, column {mapping.vector!r}: no vector")
        lengths = np.asarray(pc.list_value_length(arr))
        if len(lengths) and (lengths != lengths[0]).any():
            bad = _first_bad(lengths != lengths[0])
            raise InputError(f"{path}: row {row0 + bad + 1}, column {mapping.vector!r}: vector has "
                             f"{lengths[bad]} values, expected {lengths[0]} like row {row0 + 1}")
        values = arr.flatten()
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            raise InputError(f"{path}: column {mapping.vector!r} holds {values.type} values, not "
                             "numbers")
        dim = int(lengths[0]) if len(lengths) else 0
        vecs = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32)
        vecs = vecs.reshape(len(arr), dim)
        cols = [mapping.vector] * dim
    elif resolved.vector_columns:
        cols = resolved.vector_columns
        vecs = np.empty((batch.num_rows, len(cols)), dtype=np.float32)
        for j, col in enumerate(cols):
            arr = batch.column(col)
            if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
                    or pa.types.is_null(arr.type)):
                values = arr.to_pylist()
                for i, v in enumerate(values):
                    try:
                        float(v)
                    except (TypeError, ValueError):
                        raise InputError(f"{path}: row {row0 + i + 1}, column {col!r}: "
                                         f"{v!r} is not a number") from None
            if arr.null_count:
                bad = _first_bad(np.asarray(arr.is_null()))
                raise InputError(f"{path}: row {row0 + bad + 1}, column {col!r}: empty value")
            vecs[:, j] = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False))
    else:
        return None
    # A row sum is finite when every value is (barring overflow near float32's max,
    # which only sends such rows to the exact check): one pass, no (n, d) temporary.
    if np.isfinite(vecs.sum(axis=1)).all():
        return vecs
    finite = np.isfinite(vecs)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        col = cols[j]
        raise InputError(f"{path}: row {row0 + i + 1}, column {col!r}: {vecs[i, j]} is not a "
                         "finite number")
    return vecs


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_fragments(arr: pa.Array) -> pa.Array:
    """Each value of a column as JSON text (a string array, no nulls), built by Arrow
    kernels where the type allows and by `json.dumps` otherwise."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
            quoted = pc.binary_join_element_wise('"', arr, '"', "")
            return pc.fill_null(quoted, "null")
        enc = json.encoder.encode_basestring
        return pa.array([enc(v) if v is not None else "null" for v in arr.to_pylist()], pa.string())
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if pa.types.is_floating(t):  # NaN and infinities are not JSON: they become null
            arr = pc.if_else(pc.is_finite(arr), arr, pa.scalar(None, t))
        return pc.fill_null(pc.cast(arr, pa.string()), "null")  # bools cast to true/false
    dumps = json.dumps
    return pa.array([dumps(v, default=str) for v in arr.to_pylist()], pa.string())


_INT_TEXT = r"^-?[0-9]{1,18}$"
_FLOAT_TEXT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _is_text(arr: pa.Array) -> bool:
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def _numeric_text_masks(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(integer-looking, other number-looking) masks of a string array, nulls false."""
    is_int = pc.fill_null(pc.match_substring_regex(arr, _INT_TEXT), False)
    is_float = pc.and_(pc.fill_null(pc.match_substring_regex(arr, _FLOAT_TEXT), False),
                       pc.invert(is_int))
    return is_int, is_float


def _canonical_fragments(arr: pa.Array) -> pa.Array:
    """A string column's JSON fragments with every number-looking value written as the
    number a numeric column would hold ("3.50" as 3.5, "007" as 7) and "true"/"false"
    as booleans: the form a CSV reader gives the column when no other value in it makes
    it text."""
    quoted = _json_fragments(arr)
    is_int, is_float = _numeric_text_masks(arr)
    null_str = pa.scalar(None, arr.type)
    as_int = pc.cast(pc.cast(pc.if_else(is_int, arr, null_str), pa.int64()), pa.string())
    number = pc.cast(pc.if_else(is_float, arr, null_str), pa.float64())
    # Like a numeric column's fragments: a non-finite value is JSON null.
    finite = pc.if_else(pc.is_finite(number), number, pa.scalar(None, pa.float64()))
    as_float = pc.fill_null(pc.cast(finite, pa.string()), "null")
    is_bool = pc.fill_null(pc.is_in(arr, pa.array(["true", "false"])), False)
    out = pc.if_else(is_int, as_int, quoted)
    out = pc.if_else(is_float, as_float, out)
    return pc.if_else(is_bool, pc.cast(arr, pa.string()), out)


def has_number_text(batch: pa.RecordBatch, columns: list[str]) -> bool:
    """Whether a text metadata column of the batch holds a number-looking value (or
    true/false), i.e. whether ``metadata_json(..., canonical=True)`` differs."""
    for c in columns:
        arr = batch.column(c)
        if _is_text(arr):
            is_int, is_float = _numeric_text_masks(arr)
            if (pc.any(is_int).as_py() or pc.any(is_float).as_py()
                    or pc.any(pc.is_in(arr, pa.array(["true", "false"]))).as_py()):
                return True
    return False


def metadata_json(batch: pa.RecordBatch, columns: list[str], *,
                  canonical: bool = False) -> pa.Array | None:
    """Per row, the kept metadata columns as JSON text, as a string array (None when
    there are no such columns). One Arrow join over per-column fragments: O(rows·columns)
    in C++, no per-row Python.

    ``canonical``: number-looking text written as numbers (see ``_canonical_fragments``),
    for content hashes that stay the same when one bad cell turned a numeric CSV column
    into text (or its fix turned it back); what is stored stays ``canonical=False``."""
    if not columns:
        return None
    pieces: list = []
    for k, c in enumerate(sorted(columns)):
        pieces.append(("{" if k == 0 else ", ") + json.dumps(c) + ": ")
        arr = batch.column(c)
        pieces.append(_canonical_fragments(arr) if canonical and _is_text(arr)
                      else _json_fragments(arr))
    pieces.append("}")
    return pc.binary_join_element_wise(*pieces, "")
