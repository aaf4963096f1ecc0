"""Texts and metadata beside the catalog: Arrow IPC files per ingest batch.

The catalog keeps a sample's id, content hash, split and batch; its text and its
metadata (JSON text) live in `columns/batch-<id>/part-<first pos>.arrow`, and the
catalog's `samples.pos` says where: position `pos` of its batch, counting over the
batch's parts in order. A part is written whole (to a temporary name, fsynced, then
renamed) before the transaction that points rows at it commits, so a committed row
always finds its text; a rolled-back ingest leaves parts that nothing points to, which
the next batch of the same id (SQLite reuses a rolled-back id) clears first.

Reads memory-map the parts (no copy until a value is taken) and take rows by position:
O(rows asked) per read, whatever the pool's size. Rows whose `pos` is NULL (a batch
with neither text nor metadata, say vectors only) have no text and no metadata.
"""

from __future__ import annotations

import bisect
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from longtail.errors import ProjectError
from longtail.store.redo import fsync_path

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a part is read or written, not with the store: `status`,
# `search` and the service's hot paths never touch a text column and should not pay
# for pyarrow (tests/test_imports.py).
DIR = "columns"


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("text", pa.large_string()), ("meta", pa.large_string())])


def batch_dir(root: Path, batch_id: int) -> Path:
    return Path(root) / DIR / f"batch-{int(batch_id):08d}"


def _column(values: pa.Array | list | None, n: int) -> pa.Array:
    import pyarrow as pa

    if values is None:
        return pa.nulls(n, pa.large_string())
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) != n:
        raise ValueError(f"{len(arr)} values for {n} rows")
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def clear_batch(root: Path, batch_id: int) -> None:
    """Remove what a rolled-back batch of this id left (nothing committed points there)."""
    shutil.rmtree(batch_dir(root, batch_id), ignore_errors=True)


def write_part(root: Path, batch_id: int, first_pos: int, text: pa.Array | list | None,
               meta: pa.Array | list | None, n: int) -> None:
    """Write positions [first_pos, first_pos + n) of batch `batch_id`: `text` and `meta`
    (JSON text) as string arrays or lists (None: all null). Durable when it returns."""
    import pyarrow as pa

    folder = batch_dir(root, batch_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    table = pa.table([_column(text, n), _column(meta, n)], schema=_schema())
    path = folder / f"part-{int(first_pos):012d}.arrow"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, _schema()) as writer:
        writer.write_table(table, max_chunksize=1 << 16)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(folder)


def _indices(local: np.ndarray) -> pa.Array:
    """Positions as an Arrow int64 array, over the numpy buffer: `pa.array` would ask
    whether its argument is a pandas object first, and importing pandas for that costs
    a `longtail search` more than its search (issue 30)."""
    import pyarrow as pa

    local = np.ascontiguousarray(local, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(local), [None, pa.py_buffer(local)])


# path -> (the file's identity, its memory-mapped table), shared by every reader of the
# process: the service makes a reader per transaction (a unit of work) and asks one row
# at a time, and opening a part costs more than taking a row from it. A part is never
# changed in place, but a rolled-back batch's id can come back with new parts of the
# same names (see above): the identity (inode, size, mtime) tells them apart.
_OPEN: dict[str, tuple[tuple[int, int, int], pa.Table]] = {}
_OPEN_MAX = 256  # bound the open maps
_open_lock = threading.Lock()


def _open_part(path: Path) -> pa.Table:
    import pyarrow as pa

    st = os.stat(path)
    ident = (st.st_ino, st.st_size, st.st_mtime_ns)
    got = _OPEN.get(str(path))
    if got is not None and got[0] == ident:
        return got[1]
    table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    with _open_lock:
        if len(_OPEN) >= _OPEN_MAX:
            _OPEN.clear()
        _OPEN[str(path)] = (ident, table)
    return table


class ColumnReader:
    """Reads texts and metadata by (batch, pos); parts are memory-mapped once each per
    process (`_open_part`)."""

    def __init__(self, root: Path):

        self.root = Path(root)
        self._parts: dict[int, tuple[list[int], list[Path]]] = {}
        self._tables: dict[Path, pa.Table] = {}

    def _index(self, batch_id: int) -> tuple[list[int], list[Path]]:
        got = self._parts.get(batch_id)
        if got is None:
            folder = batch_dir(self.root, batch_id)
            paths = sorted(folder.glob("part-*.arrow")) if folder.is_dir() else []
            got = ([int(p.stem.split("-")[1]) for p in paths], paths)
            self._parts[batch_id] = got
        return got

    def _table(self, path: Path) -> pa.Table:
        table = self._tables.get(path)
        if table is None:
            if len(self._tables) >= _OPEN_MAX:
                self._tables.clear()
            table = _open_part(path)
            self._tables[path] = table
        return table

    def read(self, batch_ids: np.ndarray, pos: np.ndarray
             ) -> tuple[list[str | None], list[str | None]]:
        """(texts, metadata JSON texts) of the rows at `pos` of batches `batch_ids`
        (int64 arrays; pos < 0 means none stored: None, None). In the given order."""
        n = len(pos)
        if n == 1:
            text, meta = self.one(int(batch_ids[0]), int(pos[0]))
            return [text], [meta]
        texts: list[str | None] = [None] * n
        metas: list[str | None] = [None] * n
        batch_ids = np.asarray(batch_ids, dtype=np.int64)
        pos = np.asarray(pos, dtype=np.int64)
        has = pos >= 0
        for b in np.unique(batch_ids[has]).tolist():
            starts, paths = self._index(b)
            sel = np.flatnonzero(has & (batch_ids == b))
            p = pos[sel]
            part = np.searchsorted(np.asarray(starts, dtype=np.int64), p, side="right") - 1
            for k in np.unique(part).tolist():
                if k < 0:
                    raise ProjectError(f"{batch_dir(self.root, b)}: no part holds position "
                                       f"{int(p.min())} (the project's column files are incomplete)")
                table = self._table(paths[k])
                here = part == k
                local = p[here] - starts[k]
                if local.max() >= table.num_rows:
                    raise ProjectError(f"{paths[k]}: holds {table.num_rows} rows, position "
                                       f"{int(local.max())} asked (the column files are incomplete)")
                idx = _indices(local)
                tv = table.column("text").take(idx).to_pylist()
                mv = table.column("meta").take(idx).to_pylist()
                for j, t, m in zip(sel[here].tolist(), tv, mv, strict=True):
                    texts[j] = t
                    metas[j] = m
        return texts, metas

    def one(self, batch_id: int, pos: int) -> tuple[str | None, str | None]:
        """(text, metadata JSON text) of one row (the service's task), without the array
        bookkeeping of `read`."""
        if pos < 0:
            return None, None
        starts, paths = self._index(batch_id)
        k = bisect.bisect_right(starts, pos) - 1
        if k < 0:
            raise ProjectError(f"{batch_dir(self.root, batch_id)}: no part holds position "
                               f"{pos} (the project's column files are incomplete)")
        table = self._table(paths[k])
        local = pos - starts[k]
        if local >= table.num_rows:
            raise ProjectError(f"{paths[k]}: holds {table.num_rows} rows, position "
                               f"{local} asked (the column files are incomplete)")
        return table.column("text")[local].as_py(), table.column("meta")[local].as_py()

    def blank_text(self, batch_ids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Boolean mask: the row has no text, or only whitespace. Vectorised per part."""
        import pyarrow.compute as pc

        batch_ids = np.asarray(batch_ids, dtype=np.int64)
        pos = np.asarray(pos, dtype=np.int64)
        out = pos < 0
        for b in np.unique(batch_ids[~out]).tolist():
            starts, paths = self._index(b)
            sel = np.flatnonzero((pos >= 0) & (batch_ids == b))
            p = pos[sel]
            part = np.searchsorted(np.asarray(starts, dtype=np.int64), p, side="right") - 1
            for k in np.unique(part).tolist():
                here = part == k
                col = self._table(paths[k]).column("text").take(_indices(p[here] - starts[k]))
                blank = pc.equal(pc.utf8_trim_whitespace(col), "")
                mask = pc.or_kleene(pc.is_null(col), blank).fill_null(True)
                out[sel[here]] = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
        return out
