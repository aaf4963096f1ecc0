"""The batch file a person labels: one row per sample to label, ready to fill in.

Columns, in order: ``id``; ``text`` (left out when no sample of the batch has any,
as in a tabular pool); the feature columns (tabular data, natural order: f0, f1, ...,
f10); a blank ``label`` column to fill; ``kind`` (eval / control / select ...) and
``round``; then the other metadata as ``meta_NAME``. An empty label cell comes back
as a skip (see ``longtail.ingest.labels``), so a row can be left blank.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

from longtail.columns import natural_sorted
from longtail.errors import InputError

BATCH_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
_RESERVED = ("id", "text", "label", "kind", "round")


def write_batch_file(path: str | Path, records: Sequence[tuple[int, str, str | None, dict]],
                     kinds: Sequence[str], round_id: int, *,
                     feature_columns: Sequence[str] | None = None,
                     overwrite: bool = False) -> Path:
    """Write the samples ``records`` (the store's ``(row, id, text, metadata)`` tuples)
    to label as CSV or JSONL, by ``path``'s suffix; returns the path.

    ``kinds[i]`` is record i's kind in round ``round_id``. ``feature_columns`` (the
    tabular encoder's columns, as ``describe()["columns"]`` gives them) are written
    under their own names right after the id (or text); None: no feature columns.
    An existing file is an InputError unless ``overwrite``; the file is written to a
    temporary name and renamed, so a failure leaves no half-written batch.
    O(batch · columns) time and memory.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in BATCH_SUFFIXES:
        raise InputError(f"{path}: export as .csv or .jsonl")
    if len(kinds) != len(records):
        raise ValueError(f"{len(records)} records but {len(kinds)} kinds")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: the file exists; choose another --out or pass --overwrite "
                         "to replace it")
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    features = list(feature_columns or [])
    has_text = any(isinstance(t, str) and t.strip() for _, _, t, _ in records)
    # A feature named like a fixed column keeps the meta_ prefix rather than clash.
    feature_names = {c: (f"meta_{c}" if c in _RESERVED else c) for c in features}
    others = natural_sorted({k for _, _, _, meta in records for k in meta} - set(features))
    fields = ["id", *(["text"] if has_text else []), *feature_names.values(), "label", "kind",
              "round", *(f"meta_{k}" for k in others)]
    rows = []
    for (_, ext, text, meta), kind in zip(records, kinds, strict=True):
        row = {"id": ext}
        if has_text:
            row["text"] = text if text is not None else ""
        row.update({name: meta.get(c) for c, name in feature_names.items()})
        row.update({"label": "", "kind": kind, "round": round_id})
        row.update({f"meta_{k}": meta.get(k) for k in others})
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            if suffix == ".csv":
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
            else:
                for row in rows:
                    f.write(json.dumps(row, default=str) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
