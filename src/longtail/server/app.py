"""The FastAPI application: `create_app` opens the project, makes the service (store,
writer, webhooks) and mounts the routers; each route parses, calls one engine use case
and renders.

    routers/tasks         annotators: /tasks/lease, /tasks/{id}/label, /tasks/{id}/release,
                          /api/me, /api/progress, /api/labels (the first two through
                          `hot`, without FastAPI's per-request machinery)
    routers/admin         admins: /admin/status, /admin/rounds, /admin/history,
                          /admin/export, /admin/annotators, /admin/curves, /admin/users,
                          /admin/label-studio/{tasks,config}
    routers/discovery     admins: /admin/slices, /admin/slices/enqueue, /admin/search,
                          /admin/queue, /admin/report
    routers/transfer      admins: /admin/export/labels, /admin/import, /webhooks/labels
    routers/label_studio  Label Studio's ML backend (`--label-studio`): /health, /setup,
                          /predict, /webhook
    routers/media         /media/{row}: images through signed, expiring URLs
    routers/pages         /label, /dashboard, /static/*

OpenAPI at /docs and /openapi.json; errors: `server/errors.py`; the access log (never a
query string, a token or an Authorization header): `server/guard.py`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from longtail.engine import tasks
from longtail.server import errors
from longtail.server.deps import FailedAuth, Service, known_query
from longtail.server.guard import NO_TELEMETRY, Guard
from longtail.server.hot import HotRoutes
from longtail.server.routers import admin, discovery, docs, media, pages, transfer
from longtail.server.routers import tasks as tasks_routes
from longtail.server.settings import ServerSettings
from longtail.store import Store

DESCRIPTION = ("The annotation service of a longtail project: task leases for annotators, "
               "rounds and metrics for admins. Authenticate with `Authorization: Bearer "
               "<token>` (`longtail users add NAME`).")


def create_app(project_path: str | Path, settings: ServerSettings | None = None, *,
               clock: Callable[[], float] = time.time, ls_transport: Any = None,
               webhook_transport: Any = None) -> FastAPI:
    """The service over the project at `project_path`. `clock` gives the time leases are
    measured with (tests move it); `ls_transport`, an httpx transport for the calls to
    Label Studio's API in ML-backend mode, and `webhook_transport` for webhooks out
    (tests answer them)."""
    from longtail.server.webhooks import Webhooks

    settings = settings or ServerSettings()
    store = Store.open(project_path)
    try:
        service = _service(store, settings, clock, ls_transport,
                           Webhooks(list(settings.webhooks), settings.webhook_secret,
                                    transport=webhook_transport))
    except BaseException:
        store.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service.writer.closed:  # started again after a shutdown (a test client's)
            service.writer = tasks.GroupCommit(store)
        _freeze_heap()
        yield
        service.writer.close()
        if service.ml_backend is not None:
            service.ml_backend.close()  # the retrain in progress ends first
        store.close()

    app = FastAPI(title="longtail", version="1", lifespan=lifespan, description=DESCRIPTION,
                  dependencies=[Depends(known_query)], docs_url=None, redoc_url=None,
                  **NO_TELEMETRY)
    app.state.service = service
    errors.install(app)
    ml = dict.fromkeys(("/predict", "/webhook", "/setup"), settings.max_ml_body)  # batches
    app.add_middleware(HotRoutes, fastapi_app=app, enabled=settings.hot_routes)  # in Guard
    app.add_middleware(Guard, limit=settings.max_body, large={
        "/admin/import": settings.max_import, **(ml if settings.label_studio else {})})
    app.include_router(tasks_routes.router)
    app.include_router(admin.router)
    app.include_router(discovery.router)
    app.include_router(transfer.router)
    if settings.label_studio:
        from longtail.server.routers import label_studio

        app.include_router(label_studio.router)
    app.include_router(media.router)
    app.include_router(pages.router)
    if (folder := docs.assets()) is not None:  # Swagger UI from the installed package
        app.include_router(docs.make_router(folder))
    app.openapi = lambda: docs.openapi_schema(app, settings)  # type: ignore[method-assign]
    return app


_frozen: list[bool] = []


def _freeze_heap() -> None:
    """What start-up made (modules, routes, schemas, models) lives as long as the process:
    kept out of the cyclic collector's passes, each full one of which would walk it all
    on the event loop (tens of ms, a tail latency). Once per process (tests make many
    apps)."""
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen.append(True)


def _service(store: Store, settings: ServerSettings, clock: Callable[[], float],
             ls_transport: Any, hooks: Any) -> Service:
    """The service's shared parts; the open rounds made ready for the first lease."""
    from longtail.server.ml_backend import MLBackend

    backend = MLBackend.start(store, settings, ls_transport) if settings.label_studio else None
    # Labels imported while the server was down (a file, Label Studio) leave the queue.
    tasks.settle(store)
    tasks.prepare(store, settings.policy)  # the open rounds' slots, before the first lease
    # Every write of the service goes through one writer: leases, answers and releases
    # in group-commit batches (one transaction for the requests arriving together, each
    # answered after the commit), label files and webhooks in a transaction of their own.
    extra = {"media_secret": settings.media_secret.encode()} if settings.media_secret else {}
    return Service(store=store, settings=settings, writer=tasks.GroupCommit(store),
                   hooks=hooks, clock=clock, label_studio=backend and backend.client,
                   ml_backend=backend,
                   failed_auth=FailedAuth(settings.auth_fail_limit, settings.auth_fail_window),
                   **extra)
