"""The annotators' two hot routes, `POST /tasks/lease` and `POST /tasks/{id}/label`,
served without FastAPI's per-request machinery (route matching through every included
router, dependency solving, the exit stack): a submission is these two requests, and
that machinery cost about a third of the server's CPU per submission.

Nothing is served differently. The lane calls the routes' own functions
(`routers/tasks.py`) with the user of the same `current_user` dependency, validates
the path and the body with the routes' own fields, renders the answer with the route's
response field and errors with the app's exception handlers, inside the same outer
middleware (`Guard`: body limit, security headers, access log). It takes only the
ordinary request: POST, no query string, a JSON body (`application/json`) that the
route's field accepts, no dependency overrides. Anything else (a bad task id, a body
that fails validation, a query string, another content type) goes to FastAPI, with the
body already read handed on, so that every refusal is FastAPI's own. The OpenAPI
schema is the routes' own: the lane adds no route.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longtail.server import deps
from longtail.server.routers import tasks as task_routes

_LABEL_PATH = re.compile(r"/tasks/([^/]+)/label")


class HotRoutes:
    """Pure ASGI middleware in front of the router (inside `Guard`): see the module."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, enabled: bool = True):
        self.app, self.fastapi_app = app, fastapi_app
        routes = {r.endpoint: r for r in task_routes.router.routes if isinstance(r, APIRoute)}
        self.lease_route = routes[task_routes.lease]
        self.label_route = routes[task_routes.label]
        self.enabled = enabled and _plain(fastapi_app) and all(
            hasattr(f, "validate") and hasattr(f, "serialize_json")  # FastAPI >= 0.12x
            for f in (self.lease_route.response_field, self.label_route.response_field,
                      self.label_route.body_field))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.enabled or scope["type"] != "http" or scope["method"] != "POST"
                or scope.get("query_string") or self.fastapi_app.dependency_overrides):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/tasks/lease":
            await self._serve(scope, receive, send, self.lease_route, self._lease)
            return
        hit = _LABEL_PATH.fullmatch(path)
        if hit is None:
            await self.app(scope, receive, send)
            return
        param = self.label_route.dependant.path_params[0]
        task_id, errs = param.validate(hit.group(1), {}, loc=("path", param.alias))
        if errs:
            await self.app(scope, receive, send)
            return
        if _content_type(scope) != b"application/json":
            await self.app(scope, receive, send)
            return
        try:
            body = await _read(receive)
        except HTTPException as exc:  # over the body limit (Guard), as FastAPI renders it
            await self._error(scope, receive, send, exc)
            return
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        answer: Any = None
        if parsed is not None:
            field = self.label_route.body_field
            answer, errs = field.validate(parsed, {}, loc=("body",))
        if parsed is None or errs:
            await self.app(scope, _replay(body, receive), send)
            return

        async def label(user: Any, svc: deps.Service) -> Any:
            return await task_routes.label(task_id=task_id, body=answer, user=user, svc=svc)

        await self._serve(scope, _replay(body, receive), send, self.label_route, label)

    @staticmethod
    async def _lease(user: Any, svc: deps.Service) -> Any:
        return await task_routes.lease(user=user, svc=svc)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: APIRoute,
                     endpoint: Callable[..., Any]) -> None:
        request = Request(scope, receive)
        try:
            svc = await deps.get_service(request)
            user = await deps.current_user(request, svc)
            value = await endpoint(user, svc)
            field = route.response_field
            checked, errs = field.validate(value, {}, loc=("response",))
            if errs:  # as FastAPI would: a server error, never a wrong body
                raise RuntimeError(f"response of {route.path} does not match its model")
            response: Response = Response(field.serialize_json(checked, by_alias=True),
                                          media_type="application/json")
        except Exception as exc:  # noqa: BLE001 - rendered by the app's handlers, as FastAPI does
            await self._error(scope, receive, send, exc, request)
            return
        await response(scope, receive, send)

    async def _error(self, scope: Scope, receive: Receive, send: Send, exc: Exception,
                     request: Request | None = None) -> None:
        """`exc` rendered by the app's handler for it; re-raised without one (a 500 from
        the outer server-error middleware, as on FastAPI's path)."""
        handler = self._handler(exc)
        if handler is None:
            raise exc
        request = request or Request(scope, receive)
        response = (await handler(request, exc) if is_async_callable(handler)
                    else await run_in_threadpool(handler, request, exc))
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        """The app's handler for `exc`, looked up as Starlette's exception middleware
        does: an HTTPException by its status code first, then along the class's MRO."""
        handlers = self.fastapi_app.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def _plain(app: FastAPI) -> bool:
    """Whether the app adds nothing to the hot routes that the lane would skip: its
    only app-wide dependency is `known_query` (a no-op without a query string)."""
    return all(d.dependency is deps.known_query for d in app.router.dependencies)


def _content_type(scope: Scope) -> bytes | None:
    for k, v in scope.get("headers") or ():
        if k == b"content-type":
            return v.strip().lower()
    return None


async def _read(receive: Receive) -> bytes:
    """The whole body (the outer `Guard` counts it against the limit as it comes)."""
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the client sends next (a
    disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
