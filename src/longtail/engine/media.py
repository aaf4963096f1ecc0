"""Media use cases: the image file behind a sample, and its cached thumbnail."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store

THUMB_SIZES = (96, 256)  # the page's preview and the labeling view


def media_of(store: Store, row: int) -> str | None:
    """The media path (relative to the media root) of the sample at `row`, or None when
    the sample has none. InputError for a row outside the pool."""
    with store.reading() as uow:
        if not 0 <= row < uow.samples.count():
            raise InputError(f"no sample at row {row}")
        batch = next(iter(uow.samples.iter(rows=np.array([row], dtype=np.int64))), [])
    if not batch:
        return None
    meta = batch[0][3] or {}
    rel = meta.get("media")
    return rel if isinstance(rel, str) and rel else None


def media_file(store: Store, row: int) -> Path:
    """The image file of the sample at `row`: InputError when it has none, when the
    project has no media root, or when the path would leave the root."""
    from longtail.media import media_path

    rel = media_of(store, row)
    if rel is None:
        raise InputError(f"the sample at row {row} has no image")
    root = Settings.load(store).media_root
    if not root:
        raise InputError("the project has no media root")
    path = media_path(root, rel)
    if not path.is_file():
        raise InputError(f"the image of row {row} is missing: {rel}")
    return path


def thumbnail(store: Store, row: int, size: int = 256) -> Path:
    """A JPEG of at most `size`×`size` pixels of the sample's image (EXIF orientation
    applied), made once and kept in the store's thumbnail cache."""
    from longtail.media import open_image
    from longtail.store.files import thumbnail_cache

    if size not in THUMB_SIZES:
        raise InputError(f"thumbnail size must be one of {', '.join(map(str, THUMB_SIZES))}")
    source = media_file(store, row)

    def make() -> bytes:
        im = open_image(source).convert("RGB")
        im.thumbnail((size, size))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=85)
        return out.getvalue()

    return thumbnail_cache(store.root).get_or_make(row, size, make)
