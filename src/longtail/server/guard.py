"""The service's outer layer: body limits (413) and the access log, as pure ASGI
middleware (no per-request task, unlike `@app.middleware`)."""

from __future__ import annotations

import inspect
import json
import logging
import time

from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("longtail.server.access")

# FastAPI >= 0.16x asks OpenTelemetry's global providers on every request whether to
# trace it; the service exports no telemetry, so the app is made with it off (older
# FastAPI has no such option).
NO_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False}}
                if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


class TooLarge(HTTPException):
    """Raised while the body streams in: FastAPI passes HTTPExceptions through its body
    parsing (any other error there becomes a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


class Guard:
    """Pure ASGI middleware (no per-request task, unlike `@app.middleware`): refuses
    bodies over `limit` bytes (over `large[path]` for the paths named there: file
    uploads) with 413, at once when Content-Length says so, else as soon as the
    streamed body passes it; adds the security headers to every response; and writes
    the access line (client address, method, path, status, time, user)."""

    def __init__(self, app: ASGIApp, limit: int, large: dict[str, int] | None = None):
        self.app, self.default, self.large = app, limit, dict(large or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        limit = self.large.get(scope.get("path", ""), self.default)

        async def sending(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                msg = {**msg, "headers": [*msg.get("headers", ()),
                                          *security_headers(scope.get("path", ""))]}
            await send(msg)

        try:
            length = next((v for k, v in scope.get("headers") or () if k == b"content-length"),
                          None)
            if length is not None and (not length.isdigit() or int(length) > limit):
                await send_json(sending, 413, f"request body over {limit} bytes")
                return
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                msg = await receive()
                if msg["type"] == "http.request":
                    seen += len(msg.get("body", b""))
                    if seen > limit:
                        raise TooLarge(limit)
                return msg

            await self.app(scope, counted, sending)
        finally:
            # The path only: a query string may carry anything, and headers (the
            # token) are never logged.
            user = (scope.get("state") or {}).get("user", "-")
            client = (scope.get("client") or ("-",))[0]
            log.info("%s %s %s %d %.1fms user=%s", client, scope.get("method"),
                     scope.get("path"), status[0], 1000 * (time.perf_counter() - t0), user)


# Pages load only their own files: no inline script or style, no other origin, never
# inside a frame. Swagger UI (/docs) and the self-contained report need inline code.
_CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
_CSP_INLINE = ("default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
               "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")
_INLINE = ("/docs", "/admin/report")
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer")]


_HEADERS = [(b"content-security-policy", _CSP.encode()), *_COMMON]
_HEADERS_INLINE = [(b"content-security-policy", _CSP_INLINE.encode()), *_COMMON]


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries: a content security policy, no framing, no
    content-type sniffing, no referrer."""
    return _HEADERS_INLINE if path.startswith(_INLINE) else _HEADERS


async def send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


