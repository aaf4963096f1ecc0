"""Label Studio's ML-backend protocol (`longtail serve --label-studio`): /health,
/setup, /predict, /webhook. Label Studio calls these without our tokens, so they write
nothing on the payload's word: /webhook fetches the annotation from Label Studio's API
with its token, and records it through the service's writer like every other label.

`LabelStudioClient` is the one place that talks to Label Studio's API; it lives on the
service (`svc.label_studio`), so a test swaps it (or its httpx transport)."""

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from longtail.engine import labelstudio, tasks
from longtail.engine.settings import Settings
from longtail.errors import ProjectError
from longtail.server import schemas as m
from longtail.server.deps import Service, StoreDep, Svc
from longtail.server.settings import ServerSettings

router = APIRouter(tags=["label-studio"], responses=m.errors(400, 409, 413, 422))


class LabelStudioClient:
    """Label Studio's API, read with its token (never logged); one retrain at a time."""

    def __init__(self, settings: ServerSettings, transport: Any = None):
        import httpx

        if not settings.label_studio_url or not settings.label_studio_token:
            raise ProjectError("--label-studio needs Label Studio's URL and an API token "
                               "(--label-studio-url/--label-studio-token, or "
                               "LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY)")
        self.base = settings.label_studio_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base, transport=transport, timeout=30.0,
                                   headers={"Authorization":
                                            f"Token {settings.label_studio_token}"})
        self.training = threading.Lock()  # labels still come in while a model trains

    def fetch(self, path: str) -> dict:
        """GET `path` of Label Studio's API as an object; ProjectError otherwise."""
        import httpx

        try:
            r = self.client.get(path)
        except httpx.HTTPError as e:
            raise ProjectError(f"Label Studio at {self.base} did not answer {path}: "
                               f"{type(e).__name__}") from None
        if r.status_code != 200:
            raise ProjectError(f"Label Studio at {self.base} answered {r.status_code} for "
                               f"{path}")
        got = r.json()
        if not isinstance(got, dict):
            raise ProjectError(f"Label Studio at {self.base}: {path} is not an object")
        return got

    def close(self) -> None:
        self.client.close()


def get_client(svc: Svc) -> LabelStudioClient:
    """The service's Label Studio client (ML-backend mode only mounts this router)."""
    if svc.label_studio is None:
        raise ProjectError("the server was not started with --label-studio")
    return svc.label_studio


Client = Annotated[LabelStudioClient, Depends(get_client)]


@router.get("/health", response_model=m.HealthOut)
def health(store: StoreDep) -> m.HealthOut:
    """ML backend: alive, and the model version /predict serves."""
    return m.HealthOut(status="UP", model_class="longtail",
                       model_version=labelstudio.model_version(store))


@router.post("/setup", response_model=m.ModelVersionOut)
def setup(_body: m.SetupIn, store: StoreDep) -> m.ModelVersionOut:
    """ML backend: Label Studio connects a project."""
    return m.ModelVersionOut(model_version=labelstudio.model_version(store))


@router.post("/predict", response_model=m.PredictOut)
def predict(body: m.PredictIn, store: StoreDep) -> m.PredictOut:
    """ML backend: the current model's class and longtail's priority as `score` (lowest
    first) for each task."""
    results, version = labelstudio.predict_tasks(store, Settings.load(store), body.tasks)
    return m.PredictOut(results=[m.Prediction(**x) for x in results], model_version=version)


@router.post("/webhook", response_model=m.WebhookOut)
async def webhook(body: m.WebhookIn, svc: Svc, client: Client) -> m.WebhookOut:
    """ML backend: ANNOTATION_CREATED / ANNOTATION_UPDATED record the annotation
    (fetched from Label Studio) through the service's writer, and retrain after enough
    new labels."""
    got = await run_in_threadpool(labelstudio.webhook_annotation, svc.store, body.action,
                                  body.model_dump(), client.fetch)
    if got is None:
        return m.WebhookOut(status="ignored", action=body.action)
    done = await svc.writer.run_alone(
        lambda uow: tasks.record_in(uow, [got.event], svc.policy, source="import",
                                    where=got.where))
    for round_id in done.closed_rounds:
        svc.hooks.emit("round_completed", round_id=round_id)
    retrained = await run_in_threadpool(_retrain, svc, client)
    return m.WebhookOut(status="recorded", annotation=got.annotation, task=got.task,
                        sample_id=got.sample_id, new_labels=done.new_labels,
                        changed=done.changed, skipped=done.skipped, retrained=bool(retrained),
                        model_version=labelstudio.model_version(svc.store))


def _retrain(svc: Service, client: LabelStudioClient) -> bool | None:
    with client.training:
        return labelstudio.retrain_due(svc.store, Settings.load(svc.store),
                                       svc.settings.retrain_every)


@router.get("/metrics", include_in_schema=False)
def metrics() -> dict:
    return {}
