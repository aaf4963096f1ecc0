"""Release models on disk: ``<project>/releases/<id>.npz`` with ``<id>.json`` beside it.

A release model is fitted on every label the user paid for, eval labels included, so
it is kept apart from the loop's models (the catalog's `models` table), which never
see an eval row: nothing that re-scores, compares or warm-starts loop models can pick
a release up by mistake. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from longtail.errors import InputError

DIR = "releases"


def _dir(root: str | Path) -> Path:
    return Path(root) / DIR


def save_release(root: str | Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> int:
    """Write a release model's arrays and its info; returns its id (1, 2, ...)."""
    d = _dir(root)
    d.mkdir(parents=True, exist_ok=True)
    release_id = max((int(p.stem) for p in d.glob("*.json") if p.stem.isdigit()), default=0) + 1
    for suffix, write in ((".npz", lambda f: np.savez(f, **arrays)),
                          (".json", lambda f: f.write(json.dumps(
                              {**info, "id": release_id}, indent=2, default=str).encode()))):
        fd, tmp = tempfile.mkstemp(prefix=".release.", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, d / f"{release_id:06d}{suffix}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return release_id


def list_releases(root: str | Path) -> list[dict]:
    """Every release's info, oldest first."""
    return [json.loads(p.read_text()) for p in sorted(_dir(root).glob("*.json"))]


def release_arrays(root: str | Path, release_id: int) -> dict[str, np.ndarray]:
    """The arrays of release `release_id` (no pickle)."""
    path = _dir(root) / f"{int(release_id):06d}.npz"
    if not path.exists():
        raise InputError(f"no release {release_id} (see `longtail train --release`)")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
