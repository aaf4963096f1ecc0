"""Signed, expiring media URLs: an `<img>` and Label Studio send no bearer token, so an
image is reached through a URL that carries its own proof — an HMAC-SHA256 of the row,
the size and the expiry under the server's media secret. A URL works until it expires
(default one hour) and only for the row and size it names; nobody can make one without
the secret. The secret is random per server start unless `serve --media-secret` gives
one (several servers behind one address need the same)."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from typing import Any

MEDIA_TTL = 3600.0


def signature(secret: bytes, row: int, size: int, expires: int) -> str:
    """The hex HMAC of one media URL."""
    msg = f"{int(row)}:{int(size)}:{int(expires)}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def media_url(secret: bytes, row: int, now: float, *, size: int = 0,
              ttl: float = MEDIA_TTL) -> str:
    """The path of the image of `row` (size 0: the original, else a thumbnail of that
    size), valid for `ttl` seconds from `now`."""
    expires = int(math.ceil(now + ttl))
    sig = signature(secret, row, size, expires)
    return f"/media/{int(row)}?size={int(size)}&expires={expires}&sig={sig}"


def valid(secret: bytes, row: int, size: int, expires: int, sig: str, now: float) -> bool:
    """Whether a media URL's signature is right and it has not expired."""
    if expires < now:
        return False
    return hmac.compare_digest(signature(secret, row, size, expires), sig)


# Label Studio keeps imported tasks for days; their image links last a week.
LABEL_STUDIO_TTL = 7 * 86400.0


def label_studio_urls(svc: Any, base_url: str) -> Callable[[int, str], str]:
    """The absolute signed URL of each image in a Label Studio export (`base_url` the
    address Label Studio reaches this server at)."""
    now = svc.clock()
    base = base_url.rstrip("/")
    return lambda row, _rel: base + media_url(svc.media_secret, row, now, size=0,
                                              ttl=LABEL_STUDIO_TTL)


THUMB = 96  # the dashboard's thumbnails (one of the sizes cached in cache/thumbs/)


def thumb_url(svc: Any, row: int, metadata: dict | None) -> str | None:
    """A signed link to the thumbnail of `row` when it is an image (its metadata has a
    ``media`` path), else None."""
    if not metadata or not metadata.get("media"):
        return None
    return media_url(svc.media_secret, row, svc.clock(), size=THUMB)
