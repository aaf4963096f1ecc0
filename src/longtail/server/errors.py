"""Errors as JSON `{"detail": ...}`: 401 without a valid bearer token, 403 for an
annotator on an admin route, 404 unknown task, 409 a task not yours to answer now (or
the project not in a state for the request), 413 a body over the limit, 422 bad input
(unknown labels list the allowed ones)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Match

from longtail.engine import tasks
from longtail.engine.users import UserRemoved
from longtail.errors import InputError, NotFoundError, ProjectError


async def _label(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, tasks.LabelNotAllowed)
    return JSONResponse({"detail": str(e), "allowed": e.allowed}, status_code=422)


async def _missing(_r: Request, e: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(e)}, status_code=404)


async def _gone(_r: Request, e: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(e)}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def _method(request: Request, _e: Exception) -> JSONResponse:
    # Starlette answers 405 from the first route whose path matches, so `Allow` named
    # only that route's methods (POST /admin/rounds hid GET): name every route's.
    methods = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {"type": "http", "method": method, "path": request.scope["path"],
                 "root_path": request.scope.get("root_path", ""), "headers": [],
                 "query_string": b""}
        if any(r.matches(probe)[0] == Match.FULL for r in request.app.router.routes):
            methods.append(method)
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405,
                        headers={"Allow": ", ".join(methods)})


async def _input(_r: Request, e: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(e)}, status_code=422)


async def _state(_r: Request, e: Exception) -> JSONResponse:
    # TaskConflict (with its reason, for the page to act on) and every "the project is
    # not in a state for this" error.
    reason = getattr(e, "reason", None)
    return JSONResponse({"detail": str(e), **({"reason": reason} if reason else {})},
                        status_code=409)


async def _invalid(_r: Request, e: Exception) -> JSONResponse:
    # FastAPI's default echoes the input back; a body may hold anything (a token pasted
    # in the wrong field), so say where and what, never the value.
    assert isinstance(e, RequestValidationError)
    errors = [{"loc": list(x.get("loc", ())), "msg": x.get("msg"), "type": x.get("type")}
              for x in e.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def install(app: FastAPI) -> None:
    """The service's error handlers on `app` (also for a test mounting one router)."""
    # Most specific first: Starlette looks handlers up along the exception's MRO.
    app.add_exception_handler(tasks.LabelNotAllowed, _label)
    app.add_exception_handler(NotFoundError, _missing)
    app.add_exception_handler(UserRemoved, _gone)
    app.add_exception_handler(405, _method)
    app.add_exception_handler(InputError, _input)
    app.add_exception_handler(ProjectError, _state)
    app.add_exception_handler(RequestValidationError, _invalid)
