"""A redo journal for vector rewrites that belong to a catalog commit.

`ingest --update` replaces the vectors of rows already in a set. Those rows are valid
(under the set's row count), so the new vectors cannot be written before the catalog
commits without showing a state the catalog never had, and writing them after the
commit leaves stale vectors forever if the process dies in between (the catalog already
holds the new content hashes, so a re-run sees nothing to do).

So the rewrite is journaled: inside the transaction, before it commits, the rows and
their new vectors are written (fsynced, renamed into place) to
`<project>/redo/ingest-<batch>-<pid>.npz` together with the batch's id and checksum.
After the commit they are applied and the journal is removed. When a project is opened,
each journal left behind by a dead process is applied if its batch is in the catalog
(the commit happened) and dropped if not (it rolled back). Applying twice writes the
same bytes, so recovery may itself be interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

REDO = "redo"


def write(root: Path, vector_set: str, batch_id: int, file_sha256: str, rows: np.ndarray,
          vectors: np.ndarray) -> Path:
    """Journal `vectors` (n, dim) for `rows` of `vector_set`, owned by ingest batch
    `batch_id` (checksum `file_sha256`); durable when this returns. O(n·dim)."""
    folder = Path(root) / REDO
    folder.mkdir(exist_ok=True)
    path = folder / f"ingest-{batch_id}-{os.getpid()}.npz"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, rows=np.asarray(rows, np.int64), vectors=np.asarray(vectors),
                 vector_set=np.array(vector_set), batch_id=np.int64(batch_id),
                 file_sha256=np.array(file_sha256), pid=np.int64(os.getpid()))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(folder)
    return path


def read(path: Path) -> dict[str, Any]:
    """A journal's contents (no pickle: every field is a plain array)."""
    with np.load(path, allow_pickle=False) as z:
        return {"rows": z["rows"], "vectors": z["vectors"], "vector_set": str(z["vector_set"]),
                "batch_id": int(z["batch_id"]), "file_sha256": str(z["file_sha256"]),
                "pid": int(z["pid"])}


def remove(path: Path) -> None:
    """Drop a journal (applied, or its transaction rolled back)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def pending(root: Path) -> list[Path]:
    """Journals left in the project, oldest batch first; unfinished temporary files
    (the process died while writing one, before its commit) are removed."""
    folder = Path(root) / REDO
    if not folder.is_dir():
        return []
    for tmp in folder.glob("*.tmp"):
        remove(tmp)
    return sorted(folder.glob("ingest-*.npz"), key=lambda p: int(p.name.split("-")[1]))


def writer_alive(pid: int) -> bool:
    """Whether the process that wrote a journal still runs (its commit may be coming)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_path(path: Path | str) -> None:
    """fsync a file or a folder by path (a folder: so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
