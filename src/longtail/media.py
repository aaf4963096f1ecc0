"""Media files of a pool (images): opened safely and located under the project's media
root. Shared by the image ingest (longtail.ingest.images) and the pixels encoder, so
neither package imports the other."""

from __future__ import annotations

import warnings
from pathlib import Path

from longtail.errors import InputError


def open_image(path: Path):  # noqa: ANN201 - PIL.Image.Image, imported lazily
    """The image at ``path`` decoded, EXIF orientation applied; raises InputError naming
    the file when Pillow cannot read it or it passes the decompression-bomb limit."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns between the limit and twice it; treat the warning as the error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: larger than Pillow's decompression-bomb limit "
                         f"({Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not an image Pillow can read ({exc})") from None


def media_path(root: str | Path, rel: str) -> Path:
    """The file of media path ``rel`` under ``root``; InputError if it escapes the root."""
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise InputError(f"media path {rel!r} is outside the media root")
    return target
