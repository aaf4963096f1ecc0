"""The batch file a person labels: one row per sample to label, ready to fill in.

Columns, in order: ``id``; ``text`` (left out when no sample of the batch has any,
as in a tabular pool) or ``media`` (an image's file); a blank ``label`` column to
fill; then the samples' metadata under the names they were ingested with, in the
pool's column order (its files' order; columns it does not know after them, in natural
order: f0, f1, ..., f10); then
``kind`` (eval / selected / relabel ...) and ``round``. A metadata column named like
one of the fixed columns is written as ``meta_NAME`` so that neither is lost. An empty
label cell comes back as a skip (see ``longtail.ingest.labels``), so a row can be left
blank.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

from longtail.columns import natural_sorted
from longtail.csv_cells import neutralise_row
from longtail.errors import InputError

BATCH_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
_RESERVED = ("id", "text", "label", "kind", "round")
MEDIA = "media"  # the metadata key of an image sample's file (longtail.ingest.images)


def write_batch_file(path: str | Path, records: Sequence[tuple[int, str, str | None, dict]],
                     kinds: Sequence[str], round_id: int, *,
                     column_order: Sequence[str] | None = None,
                     overwrite: bool = False) -> Path:
    """Write the samples ``records`` (the store's ``(row, id, text, metadata)`` tuples)
    to label as CSV or JSONL, by ``path``'s suffix; returns the path.

    ``kinds[i]`` is record i's kind in round ``round_id``. ``column_order`` is the
    pool's metadata columns in its files' order (``SamplesRepo.column_order``); the
    metadata columns are written in that order, by their own names.
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
    has_text = any(isinstance(t, str) and t.strip() for _, _, t, _ in records)
    present = {k for _, _, _, meta in records for k in meta}
    known = [c for c in dict.fromkeys(column_order or []) if c in present]
    keys = [k for k in known + natural_sorted(present - set(known)) if k != MEDIA]
    media = [MEDIA] if MEDIA in present else []  # an image's file: what the person looks at
    # A metadata column named like a fixed column keeps a meta_ prefix rather than clash.
    names = {k: (f"meta_{k}" if k in _RESERVED else k) for k in keys}
    fields = ["id", *(["text"] if has_text else []), *media, "label", *names.values(), "kind",
              "round"]
    rows = []
    for (_, ext, text, meta), kind in zip(records, kinds, strict=True):
        row = {"id": ext}
        if has_text:
            row["text"] = text if text is not None else ""
        if media:
            row[MEDIA] = meta.get(MEDIA)
        row["label"] = ""
        row.update({name: meta.get(k) for k, name in names.items()})
        row.update({"kind": kind, "round": round_id})
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            if suffix == ".csv":
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(neutralise_row(r) for r in rows)
            else:
                for row in rows:
                    f.write(json.dumps(row, default=str) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
