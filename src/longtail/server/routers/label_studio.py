"""Label Studio's ML-backend protocol (`longtail serve --label-studio`): /health,
/setup, /predict, /webhook. Label Studio calls these without our tokens, so they write
nothing on the payload's word: /webhook fetches the annotation from Label Studio's API
with its token, and records it through the service's writer like every other label.

`LabelStudioClient` is the one place that talks to Label Studio's API; it lives on the
service (`svc.label_studio`), so a test swaps it (or its httpx transport)."""

import base64
import binascii
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from longtail.engine import labelstudio, tasks
from longtail.engine.labels import LabelsRecorded
from longtail.errors import ProjectError
from longtail.interop.label_studio_api import is_jwt
from longtail.server import schemas as m
from longtail.server.deps import StoreDep, Svc
from longtail.server.ml_backend import LabelStudioClient, MLBackend
from longtail.store import UnitOfWork

__all__ = ["LabelStudioClient", "is_jwt", "router"]


def check_ml_auth(request: Request, svc: Svc) -> None:
    """With `serve --ml-auth USER:PASSWORD`, every ML-backend route needs those HTTP
    basic-auth credentials (Label Studio's "Basic auth" fields of the model
    connection): 401 otherwise. Compared in constant time, never logged."""
    want = svc.settings.ml_auth
    if want is None:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    got = b""
    if scheme.lower() == "basic":
        try:
            got = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            got = b""
    if not hmac.compare_digest(got, want.encode()):
        raise HTTPException(401, "the ML-backend routes need the basic-auth credentials given "
                            "to `serve --ml-auth`",
                            headers={"WWW-Authenticate": 'Basic realm="longtail ML backend"'})


# 401 is declared in the schema only when `--ml-auth` is on (server/app.py `_openapi`).
router = APIRouter(tags=["label-studio"], responses=m.errors(400, 409, 413, 422),
                   dependencies=[Depends(check_ml_auth)])


def get_client(svc: Svc) -> LabelStudioClient:
    """The service's Label Studio client (ML-backend mode only mounts this router)."""
    if svc.label_studio is None:
        raise ProjectError("the server was not started with --label-studio")
    return svc.label_studio


Client = Annotated[LabelStudioClient, Depends(get_client)]


def get_backend(svc: Svc) -> MLBackend:
    if svc.ml_backend is None:
        raise ProjectError("the server was not started with --label-studio")
    return svc.ml_backend


Backend = Annotated[MLBackend, Depends(get_backend)]


async def bind(svc: Any, backend: MLBackend, value: Any) -> None:
    """Refuse a Label Studio project other than the bound one (409, naming both); bind
    the first one seen."""
    project = labelstudio.ls_project_id(value)
    if project is None or project == backend.project:
        return
    await svc.writer.run_alone(lambda uow: labelstudio.bind_project(uow, project))
    backend.project = project


@router.get("/health", response_model=m.HealthOut)
def health(store: StoreDep) -> m.HealthOut:
    """ML backend: alive, and the model version /predict serves."""
    return m.HealthOut(status="UP", model_class="longtail",
                       model_version=labelstudio.model_version(store))


@router.post("/setup", response_model=m.ModelVersionOut)
async def setup(body: m.SetupIn, svc: Svc, backend: Backend) -> m.ModelVersionOut:
    """ML backend: Label Studio connects a project (the first one is kept; another is
    refused with 409)."""
    await bind(svc, backend, body.project)
    if backend.project is not None and backend.worker.stale():
        # Label Studio pins the project's model_version to the backend's title on
        # connect; our predictions carry the served version: rename (after answering).
        backend.worker.request()
    return m.ModelVersionOut(model_version=labelstudio.model_version(svc.store))


@router.post("/predict", response_model=m.PredictOut)
async def predict(body: m.PredictIn, svc: Svc, backend: Backend) -> m.PredictOut:
    """ML backend: the current model's class and longtail's order over the whole pool
    as `score` (lowest first) for each task, all under the served model version."""
    await bind(svc, backend, (body.model_extra or {}).get("project"))
    return await run_in_threadpool(
        lambda: labelstudio.predict_tasks(svc.store, None, body.tasks, backend.order()))


@router.post("/webhook", response_model=m.WebhookOut)
async def webhook(body: m.WebhookIn, svc: Svc, client: Client,
                  backend: Backend) -> m.WebhookOut:
    """ML backend: ANNOTATION_CREATED / ANNOTATION_UPDATED record the annotation
    (fetched from Label Studio) through the service's writer, once however often it is
    sent, and queue a retrain: answered before any training starts. Other actions
    (TASKS_CREATED, ...) are ignored."""
    if body.action not in labelstudio.WEBHOOK_ACTIONS:
        return m.WebhookOut(status="ignored", action=body.action)
    await bind(svc, backend, (body.model_extra or {}).get("project"))
    got = await run_in_threadpool(labelstudio.webhook_annotation, svc.store, body.action,
                                  body.model_dump(), client.fetch)

    def record(uow: UnitOfWork) -> LabelsRecorded | None:
        fresh = labelstudio.fresh_events(uow, [got.event])
        return tasks.record_in(uow, fresh, svc.policy, source="import",
                               where=got.where) if fresh else None

    done = await svc.writer.run_alone(record)
    out = dict(annotation=got.annotation, task=got.task, sample_id=got.sample_id,
               action=body.action)
    if done is None:
        return m.WebhookOut(status="repeat", **out)
    for round_id in done.closed_rounds:
        svc.hooks.emit("round_completed", round_id=round_id)
    backend.worker.request()
    return m.WebhookOut(status="recorded", new_labels=done.new_labels, changed=done.changed,
                        skipped=done.skipped, retrain="queued",
                        model_version=labelstudio.model_version(svc.store), **out)


@router.get("/metrics", include_in_schema=False)
def metrics() -> dict:
    return {}
