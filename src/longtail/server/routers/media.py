"""Images of the pool through signed, expiring URLs (server/media.py): no bearer token,
the URL's signature is the permission. Leases carry `media_url` for tasks with an image."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from longtail.engine import media as media_uc
from longtail.errors import InputError
from longtail.server import media
from longtail.server.deps import Svc

router = APIRouter(tags=["media"])

MAX_ROW = 2**62


@router.get("/media/{row}", response_class=FileResponse,
            responses={200: {"description": "the image or its JPEG thumbnail",
                             "content": {"image/jpeg": {}, "image/png": {}, "image/*": {}}},
                       403: {"description": "bad or expired signature"},
                       404: {"description": "no image for this sample"}})
async def get_media(row: Annotated[int, Path(ge=0, le=MAX_ROW)],
                    svc: Svc,
                    size: Annotated[int, Query(ge=0, le=4096)] = 0,
                    expires: Annotated[int, Query(ge=0, le=2**40)] = 0,
                    sig: Annotated[str, Query(min_length=64, max_length=64,
                                              pattern="^[0-9a-f]{64}$")] = "0" * 64
                    ) -> FileResponse:
    """The image of the sample at `row` (`size` 0) or its thumbnail (96 or 256), when the
    URL's signature is valid and not expired."""
    if not media.valid(svc.media_secret, row, size, expires, sig, svc.clock()):
        raise HTTPException(403, "this media link is not valid or has expired")
    try:
        if size:
            path = await run_in_threadpool(media_uc.thumbnail, svc.store, row, size)
        else:
            path = await run_in_threadpool(media_uc.media_file, svc.store, row)
    except InputError as exc:
        raise HTTPException(404, str(exc)) from None
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})
