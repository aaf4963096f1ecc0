"""Label files: one record per row (id, label, annotator, seconds), read and checked.

An empty label cell means the annotator skipped the item: a ``skip`` record, not an
error, so a batch file can come back partly labeled. Two literal values mark the
other non-answers: ``__skip__`` (skipped on purpose) and ``__unsure__`` (seen, no
confident answer). Neither is ever a class. Which ids exist is the caller's check
(it needs the store).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from longtail.csv_cells import restore
from longtail.errors import InputError
from longtail.ingest.mapping import ColumnMapping, column_strings, resolve
from longtail.ingest.readers import TableSource

SKIP = "__skip__"
UNSURE = "__unsure__"
Kind = Literal["label", "skip", "unsure"]


@dataclass(frozen=True)
class LabelRecord:
    """One row of a label file. ``label`` is None unless ``kind`` is "label";
    ``line`` is the 1-based data row in the file (the header not counted)."""

    id: str
    label: str | None
    annotator: str | None
    seconds: float | None
    kind: Kind
    line: int


def label_kind(value: str | None) -> tuple[Kind, str | None]:
    """(kind, label) of one label cell: blank or ``__skip__`` -> skip, ``__unsure__``
    -> unsure, anything else -> that label without surrounding spaces."""
    if value is None or value.strip() == "" or value.strip() == SKIP:
        return "skip", None
    if value.strip() == UNSURE:
        return "unsure", None
    return "label", value.strip()


def read_label_records(path: str | Path, *, id: str = "id", label: str = "label",
                       annotator: str | None = None, seconds: str | None = None,
                       delimiter: str | None = None) -> list[LabelRecord]:
    """Every row of a CSV, JSONL or Parquet label file as a LabelRecord, in file order.

    Raises InputError naming file, row and column for a missing column, an empty id,
    a seconds value that is not a non-negative number, or a file without rows.
    O(rows) time and memory.
    """
    src = TableSource(path, delimiter=delimiter)
    where = str(src.path)
    mapping = ColumnMapping(id=id, label=label, annotator=annotator, seconds=seconds,
                            metadata=())
    resolve(mapping, list(src.schema.names), where)
    records: list[LabelRecord] = []
    row0 = 0
    for batch in src.batches():
        ids = column_strings(batch, id, where, row0, allow_null=False)
        labels = column_strings(batch, label, where, row0, allow_null=True)
        who = (column_strings(batch, annotator, where, row0, allow_null=True)
               if annotator else [None] * len(ids))
        secs: list[float | None] = [None] * len(ids)
        if seconds:
            for i, v in enumerate(batch.column(seconds).to_pylist()):
                secs[i] = _seconds(v, where, row0 + i + 1, seconds)
        if src.format in ("csv", "tsv"):
            # Cells we marked against spreadsheet formulas (a batch file we wrote,
            # filled in) come back as they were.
            ids = [restore(x) for x in ids]
            labels = [restore(x) for x in labels]
            who = [restore(x) for x in who]
        for i, ext in enumerate(ids):
            kind, value = label_kind(labels[i])
            # A blank annotator cell (CSV reads it as "") is no annotator.
            records.append(LabelRecord(ext, value, who[i] or None, secs[i], kind, row0 + i + 1))
        row0 += len(ids)
    if not records:
        raise InputError(f"{where}: the file has no rows")
    return records


def _seconds(value: object, where: str, line: int, column: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: row {line}, column {column!r}: {value!r} "
                         "is not a number of seconds") from None
    if not (number >= 0 and math.isfinite(number)):
        raise InputError(f"{where}: row {line}, column {column!r}: "
                         f"{value!r} is not a non-negative number of seconds")
    return number
