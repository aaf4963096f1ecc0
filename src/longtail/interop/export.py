"""Write records (one dict per sample, the same keys in each) as Parquet, CSV or JSONL.

Written to a temporary file beside the target and renamed into place, so an
interrupted export never leaves half a file under the target's name.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from longtail.csv_cells import neutralise_row
from longtail.errors import InputError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}
COLUMNS = ("id", "text", "label", "split")


def check_target(path: Path, fmt: str | None, overwrite: bool) -> str:
    """The format to write `path` in (`fmt`, else by suffix); InputError for an unknown
    format or an existing file without `overwrite`."""
    if fmt is None:
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise InputError(f"{path}: give --format parquet, csv or jsonl (or a file ending "
                             "in .parquet, .csv or .jsonl)")
    if fmt not in ("parquet", "csv", "jsonl"):
        raise InputError(f"--format {fmt!r}: one of parquet, csv, jsonl")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists: choose another file or pass --force")
    if not path.parent.exists():
        raise InputError(f"{path}: the folder {path.parent} does not exist")
    return fmt


def write_records(path: Path, records: list[dict], fmt: str) -> None:
    """Write `records` (keys COLUMNS) to `path` in `fmt`, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({c: pa.array([r[c] for r in records], type=pa.string())
                              for c in COLUMNS})
            pq.write_table(table, tmp)
        elif fmt == "csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=list(COLUMNS))
                w.writeheader()
                w.writerows(neutralise_row(r) for r in records)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps({c: r[c] for c in COLUMNS}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
