"""Files sent to the service: the raw body or a multipart/form-data field, streamed to
a folder of the caller's."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from longtail.errors import InputError


async def receive_file(request: Request, folder: Path, suffix: str) -> tuple[Path, str]:
    """The uploaded file written under `folder` (streamed: the raw body, or the `file`
    field of a multipart/form-data body), and the name to show in errors. The body
    limit is the Guard's (413 as soon as the stream passes it)."""
    path = folder / f"upload{suffix}"
    ctype = request.headers.get("content-type", "")
    shown = f"uploaded file{suffix and ' (' + suffix.lstrip('.') + ')'}"
    if not ctype.lower().startswith("multipart/form-data"):
        with open(path, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        if path.stat().st_size == 0:
            raise InputError("the request has no body: send the file as the body, or as the "
                             "field `file` of a multipart/form-data body")
        return path, shown
    # No python-multipart dependency: the standard library's MIME parser reads the
    # form (held in memory, at most the import limit).
    from email.parser import BytesParser
    from email.policy import HTTP

    body = await request.body()
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    part = next((x for x in parts if x.get_param("name", header="content-disposition") == "file"),
                None)
    if part is None:
        raise InputError("multipart/form-data body without a `file` field")
    path.write_bytes(part.get_payload(decode=True) or b"")
    name = part.get_filename()
    return path, (f"{Path(name).name}" if name else shown)
