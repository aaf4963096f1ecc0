"""Append-only, chunked, memory-mapped vector files: one set per encoder.

Row r of a set lives in chunk r // CHUNK_ROWS at offset r % CHUNK_ROWS. Chunks are
`.npy` files preallocated to CHUNK_ROWS rows (sparse on disk until written), so a
write never rewrites earlier data and a read maps only the chunks it touches. How
many rows are valid is recorded in the catalog (`vector_sets.n_rows`), inside the same
transaction as the samples they belong to: bytes written past it by an interrupted
command are invisible and simply overwritten next time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from longtail.pages import release
from longtail.store.redo import fsync_path

CHUNK_ROWS = 131_072
DTYPES = {"float32": np.float32, "float16": np.float16}


def _flush_and_drop(fd: int) -> None:
    """Put a finished chunk on disk and drop its pages from the page cache. A large
    ingest then streams through a bounded cache instead of filling memory with pages it
    never reads again, and the disk works while later batches are parsed rather than
    all at the final sync."""
    os.fdatasync(fd)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class VectorSet:
    """The vectors of one encoder, addressed by sample row number.

    Implements the strategies' VectorReader protocol: `n_rows`, `dim`, `read`,
    `iter_chunks`. Reads return float32 whatever the stored dtype.
    """

    def __init__(self, directory: Path, dim: int, dtype: str = "float32", n_rows: int = 0):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.directory = Path(directory)
        self.dim = int(dim)
        self.dtype = dtype
        self.n_rows = int(n_rows)
        self._maps: dict[int, np.memmap] = {}
        self._offsets: dict[int, int] = {}  # chunk -> byte offset of row 0 (its header size)
        self._dirty: set[int] = set()

    @property
    def nbytes(self) -> int:
        return self.n_rows * self.dim * np.dtype(DTYPES[self.dtype]).itemsize

    def _chunk_path(self, chunk: int) -> Path:
        return self.directory / f"chunk-{chunk:06d}.npy"

    def _chunk(self, chunk: int, need: int = CHUNK_ROWS) -> np.ndarray:
        """Read-only map of a chunk's rows as far as the file goes, cached; remapped when
        the cached map is shorter than `need` rows (the file grew since)."""
        mm = self._maps.get(chunk)
        if mm is not None and len(mm) >= need:
            return mm
        path = self._chunk_path(chunk)
        offset = self._data_offset(chunk, create=False)
        itemsize = np.dtype(DTYPES[self.dtype]).itemsize
        rows = min(CHUNK_ROWS, (path.stat().st_size - offset) // (self.dim * itemsize))
        if rows <= 0:
            return np.zeros((0, self.dim), dtype=DTYPES[self.dtype])
        mm = np.memmap(path, dtype=DTYPES[self.dtype], mode="r", offset=offset,
                       shape=(rows, self.dim))
        self._maps[chunk] = mm
        return mm

    def _data_offset(self, chunk: int, create: bool = True) -> int:
        """Byte offset of row 0 in a chunk file. A new chunk file is only its `.npy`
        header, shaped for CHUNK_ROWS rows; rows are appended by `write`, so the file
        holds what was written and no holes. Files written before this were pre-sized;
        both read the same."""
        if chunk in self._offsets:
            return self._offsets[chunk]
        self._offsets[chunk] = offset = self._read_or_create_header(chunk, create)
        return offset

    def _read_or_create_header(self, chunk: int, create: bool) -> int:
        path = self._chunk_path(chunk)
        if not path.exists():
            if not create:
                raise FileNotFoundError(path)
            self.directory.mkdir(parents=True, exist_ok=True)
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(DTYPES[self.dtype])),
                      "fortran_order": False, "shape": (CHUNK_ROWS, self.dim)}
            with open(path, "xb") as f:
                np.lib.format.write_array_header_1_0(f, header)
                return f.tell()
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            if major == 1:
                np.lib.format.read_array_header_1_0(f)
            else:
                np.lib.format.read_array_header_2_0(f)
            return f.tell()

    def write(self, start: int, vectors: np.ndarray) -> None:
        """Write `vectors` (n, dim) at rows [start, start+n). Does not change `n_rows`:
        the caller commits the new count in the catalog. O(n·dim) time; written with
        pwrite rather than through a mapping, which saves a page fault per 4 KiB."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {vectors.shape}")
        vectors = np.ascontiguousarray(vectors, dtype=DTYPES[self.dtype])
        row_bytes = self.dim * vectors.itemsize
        pos, end = start, start + len(vectors)
        while pos < end:
            chunk, offset = divmod(pos, CHUNK_ROWS)
            take = min(CHUNK_ROWS - offset, end - pos)
            base = self._data_offset(chunk)
            self._maps.pop(chunk, None)  # the file may grow past a cached map's end
            view = memoryview(vectors[pos - start : pos - start + take]).cast("B")
            fd = os.open(self._chunk_path(chunk), os.O_WRONLY)
            try:
                done = 0
                while done < len(view):
                    done += os.pwrite(fd, view[done:], base + offset * row_bytes + done)
                full = offset + take == CHUNK_ROWS
                if full:
                    _flush_and_drop(fd)
            finally:
                os.close(fd)
            if full:
                self._dirty.discard(chunk)
            else:
                self._dirty.add(chunk)
            pos += take

    def sync(self) -> None:
        """fsync every chunk written since the last sync. Called before the catalog
        commits the new row count, so the count never points at vectors still in cache."""
        for chunk in sorted(self._dirty):
            fsync_path(self._chunk_path(chunk))
        self._dirty.clear()

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of `rows` (any order, repeats allowed) as float32 (len(rows), dim).
        Touches only the chunks those rows live in."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.n_rows:
            raise IndexError(f"row out of range [0, {self.n_rows}) in vector set {self.directory.name}")
        chunks = rows // CHUNK_ROWS
        for chunk in np.unique(chunks):
            mask = chunks == chunk
            local = rows[mask] - chunk * CHUNK_ROWS
            out[mask] = self._chunk(int(chunk), int(local.max()) + 1)[local]
            if len(rows) >= 256:  # scattered reads fault in whole read-ahead windows
                self._release_span(rows[mask])
        return out

    def iter_chunks(
        self, rows: np.ndarray | None = None, chunk_rows: int = 65_536
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (row numbers, float32 vectors) in pieces of at most `chunk_rows`.
        Memory is O(chunk_rows·dim) whatever the pool size."""
        if rows is None:
            for start in range(0, self.n_rows, chunk_rows):
                stop = min(start + chunk_rows, self.n_rows)
                piece = np.arange(start, stop, dtype=np.int64)
                chunk, offset = divmod(start, CHUNK_ROWS)
                if (stop - 1) // CHUNK_ROWS == chunk:
                    block = self._chunk(chunk, offset + len(piece))[offset : offset + len(piece)]
                    yield piece, np.asarray(block, dtype=np.float32)
                    release(block)  # a pass over the pool stays O(chunk) resident
                else:
                    yield piece, self.read(piece)
            return
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1 and bool(np.all(rows[1:] > rows[:-1])) and rows[0] >= 0 \
                and rows[-1] < self.n_rows:
            # Sorted rows (the candidates of a query, most of the pool): walk the chunk
            # files in order and gather each piece from one contiguous mapped range.
            edges = np.searchsorted(rows, np.arange(0, self.n_rows + CHUNK_ROWS, CHUNK_ROWS))
            for chunk in range(len(edges) - 1):
                for start in range(int(edges[chunk]), int(edges[chunk + 1]), chunk_rows):
                    piece = rows[start : min(start + chunk_rows, int(edges[chunk + 1]))]
                    lo = int(piece[0]) - chunk * CHUNK_ROWS
                    hi = int(piece[-1]) - chunk * CHUNK_ROWS + 1
                    block = self._chunk(chunk, hi)[lo:hi]
                    yield piece, np.asarray(block[piece - piece[0]], dtype=np.float32)
                    release(block)
            return
        for start in range(0, len(rows), chunk_rows):
            piece = rows[start : start + chunk_rows]
            yield piece, self.read(piece)

    def _release_span(self, rows: np.ndarray) -> None:
        """Give back the mapped pages between the smallest and largest of `rows`."""
        if len(rows) == 0:
            return
        lo, hi = int(rows.min()), int(rows.max()) + 1
        for chunk in range(lo // CHUNK_ROWS, (hi - 1) // CHUNK_ROWS + 1):
            if chunk in self._maps:
                a = max(lo - chunk * CHUNK_ROWS, 0)
                b = min(hi - chunk * CHUNK_ROWS, CHUNK_ROWS)
                release(self._maps[chunk][a:b])

    def rows_on_disk(self) -> int:
        """Rows the chunk files hold, counted from their sizes (issue 20's `check`: the
        files must hold at least the catalog's `n_rows`). Stops at the first short chunk."""
        total, chunk = 0, 0
        while self._chunk_path(chunk).exists():
            have = len(self._chunk(chunk, CHUNK_ROWS))
            total += have
            if have < CHUNK_ROWS:
                break
            chunk += 1
        return total

    def close(self) -> None:
        self._maps.clear()
