"""Admins' routes for labels in and out: a dataset version as a file, a label file
imported, labels posted by another tool. Every label that comes in goes through the
service's writer (`GroupCommit.run_alone`) and `tasks.record_in`, the same path as
Label Studio's webhook: its tasks leave the queue in the transaction that records it."""

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from longtail.engine import labels, labelstudio, tasks, versions
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError
from longtail.server import media
from longtail.server import schemas as m
from longtail.server.deps import Admin, Svc
from longtail.server.uploads import receive_file
from longtail.store import Store

router = APIRouter(tags=["admin"], responses=m.errors(400, 401, 429, 403, 404, 409, 413, 422))


@router.get("/admin/export/labels", response_class=Response,
            responses={200: {"description": "The file, as `longtail export` writes it.",
                             "content": {v.split(";")[0]: {} for v in m.EXPORT_MEDIA.values()}}})
def export_labels(_user: Admin, svc: Svc, request: Request,
                  format: Annotated[m.ExportFormat, Query()] = "csv",
                  version: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None,
                  round: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None) -> Response:
    """A dataset version's labeled samples (id, text, label, split) as CSV, JSONL or
    Parquet (`longtail export --version N`, the dataset as it stands by default); with
    format=label-studio a round's tasks in Label Studio's import format (`longtail
    export --format label-studio --round N`). The same bytes as the CLI."""
    store = svc.store
    if format == "label-studio":
        body = labelstudio.tasks_json(labelstudio.export_tasks(
            store, Settings.load(store), round,
            media_url=media.label_studio_urls(svc, str(request.base_url)))).encode()
        return Response(body, media_type=m.EXPORT_MEDIA[format], headers={
            "Content-Disposition": 'attachment; filename="tasks.json"'})
    if round is not None:
        raise InputError("round= goes with format=label-studio; a labels export takes "
                         "version=N")
    # The export use case writes a file (atomically, as for the CLI): into a folder of
    # our own, streamed back and removed once sent.
    tmp = Path(tempfile.mkdtemp(prefix="longtail-export-"))
    try:
        got = versions.export_version(store, tmp / f"labels{m.EXPORT_SUFFIX[format]}",
                                      version=version, fmt=format)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    headers = {"X-Longtail-Version": str(got.version), "X-Longtail-Rows": str(got.rows)}
    if got.warnings:
        headers["X-Longtail-Warnings"] = " | ".join(got.warnings).encode(
            "ascii", "replace").decode()
    return FileResponse(got.path, media_type=m.EXPORT_MEDIA[format], headers=headers,
                        filename=f"labels-v{got.version}{m.EXPORT_SUFFIX[format]}",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.post("/admin/import", response_model=m.ImportOut,
             openapi_extra={"requestBody": {"required": True, "description": (
                 "The file: the raw body, or a multipart/form-data field `file`."),
                 "content": {"application/octet-stream": {"schema": {
                     "type": "string", "format": "binary"}}}}})
async def import_labels(request: Request, user: Admin, svc: Svc,
                        format: Annotated[m.ExportFormat, Query()] = "csv",
                        id: Annotated[str, Query(max_length=200)] = "id",
                        label: Annotated[str, Query(max_length=200)] = "label",
                        annotator: Annotated[str | None, Query(max_length=200)] = None,
                        seconds: Annotated[str | None, Query(max_length=200)] = None,
                        ) -> m.ImportOut:
    """Record the labels of a file, all or nothing (`longtail import-labels`): CSV,
    JSONL or Parquet with an id and a label column (a blank label is a skip; `annotator`
    and `seconds` name optional columns), or a Label Studio JSON export
    (format=label-studio). A bad file is a 422 naming the problem, and nothing changes.
    The body may be at most the server's max import size."""
    tmp = Path(tempfile.mkdtemp(prefix="longtail-import-"))
    try:
        path, shown = await receive_file(request, tmp, m.EXPORT_SUFFIX[format])
        events = await run_in_threadpool(_read_events, svc.store, path, shown, format, id,
                                         label, annotator, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done = await svc.writer.run_alone(
        lambda uow: tasks.record_in(uow, events, svc.policy, where=shown, actor=user.name,
                                    source="import" if format == "label-studio" else "human"))
    for round_id in done.closed_rounds:
        svc.hooks.emit("round_completed", round_id=round_id)
    out = {k: v for k, v in done.to_dict().items() if k != "file"}
    return m.ImportOut(**out, format=format, file=shown)


def _read_events(store: Store, path: Path, shown: str, format: str, id: str, label: str,
                 annotator: str | None, seconds: str | None) -> list[labels.LabelEvent]:
    """The file's label events, read before the writer is taken; errors name the file
    as the client sent it, not our temporary copy."""
    try:
        if format == "label-studio":
            events = labelstudio.events_from_export(store, labelstudio.read_export(path).tasks,
                                                    where=shown)
            if not events:
                raise InputError(f"{shown}: the export holds no annotations")
            return events
        return labels.file_events(path, id=id, label=label, annotator=annotator,
                                  seconds=seconds)
    except (InputError, ProjectError) as e:
        e.args = tuple(str(a).replace(str(path), shown) if isinstance(a, str) else a
                       for a in e.args) or (str(e).replace(str(path), shown),)
        raise


@router.post("/webhooks/labels", response_model=m.LabelsRecordedOut)
async def labels_in(body: m.LabelsIn, user: Admin, svc: Svc) -> m.LabelsRecordedOut:
    """Labels from an external tool (all or nothing): each names a sample id and a
    label, or a skip / unsure, with the annotator and seconds."""
    events = [labels.LabelEvent(x.id, x.label, kind=x.kind, annotator=x.annotator,
                                seconds=x.seconds) for x in body.labels]
    labels.check_events(events, "webhook")
    done = await svc.writer.run_alone(
        lambda uow: tasks.record_in(uow, events, svc.policy, source="import", where="webhook",
                                    actor=user.name))
    for round_id in done.closed_rounds:
        svc.hooks.emit("round_completed", round_id=round_id)
    return m.LabelsRecordedOut(**{k: v for k, v in done.to_dict().items() if k != "file"})
