"""Files of the project directory that are not catalog, vectors, state or models: the
cache of embedded test files (``cache/``) and the local MLflow folder (``mlruns/``).
The engine asks for these here, so the store stays the only code that writes the
project directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CACHE_DIR = "cache"
LOCAL_TRACKING_DIR = "mlruns"


class ArrayCache:
    """Arrays kept under a key (a hex digest the caller computes from what the arrays
    depend on), one ``.npz`` per key; a write is atomic (temporary file, then
    ``os.replace``), a read never unpickles."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache key {key!r} is not a hex digest")
        return self.folder / f"test-{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays saved under `key`, or None."""
        path = self._path(key)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as got:
            return {k: got[k] for k in got.files}

    def put(self, key: str, **arrays: np.ndarray) -> None:
        """Save `arrays` under `key` (no object arrays: they would need pickle)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def labeled_file_cache(root: str | Path) -> ArrayCache:
    """The project's cache of embedded test files, ``<project>/cache``."""
    return ArrayCache(Path(root) / CACHE_DIR)


def tracking_folder(root: str | Path, folder: str | None = None, *, create: bool = False) -> Path:
    """The folder of a local MLflow store: ``<project>/mlruns`` (`folder` None), or
    `folder` (relative to the project, so the setting means the same from any working
    directory); made when `create`."""
    path = Path(root).resolve() / (LOCAL_TRACKING_DIR if folder is None
                                   else Path(folder).expanduser())
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def model_file(root: str | Path, path: str) -> Path:
    """The file of a saved model, from its catalog `path` (relative to the project)."""
    return Path(root) / path


THUMBS_DIR = "cache/thumbs"


class ThumbnailCache:
    """Small JPEG previews of a pool's images, one file per sample row and size, made
    once (atomically) and served from disk after; the catalog never holds them."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, row: int, size: int) -> Path:
        return self.folder / f"{int(size)}" / f"{int(row)}.jpg"

    def get_or_make(self, row: int, size: int, make: Callable[[], bytes]) -> Path:
        """The thumbnail file of `row` at `size`; `make()` returns its JPEG bytes when
        it is not cached yet."""
        path = self.path(row, size)
        if path.exists():
            return path
        data = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def thumbnail_cache(root: str | Path) -> ThumbnailCache:
    """The project's thumbnail cache, ``<project>/cache/thumbs``."""
    return ThumbnailCache(Path(root) / THUMBS_DIR)
