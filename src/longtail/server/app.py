"""The FastAPI application: routes parse, call one engine use case, render.

Annotators: POST /tasks/lease, /tasks/{id}/label, /tasks/{id}/release, GET /api/me,
/api/progress, /api/labels. Admins, also: /admin/status, /admin/rounds (GET lists, POST
starts one), /admin/history, /admin/export (a round's tasks), /admin/export/labels (files),
/admin/import, /admin/annotators, /admin/curves,
/admin/users. Pages: /label, /dashboard (static files, no build step), /static/*.
OpenAPI at /docs and /openapi.json.

Errors are JSON `{"detail": ...}`: 401 without a valid bearer token, 403 for an
annotator on an admin route, 404 unknown task, 409 a task not yours to answer now,
413 a body over the limit, 422 bad input (unknown labels list the allowed ones).
Access lines are logged by `longtail.server.access` with method, path (never the query
string) and user name: no token or Authorization header is ever logged.
"""

# No `from __future__ import annotations`: the routes use local Annotated aliases (Me,
# Admin) that FastAPI must see as objects, not strings.
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longtail.engine import rounds as rounds_uc
from longtail.engine import status as status_uc
from longtail.engine import tasks, users
from longtail.engine.settings import Settings
from longtail.engine.users import User
from longtail.errors import InputError, ProjectError
from longtail.server import schemas as m
from longtail.server.settings import ServerSettings

STATIC = Path(__file__).parent / "static"
AUTH_TTL = 5.0  # seconds a checked token is trusted without reading the catalog again
log = logging.getLogger("longtail.server.access")


class _TooLarge(HTTPException):
    """Raised while the body streams in: FastAPI passes HTTPExceptions through its body
    parsing (any other error there becomes a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


class Guard:
    """Pure ASGI middleware (no per-request task, unlike `@app.middleware`): refuses
    bodies over `limit` bytes (over `large[path]` for the paths named there: file
    uploads) with 413, at once when Content-Length says so, else as soon as the
    streamed body passes it; and writes the access line."""

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
            await send(msg)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await _json(sending, 413, f"request body over {limit} bytes")
                return
            seen = 0

            async def counted() -> Message:
                nonlocal seen
                msg = await receive()
                if msg["type"] == "http.request":
                    seen += len(msg.get("body", b""))
                    if seen > limit:
                        raise _TooLarge(limit)
                return msg

            await self.app(scope, counted, sending)
        finally:
            # The path only: a query string may carry anything, and headers (the
            # token) are never logged.
            user = (scope.get("state") or {}).get("user", "-")
            log.info("%s %s %d %.1fms user=%s", scope.get("method"), scope.get("path"),
                     status[0], 1000 * (time.perf_counter() - t0), user)


async def _json(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(project_path: str | Path, settings: ServerSettings | None = None, *,
               clock: Callable[[], float] = time.time, ls_transport: Any = None,
               webhook_transport: Any = None) -> FastAPI:
    """The service over the project at `project_path`. `clock` gives the time leases
    are measured with (tests move it); `ls_transport`, an httpx transport for the calls
    to Label Studio's API in ML-backend mode, and `webhook_transport` for webhooks out
    (tests answer them)."""
    from longtail.server.webhooks import Webhooks
    from longtail.store import Store

    settings = settings or ServerSettings()
    store = Store.open(project_path)
    policy = settings.policy

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        writer.close()
        store.close()

    app = FastAPI(title="longtail", version="1", lifespan=lifespan,
                  description="The annotation service of a longtail project: task leases for "
                  "annotators, rounds and metrics for admins. Authenticate with "
                  "`Authorization: Bearer <token>` (`longtail users add NAME`).")
    app.state.store = store
    app.state.settings = settings
    # Labels imported while the server was down (a file, Label Studio) leave the queue.
    tasks.settle(store)
    tasks.prepare(store, policy)  # the open rounds' slots, before the first lease
    # Leases, answers and releases go through one writer that commits the requests
    # arriving together in one transaction (each in its savepoint) and answers each
    # after the commit.
    writer = app.state.writer = tasks.GroupCommit(store)

    async def write(fn: Callable[[Any], Any]) -> Any:
        return await writer.run(fn)
    hooks = app.state.webhooks = Webhooks(list(settings.webhooks), settings.webhook_secret,
                                          transport=webhook_transport)
    exhausted = {"sent": False}  # batch_exhausted goes out once per emptying of the queue

    # -- auth --------------------------------------------------------------------------

    # token hash -> (user, checked at): one catalog read per token every AUTH_TTL
    # seconds instead of one per request. A removed user or replaced token stops
    # working within AUTH_TTL. Only hashes are kept, as in the catalog.
    seen: dict[str, tuple[User | None, float]] = {}

    async def current_user(request: Request) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        key = users.token_hash(token)
        hit = seen.get(key)
        now = time.monotonic()
        if hit is None or now - hit[1] > AUTH_TTL:
            user = await run_in_threadpool(users.authenticate_hash, store, key)
            if len(seen) > 10_000:  # bounded: a flood of bad tokens cannot grow it
                seen.clear()
            seen[key] = hit = (user, now)
        if hit[0] is None:
            raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
        request.state.user = hit[0].name
        return hit[0]

    def admin(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.is_admin:
            raise HTTPException(403, "admins only")
        return user

    Me = Annotated[User, Depends(current_user)]
    Admin = Annotated[User, Depends(admin)]

    def page(offset: int, limit: int | None) -> int:
        if limit is None:
            return min(100, settings.max_page)
        if limit > settings.max_page:
            raise InputError(f"limit {limit} is over the page size limit {settings.max_page}")
        return limit

    # -- errors and access log ---------------------------------------------------------

    @app.exception_handler(tasks.LabelNotAllowed)
    async def _label(_r: Request, e: tasks.LabelNotAllowed) -> JSONResponse:
        return JSONResponse({"detail": str(e), "allowed": e.allowed}, status_code=422)

    @app.exception_handler(tasks.TaskNotFound)
    async def _missing(_r: Request, e: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(InputError)
    async def _input(_r: Request, e: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(ProjectError)
    async def _state(_r: Request, e: Exception) -> JSONResponse:
        # TaskConflict and every "the project is not in a state for this" error.
        return JSONResponse({"detail": str(e)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input back; a body may hold anything (a token
        # pasted in the wrong field), so say where and what, never the value.
        errors = [{"loc": list(x.get("loc", ())), "msg": x.get("msg"), "type": x.get("type")}
                  for x in e.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(Guard, limit=settings.max_body,
                       large={"/admin/import": settings.max_import})

    # -- annotators --------------------------------------------------------------------

    @app.get("/api/me", response_model=m.Me, tags=["annotators"])
    def me(user: Me) -> m.Me:
        """Who the token belongs to."""
        return m.Me(name=user.name, role=user.role)

    # The three hot routes are `async def`: they parse, hand the use case to the
    # writer and wait for its commit on the event loop, with no worker-thread hop.
    @app.post("/tasks/lease", response_model=m.LeaseOut, tags=["annotators"],
              responses={401: {"model": m.Error}})
    async def lease(user: Me) -> m.LeaseOut:
        """The task you hold, else the next one for you (most recent open round first,
        in its priority order), leased to you for the lease TTL."""
        task = await write(lambda uow: tasks.lease_in(uow, user, policy, clock()))
        if task is None:
            if hooks.urls and not exhausted["sent"] and await run_in_threadpool(
                    tasks.queue_empty, store):
                exhausted["sent"] = True
                hooks.emit("batch_exhausted", open_rounds=await run_in_threadpool(
                    store_open_rounds))
            return m.LeaseOut(task=None, message="no task left for you in the open rounds")
        exhausted["sent"] = False
        return m.LeaseOut(task=m.TaskOut(**task.to_dict()))

    def store_open_rounds() -> list[int]:
        return [r["id"] for r in store.rounds() if r["status"] == "open"]

    @app.post("/tasks/{task_id}/label", response_model=m.AnswerOut, tags=["annotators"],
              responses={404: {"model": m.Error}, 409: {"model": m.Error},
                         422: {"model": m.Error}})
    async def label(task_id: int, body: m.AnswerIn, user: Me) -> m.AnswerOut:
        """Answer the task you hold: a label, or skip (it goes to someone else) or
        unsure; `seconds` is the time you spent."""
        done = await write(lambda uow: tasks.answer_in(uow, user, task_id, body.kind, body.label,
                                                       body.seconds, clock()))
        if done.round_closed:
            hooks.emit("round_completed", round_id=done.round_id)
        return m.AnswerOut(**done.__dict__)

    @app.post("/tasks/{task_id}/release", response_model=m.ReleaseOut, tags=["annotators"],
              responses={404: {"model": m.Error}, 409: {"model": m.Error}})
    async def release(task_id: int, user: Me) -> m.ReleaseOut:
        """Give the task you hold back to the queue, unanswered."""
        round_id = await write(lambda uow: tasks.release_in(uow, user, task_id, clock()))
        return m.ReleaseOut(task_id=task_id, round_id=round_id)

    @app.get("/api/progress", response_model=m.ProgressOut, tags=["annotators"])
    def my_progress(user: Me) -> m.ProgressOut:
        """How many tasks you answered and how many are left in the open rounds."""
        return m.ProgressOut(**tasks.progress(store, user, now=clock()).__dict__)

    @app.get("/api/labels", response_model=m.LabelSetOut, tags=["annotators"])
    def label_set(_user: Me) -> m.LabelSetOut:
        """The project's label set (null: any label)."""
        from longtail.engine import labels

        return m.LabelSetOut(labels=labels.label_set(store))

    # -- admins ------------------------------------------------------------------------

    @app.get("/admin/status", response_model=m.StatusOut, tags=["admin"])
    def status(_user: Admin) -> m.StatusOut:
        """Counts, classes, rounds, the latest metrics and the lift verdict."""
        return m.StatusOut(**status_uc.status(store, Settings.load(store)))

    @app.post("/admin/rounds", response_model=m.RoundOut, tags=["admin"])
    def start_round(body: m.RoundIn, _user: Admin) -> m.RoundOut:
        """Plan the next round (`longtail query`): its tasks join the queue."""
        with _writer():
            r = rounds_uc.plan_round(store, Settings.load(store), body.budget,
                                     strategy=body.strategy, seed=body.seed)
        return m.RoundOut(round_id=r.round_id, size=len(r.rows),
                          kinds={k: r.kinds.count(k) for k in sorted(set(r.kinds))},
                          strategy=r.log.get("strategy", body.strategy),
                          arm=(r.log.get("selection") or {}).get("arm"), warnings=r.warnings)

    def _writer():
        return tasks._writer(store)

    @app.get("/admin/rounds", response_model=list[m.RoundRow], tags=["admin"])
    def list_rounds(_user: Admin) -> list[m.RoundRow]:
        """Every round, oldest first, with how many of its samples are labeled."""
        with store.reading() as uow:
            return [m.RoundRow(**r) for r in rounds_uc.list_rounds(uow)]

    @app.get("/admin/history", response_model=list[m.HistoryRow], tags=["admin"])
    def history(_user: Admin) -> list[m.HistoryRow]:
        """Earlier rounds: arm, and the managed-eval accuracy before and after."""
        with store.reading() as uow:
            return [m.HistoryRow(**h.to_dict()) for h in rounds_uc.history(uow)]

    @app.get("/admin/export", response_model=m.ExportOut, tags=["admin"])
    def export(_user: Admin, round: Annotated[int | None, Query(ge=1)] = None,
               offset: Annotated[int, Query(ge=0)] = 0,
               limit: Annotated[int | None, Query(ge=1)] = None) -> m.ExportOut:
        """The tasks of a round (the most recent open one by default), a page at a time,
        in priority order, with their slots by state."""
        got = tasks.round_tasks(store, round, offset=offset, limit=page(offset, limit))
        return m.ExportOut(**got)

    @app.get("/admin/export/labels", tags=["admin"], response_class=Response,
              responses={200: {"description": "The file, as `longtail export` writes it.",
                               "content": {v.split(";")[0]: {} for v in m.EXPORT_MEDIA.values()}},
                         422: {"model": m.Error}})
    def export_labels(_user: Admin, format: Annotated[m.ExportFormat, Query()] = "csv",
                      version: Annotated[int | None, Query(ge=1)] = None,
                      round: Annotated[int | None, Query(ge=1)] = None) -> Response:
        """A dataset version's labeled samples (id, text, label, split) as CSV, JSONL or
        Parquet (`longtail export --version N`, the dataset as it stands by default);
        with format=label-studio a round's tasks in Label Studio's import format
        (`longtail export --format label-studio --round N`). The same bytes as the CLI."""
        from longtail.engine import labelstudio, versions

        if format == "label-studio":
            body = labelstudio.tasks_json(labelstudio.export_tasks(store, Settings.load(store),
                                                                   round)).encode()
            return Response(body, media_type=m.EXPORT_MEDIA[format], headers={
                "Content-Disposition": 'attachment; filename="tasks.json"'})
        if round is not None:
            raise InputError("round= goes with format=label-studio; a labels export takes "
                             "version=N")
        # The export use case writes a file (atomically, as for the CLI): into a
        # folder of our own, streamed back and removed once sent.
        tmp = Path(tempfile.mkdtemp(prefix="longtail-export-"))
        try:
            got = versions.export_version(store, tmp / f"labels{m.EXPORT_SUFFIX[format]}",
                                          version=version, fmt=format)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        headers = {"X-Longtail-Version": str(got["version"]), "X-Longtail-Rows": str(got["rows"])}
        if got["warnings"]:
            headers["X-Longtail-Warnings"] = " | ".join(got["warnings"]).encode(
                "ascii", "replace").decode()
        return FileResponse(got["path"], media_type=m.EXPORT_MEDIA[format], headers=headers,
                            filename=f"labels-v{got['version']}{m.EXPORT_SUFFIX[format]}",
                            background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))

    @app.post("/admin/import", response_model=m.ImportOut, tags=["admin"],
              responses={413: {"model": m.Error}, 422: {"model": m.Error}},
              openapi_extra={"requestBody": {"required": True, "description": (
                  "The file: the raw body, or a multipart/form-data field `file`."),
                  "content": {"application/octet-stream": {"schema": {
                      "type": "string", "format": "binary"}}}}})
    async def import_labels(request: Request, _user: Admin,
                            format: Annotated[m.ExportFormat, Query()] = "csv",
                            id: Annotated[str, Query(max_length=200)] = "id",
                            label: Annotated[str, Query(max_length=200)] = "label",
                            annotator: Annotated[str | None, Query(max_length=200)] = None,
                            seconds: Annotated[str | None, Query(max_length=200)] = None,
                            ) -> m.ImportOut:
        """Record the labels of a file, all or nothing (`longtail import-labels`): CSV,
        JSONL or Parquet with an id and a label column (a blank label is a skip;
        `annotator` and `seconds` name optional columns), or a Label Studio JSON export
        (format=label-studio). A bad file is a 422 naming the problem, and nothing
        changes. The body may be at most the server's max import size."""
        tmp = Path(tempfile.mkdtemp(prefix="longtail-import-"))
        try:
            path, shown = await _receive_file(request, tmp, m.EXPORT_SUFFIX[format])
            done = await run_in_threadpool(_import_file, path, shown, format, id, label,
                                           annotator, seconds)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        settled = await run_in_threadpool(tasks.settle, store)  # their tasks leave the queue
        for round_id in sorted(set(done.closed_rounds) | set(settled["closed_rounds"])):
            hooks.emit("round_completed", round_id=round_id)
        out = {k: v for k, v in done.to_dict().items() if k != "file"}
        out["closed_rounds"] = sorted(set(done.closed_rounds) | set(settled["closed_rounds"]))
        return m.ImportOut(**out, format=format, file=shown)

    def _import_file(path: Path, shown: str, format: str, id: str, label: str,
                     annotator: str | None, seconds: str | None) -> Any:
        from longtail.engine import labels, labelstudio

        try:
            with _writer():
                if format == "label-studio":
                    return labelstudio.import_export(store, path)
                return labels.import_file(store, path, id=id, label=label, annotator=annotator,
                                          seconds=seconds, source="human")
        except (InputError, ProjectError) as e:
            # Name the file as the client sent it, not our temporary copy.
            e.args = tuple(str(a).replace(str(path), shown) if isinstance(a, str) else a
                           for a in e.args) or (str(e).replace(str(path), shown),)
            raise

    @app.get("/admin/label-studio/tasks", response_model=list[m.LabelStudioTask], tags=["admin"])
    def label_studio_tasks(_user: Admin, round: Annotated[int | None, Query(ge=1)] = None,
                           offset: Annotated[int, Query(ge=0)] = 0,
                           limit: Annotated[int | None, Query(ge=1)] = None) -> list[m.LabelStudioTask]:
        """A round's tasks in Label Studio's import format (a page at a time): sort by
        prediction score, lowest first, for longtail's order."""
        from longtail.engine import labelstudio

        size = page(offset, limit)
        got = labelstudio.export_tasks(store, Settings.load(store), round)
        return [m.LabelStudioTask(**x) for x in got[offset : offset + size]]

    @app.get("/admin/label-studio/config", response_model=m.LabelStudioConfig, tags=["admin"])
    def label_studio_config(_user: Admin) -> m.LabelStudioConfig:
        """The labeling config matching the project's label set."""
        from longtail.engine import labels, labelstudio

        return m.LabelStudioConfig(config=labelstudio.labeling_config(labels.label_set(store) or []))

    @app.post("/webhooks/labels", response_model=m.LabelsRecordedOut, tags=["admin"])
    def labels_in(body: m.LabelsIn, _user: Admin) -> m.LabelsRecordedOut:
        """Labels from an external tool (all or nothing): each names a sample id and a
        label, or a skip / unsure, with the annotator and seconds."""
        from longtail.engine import labels

        events = [labels.LabelEvent(x.id, x.label, kind=x.kind, annotator=x.annotator,
                                    seconds=x.seconds) for x in body.labels]
        with _writer():
            done = labels.record_labels(store, events, source="import", where="webhook")
        settled = tasks.settle(store)  # their tasks leave the queue
        for round_id in sorted(set(done.closed_rounds) | set(settled["closed_rounds"])):
            hooks.emit("round_completed", round_id=round_id)
        return m.LabelsRecordedOut(**{k: v for k, v in done.to_dict().items() if k != "file"})

    @app.get("/admin/annotators", response_model=list[m.AnnotatorRow], tags=["admin"])
    def annotators(_user: Admin) -> list[m.AnnotatorRow]:
        """Labels, skips, unsure and seconds per annotator."""
        return [m.AnnotatorRow(**a) for a in tasks.annotators(store)]

    @app.get("/admin/curves", response_model=m.CurvesOut, tags=["admin"])
    def curves(_user: Admin) -> m.CurvesOut:
        """The learning curve (accuracy with intervals by labels) and the lift of
        selection over the random control."""
        from longtail.engine import evaluation

        with store.reading() as uow:
            c = evaluation.learning_curves(uow)
        lift = status_uc.lift_summary(store)
        verdict = (lift or {}).get("verdict") or "no lift measured yet"
        return m.CurvesOut(current=c["current"], as_of=c["as_of"], eval_set=c["eval_set"],
                           lift=lift, verdict=verdict)

    @app.get("/admin/users", response_model=list[m.UserRow], tags=["admin"])
    def list_users(_user: Admin) -> list[m.UserRow]:
        """Every user and role (tokens are never shown again)."""
        return [m.UserRow(**u) for u in users.list_users(store)]

    if settings.label_studio:
        _label_studio_backend(app, store, settings, ls_transport)

    # -- pages -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/label")

    @app.get("/label", include_in_schema=False)
    def label_page() -> FileResponse:
        return FileResponse(STATIC / "label.html")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html")

    @app.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> FileResponse:
        return FileResponse(static_file(STATIC, path))

    return app


async def _receive_file(request: Request, folder: Path, suffix: str) -> tuple[Path, str]:
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


def static_file(root: Path, path: str) -> Path:
    """The file `path` names under `root`, or a 404: never a file outside `root`
    (`..`, absolute paths, links out, encoded separators), checked before any read."""
    root = root.resolve()
    if "\x00" in path or "\\" in path:
        raise HTTPException(404, "not found")
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "not found")
    return target


def _label_studio_backend(app: FastAPI, store: Any, settings: ServerSettings,
                          transport: Any) -> None:
    """Label Studio's ML-backend protocol: /health, /setup, /predict, /webhook. Label
    Studio calls these without our tokens, so they write nothing on the payload's word:
    /webhook fetches the annotation from Label Studio's API with its token."""
    import threading

    import httpx

    from longtail.engine import labelstudio

    if not settings.label_studio_url or not settings.label_studio_token:
        raise ProjectError("--label-studio needs Label Studio's URL and an API token "
                           "(--label-studio-url/--label-studio-token, or LABEL_STUDIO_URL/"
                           "LABEL_STUDIO_API_KEY)")
    base = settings.label_studio_url.rstrip("/")
    client = httpx.Client(base_url=base, transport=transport, timeout=30.0,
                          headers={"Authorization": f"Token {settings.label_studio_token}"})
    training = threading.Lock()  # one retrain at a time; labels still come in meanwhile

    def fetch(path: str) -> dict:
        try:
            r = client.get(path)
        except httpx.HTTPError as e:
            raise ProjectError(f"Label Studio at {base} did not answer {path}: "
                               f"{type(e).__name__}") from None
        if r.status_code != 200:
            raise ProjectError(f"Label Studio at {base} answered {r.status_code} for {path}")
        got = r.json()
        if not isinstance(got, dict):
            raise ProjectError(f"Label Studio at {base}: {path} is not an object")
        return got

    @app.get("/health", response_model=m.HealthOut, tags=["label-studio"])
    def health() -> m.HealthOut:
        """ML backend: alive, and the model version /predict serves."""
        return m.HealthOut(status="UP", model_class="longtail",
                           model_version=labelstudio.model_version(store))

    @app.post("/setup", response_model=m.ModelVersionOut, tags=["label-studio"])
    def setup(_body: m.SetupIn) -> m.ModelVersionOut:
        """ML backend: Label Studio connects a project."""
        return m.ModelVersionOut(model_version=labelstudio.model_version(store))

    @app.post("/predict", response_model=m.PredictOut, tags=["label-studio"])
    def predict(body: m.PredictIn) -> m.PredictOut:
        """ML backend: the current model's class and longtail's priority as `score`
        (lowest first) for each task."""
        results, version = labelstudio.predict_tasks(store, Settings.load(store), body.tasks)
        return m.PredictOut(results=[m.Prediction(**x) for x in results], model_version=version)

    @app.post("/webhook", response_model=m.WebhookOut, tags=["label-studio"])
    def webhook(body: m.WebhookIn) -> m.WebhookOut:
        """ML backend: ANNOTATION_CREATED / ANNOTATION_UPDATED record the annotation
        (fetched from Label Studio) and retrain after enough new labels."""
        payload = body.model_dump()
        with training:
            got = labelstudio.webhook(store, Settings.load(store), body.action, payload, fetch,
                                      retrain_every=settings.retrain_every)
        return m.WebhookOut(**got)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> dict:
        return {}
