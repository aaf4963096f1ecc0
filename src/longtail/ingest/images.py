"""Image pools: a folder of images (class sub-folders optional) becomes a table of rows.

Each image is one sample whose metadata holds ``media`` (its path relative to the
media root, with ``/`` separators), its pixel size, file size, the SHA-256 of its bytes
and a 64-bit difference hash (``dhash``, a perceptual hash: near-identical images differ
in a few bits). The media root is kept in the project's settings, so the folder can
move with ``longtail settings media_root NEW``.

Every file is opened with Pillow before anything is written: a file Pillow cannot
read, a truncated one, or one past Pillow's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS``, kept as Pillow sets it) is named in one error and the
ingest writes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longtail.columns import natural_sorted
from longtail.errors import InputError
from longtail.media import open_image

# The extensions looked at in a folder (Pillow reads more; these are what people keep).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
MEDIA = "media"


@dataclass(frozen=True)
class ImageFile:
    """One image found in a folder: its path under the root, the class sub-folder it
    sits in (None at the top level) and what reading it told."""

    media: str
    folder: str | None
    width: int
    height: int
    bytes: int
    sha256: str
    dhash: str


def scan_folder(root: Path) -> list[tuple[str, str | None]]:
    """``(relative path, first sub-folder or None)`` of every image under ``root``, in
    natural order. Hidden files and folders are skipped. Raises InputError when the
    folder does not exist or holds no image."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of images")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(rel.as_posix())
    if not found:
        raise InputError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this "
                         "folder or its sub-folders")
    return [(rel, rel.split("/")[0] if "/" in rel else None) for rel in natural_sorted(found)]


def dhash(im, size: int = 8) -> str:  # noqa: ANN001 - PIL image
    """The difference hash of an image as 16 hex digits: grey, (size+1)×size pixels,
    one bit per horizontal neighbour pair. Near-identical images (resized, recompressed)
    differ in a few of the 64 bits."""
    grey = np.asarray(im.convert("L").resize((size + 1, size)), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def read_images(root: Path, found: list[tuple[str, str | None]]) -> Iterator[ImageFile]:
    """Read each image once: size, hashes. Raises InputError naming the first bad files
    (up to five, and how many more) after looking at all of them."""
    bad: list[str] = []
    good: list[ImageFile] = []
    for rel, folder in found:
        path = Path(root) / rel
        try:
            im = open_image(path)
        except InputError as exc:
            bad.append(str(exc))
            continue
        data = path.read_bytes()
        good.append(ImageFile(rel, folder, im.width, im.height, len(data),
                              hashlib.sha256(data).hexdigest(), dhash(im)))
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise InputError(f"{len(bad)} of {len(found)} files cannot be ingested, nothing was "
                         f"written: {'; '.join(bad[:5])}{more}")
    yield from good


def image_table(root: Path, *, folder_labels: bool = False):  # noqa: ANN201 - pyarrow.Table
    """The rows an image folder becomes: ``id`` (the relative path), ``media``, the size
    and hashes, and ``label`` (the class sub-folder) when ``folder_labels``. Raises
    InputError for a missing folder, no images, bad files, or ``folder_labels`` with
    images outside any sub-folder."""
    import pyarrow as pa

    found = scan_folder(root)
    if folder_labels:
        loose = [rel for rel, folder in found if folder is None]
        if loose:
            raise InputError(f"{root}: --folder-labels reads each image's class from its "
                             f"sub-folder, but {len(loose)} image(s) sit at the top level "
                             f"(e.g. {loose[0]!r}); move them into a class folder")
    images = list(read_images(root, found))
    cols = {
        "id": [im.media for im in images],
        MEDIA: [im.media for im in images],
        "width": [im.width for im in images],
        "height": [im.height for im in images],
        "bytes": [im.bytes for im in images],
        "sha256": [im.sha256 for im in images],
        "dhash": [im.dhash for im in images],
    }
    if folder_labels:
        cols["label"] = [im.folder for im in images]
    return pa.table(cols)
