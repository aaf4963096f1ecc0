"""Strategy state on disk: ``<project>/state/<encoder>.npz``, one file per vector set.

The file holds the arrays of :func:`longtail.strategies.state.to_arrays` (kNN graph,
pool clusterings, ``auto``'s statistics and the record of the pool they were built
on), written with ``np.savez`` and read with ``allow_pickle=False``: a project
directory is data, never code. A write goes to a temporary file in the same folder
and replaces the old one with ``os.replace``, so a reader sees the old state or the
new one, never half of either.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from longtail.errors import InputError, ProjectError
from longtail.store.redo import fsync_path


def state_path(root: str | Path, encoder: str) -> Path:
    """``root/state/<encoder>.npz``; InputError for an encoder name that is not a plain
    file name (it would write outside ``root/state``)."""
    if not isinstance(encoder, str) or not encoder or encoder in (".", "..") or any(
            c in encoder for c in "/\\\0"):
        raise InputError(f"encoder name {encoder!r} cannot name a state file")
    return Path(root) / "state" / f"{encoder}.npz"


def save_state(root: str | Path, encoder: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (from ``to_arrays``) as the state of ``encoder``, atomically.

    Raises InputError, before anything is written, for an entry that is not an array
    or is an object array (it would need pickle). O(total bytes) time and disk.
    """
    path = state_path(root, encoder)
    for key, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.dtype == object:
            what = type(arr).__name__ if not isinstance(arr, np.ndarray) else "object array"
            raise InputError(f"state entry {key!r} for {path} is a {what}, not a plain "
                             "numpy array")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{encoder}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(root: str | Path, encoder: str,
               decode: Callable[[Mapping[str, np.ndarray]], Any]) -> Any | None:
    """The strategy state saved for ``encoder``: ``decode`` (the caller passes
    ``longtail.strategies.state.from_arrays``; the store never imports a strategy) of
    its open file, or None when there is none. Arrays are read while ``decode`` runs,
    so each Graph and Clusters knows how long its reading took.

    Raises ProjectError naming the file when it cannot be read (deleting it is safe:
    the indexes are rebuilt by the next query). O(file size).
    """
    return load_arrays(root, encoder, decode, what="strategy state",
                       remedy="the next query rebuilds its indexes")


def load_arrays(root: str | Path, name: str, decode: Callable[[Mapping[str, np.ndarray]], Any],
                *, what: str = "state", remedy: str = "it is computed again") -> Any | None:
    """``decode`` of the arrays saved under ``name`` by :func:`save_state` (e.g. an
    encoder's duplicate groups, ``<encoder>.duplicates``), or None when there are none.

    Raises ProjectError naming the file when it cannot be read: the file is a cache of
    what the engine can compute again, so deleting it is safe. O(file size).
    """
    path = state_path(root, name)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return decode(npz)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, InputError) as e:
        raise ProjectError(f"{path}: {what} cannot be read ({e}); delete the file and "
                           f"{remedy}") from None


def matrix_path(root: str | Path, name: str) -> Path:
    """``root/state/<name>.npy`` (``name`` a plain file name, as for :func:`state_path`)."""
    return state_path(root, name).with_suffix(".npy")


def write_matrix(root: str | Path, name: str, shape: tuple[int, int], dtype: Any,
                 fill: Callable[[np.ndarray], Any]) -> np.ndarray:
    """Create ``state/<name>.npy`` of ``shape`` and ``dtype``, have ``fill(out)`` write it
    through a writable memory map, and replace the old file atomically (a temporary file,
    fsync, ``os.replace``). Returns the new file opened read-only, memory-mapped.
    O(file size) disk, O(pages ``fill`` touches at once) memory."""
    path = matrix_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npy", dir=path.parent)
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(out)
        out.flush()
        del out
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode="r", allow_pickle=False)


def open_matrix(root: str | Path, name: str) -> np.ndarray | None:
    """``state/<name>.npy`` memory-mapped read-only, or None when there is none or it
    cannot be read (a cache: the caller computes it again). O(1)."""
    path = matrix_path(root, name)
    if not path.exists():
        return None
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None


def remove_matrices(root: str | Path, prefix: str, keep: str = "") -> int:
    """Delete ``state/<prefix>*.npy`` except ``state/<keep>.npy``; how many were removed."""
    folder = Path(root) / "state"
    if not folder.is_dir():
        return 0
    gone = 0
    for f in folder.glob(f"{prefix}*.npy"):
        if f.name != f"{keep}.npy":
            f.unlink(missing_ok=True)
            gone += 1
    return gone
