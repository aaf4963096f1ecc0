"""Readers for CSV, JSONL and Parquet that stream pyarrow record batches.

Readers only read the user's files; they never write. Errors name the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from longtail.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return fmt


DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 1 << 16


def check_delimiter(delimiter: str | None) -> str | None:
    """`--delimiter` as given (``\\t`` or ``tab`` for a tab); an InputError unless one
    character."""
    if delimiter is None:
        return None
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(delimiter, delimiter)
    if len(value) != 1 or value in "\"\r\n":
        raise InputError(f"--delimiter must be one character (for example ';', '|' or "
                         f"'\\t'), got {delimiter!r}")
    return value


def sniff_delimiter(path: Path) -> str:
    """The delimiter of a delimited text file among , ; tab |, from its first 64 KiB:
    the one that splits the header into the most columns while every complete line of
    the sample has as many (quotes respected); ',' when none does."""
    import csv
    import io

    with open(path, "rb") as f:
        raw = f.read(SNIFF_BYTES + 1)
    text = raw[:SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    if len(raw) > SNIFF_BYTES and "\n" in text:  # drop a line cut by the sample
        text = text[: text.rindex("\n") + 1]
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if widths and widths[0] > best_width and all(w == widths[0] for w in widths):
            best, best_width = delimiter, widths[0]
    return best


class TableSource:
    """A file opened for streaming: `schema`, `num_rows` (None when unknown), `batches()`.

    A CSV's delimiter is `delimiter` when given, else sniffed among , ; tab | (a .tsv
    file: tab); `self.delimiter` says which."""

    def __init__(self, path: str | Path, batch_rows: int = 32_768, *,
                 delimiter: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if not self.path.is_file():
            raise InputError(f"{self.path}: not a file")
        self.format = file_format(self.path)
        self.batch_rows = batch_rows
        self.num_rows: int | None = None
        self.delimiter = check_delimiter(delimiter)
        if self.format in ("csv", "tsv") and self.delimiter is None:
            self.delimiter = "\t" if self.format == "tsv" else sniff_delimiter(self.path)
        try:
            if self.format == "parquet":
                # Mapped, not read: pages come straight from the page cache instead of
                # being copied into freshly allocated buffers.
                self._pf = pq.ParquetFile(self.path, memory_map=True)
                self.schema = self._pf.schema_arrow
                self.num_rows = self._pf.metadata.num_rows
            elif self.format in ("csv", "tsv"):
                self._open_csv().close()
                self.schema = self._open_csv().schema
            else:
                self._table = pajson.read_json(self.path)
                self.schema = self._table.schema
                self.num_rows = self._table.num_rows
            self.schema.names  # noqa: B018  (column names that are not UTF-8 fail here, not later)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as e:
            raise InputError(f"{self.path}: cannot read as {self.format.upper()}: {_short(e)}") from e

    def _open_csv(self) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False, null_values=[""]),
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches, decoded one ahead in a background thread: pyarrow releases
        the GIL while it decodes, so reading overlaps with validation and writes."""
        return prefetched(self._batches(), depth=1)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.format == "parquet":
                yield from self._pf.iter_batches(batch_size=self.batch_rows)
            elif self.format in ("csv", "tsv"):
                yield from self._open_csv()
            else:
                yield from self._table.to_batches(max_chunksize=self.batch_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as e:
            raise InputError(f"{self.path}: cannot read as {self.format.upper()}: {_short(e)}") from e


_DONE = object()


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """Iterate `items` in a background thread, `depth` items ahead. An exception in the
    producer is raised in the consumer; a consumer that stops early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put((_DONE, e))

    thread = threading.Thread(target=produce, daemon=True, name="longtail-reader")
    thread.start()
    try:
        while True:
            item, error = q.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
