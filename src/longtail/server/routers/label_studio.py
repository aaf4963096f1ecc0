"""Label Studio's ML-backend protocol (`longtail serve --label-studio`): /health,
/setup, /predict, /webhook. Label Studio calls these without our tokens, so they write
nothing on the payload's word: /webhook fetches the annotation from Label Studio's API
with its token, and records it through the service's writer like every other label.

`LabelStudioClient` is the one place that talks to Label Studio's API; it lives on the
service (`svc.label_studio`), so a test swaps it (or its httpx transport)."""

import base64
import binascii
import hmac
import json
import re
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from longtail.engine import labelstudio, tasks
from longtail.engine.settings import Settings
from longtail.errors import ProjectError
from longtail.server import schemas as m
from longtail.server.deps import Service, StoreDep, Svc
from longtail.server.settings import ServerSettings


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


def is_jwt(token: str) -> bool:
    """A Label Studio Personal Access Token is a JWT (a refresh token: three base64url
    parts, two dots); a legacy API token is one hex key."""
    parts = token.split(".")
    return len(parts) == 3 and all(p and _B64URL.fullmatch(p) for p in parts)


_B64URL = re.compile(r"[A-Za-z0-9_-]+=*")
# Refresh an access token this many seconds before its `exp`, not on the last second.
EXPIRY_MARGIN = 30.0


def _expires(access: str) -> float | None:
    """The `exp` of a JWT access token (read, not verified: Label Studio verifies it;
    we only want to renew it in time); None when it has none we can read."""
    try:
        body = access.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("exp")
    except (IndexError, ValueError, binascii.Error, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


class LabelStudioClient:
    """Label Studio's API, read with its token (never logged); one retrain at a time.

    Two kinds of token: a Personal Access Token (Label Studio 1.23's default, a JWT
    refresh token) is exchanged at `POST /api/token/refresh` for an access token sent
    as `Authorization: Bearer`, renewed before it expires and again on a 401; a legacy
    API token goes as `Authorization: Token <key>`."""

    def __init__(self, settings: ServerSettings, transport: Any = None,
                 clock: Any = time.time):
        import httpx

        if not settings.label_studio_url or not settings.label_studio_token:
            raise ProjectError("--label-studio needs Label Studio's URL and an API token "
                               "(--label-studio-url/--label-studio-token, or "
                               "LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY)")
        self.base = settings.label_studio_url.rstrip("/")
        token = settings.label_studio_token.strip()
        self._pat = token if is_jwt(token) else None
        self.client = httpx.Client(base_url=self.base, transport=transport, timeout=30.0,
                                   headers={} if self._pat else
                                   {"Authorization": f"Token {token}"})
        self._clock = clock
        self._access: str | None = None
        self._access_exp: float | None = None
        self._auth = threading.Lock()
        self.training = threading.Lock()  # labels still come in while a model trains

    def _bearer(self, stale: str | None = None) -> str:
        """A valid access token for the PAT: the one held, or a fresh one from
        /api/token/refresh when there is none, it expires soon, or it is `stale` (the
        one a 401 answered)."""
        import httpx

        with self._auth:
            due = (self._access is None or self._access == stale
                   or (self._access_exp is not None
                       and self._clock() >= self._access_exp - EXPIRY_MARGIN))
            if not due:
                return self._access
            try:
                r = self.client.post("/api/token/refresh", json={"refresh": self._pat})
            except httpx.HTTPError as e:
                raise ProjectError(f"Label Studio at {self.base} did not answer "
                                   f"/api/token/refresh: {type(e).__name__}") from None
            access = None
            if r.status_code == 200:
                try:
                    access = r.json().get("access")
                except (ValueError, AttributeError):
                    access = None
            if not isinstance(access, str) or not access:
                raise ProjectError(
                    f"Label Studio at {self.base} refused the personal access token at "
                    f"/api/token/refresh ({r.status_code}): it was revoked or expired, or "
                    "belongs to another server; make a new one (Account & Settings > "
                    "Personal Access Token)")
            self._access, self._access_exp = access, _expires(access)
            return access

    def _get(self, path: str) -> Any:
        if self._pat is None:
            return self.client.get(path)
        access = self._bearer()
        r = self.client.get(path, headers={"Authorization": f"Bearer {access}"})
        if r.status_code == 401:  # expired early or revoked: renew once and retry
            access = self._bearer(stale=access)
            r = self.client.get(path, headers={"Authorization": f"Bearer {access}"})
        return r

    def fetch(self, path: str) -> dict:
        """GET `path` of Label Studio's API as an object; ProjectError otherwise."""
        import httpx

        try:
            r = self._get(path)
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
    return labelstudio.predict_tasks(store, Settings.load(store), body.tasks)


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
