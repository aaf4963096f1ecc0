"""Errors as JSON `{"detail": ...}`: 401 without a valid bearer token, 403 for an
annotator on an admin route, 404 unknown task, 409 a task not yours to answer now (or
the project not in a state for the request), 413 a body over the limit, 422 bad input
(unknown labels list the allowed ones)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from longtail.engine import tasks
from longtail.errors import InputError, ProjectError


async def _label(_r: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, tasks.LabelNotAllowed)
    return JSONResponse({"detail": str(e), "allowed": e.allowed}, status_code=422)


async def _missing(_r: Request, e: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(e)}, status_code=404)


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
    app.add_exception_handler(tasks.TaskNotFound, _missing)
    app.add_exception_handler(InputError, _input)
    app.add_exception_handler(ProjectError, _state)
    app.add_exception_handler(RequestValidationError, _invalid)
