"""SHA-256 of a file's bytes, read in 1 MiB pieces (stdlib only: the store, ingest and
the integrity check all use it, and none of them should pay for an import)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at `path`. O(file size) time, O(1 MiB) memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()
