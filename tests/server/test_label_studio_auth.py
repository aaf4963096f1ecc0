"""Issue 27, findings 11 and 6: the ML-backend routes behind HTTP basic auth
(`serve --ml-auth USER:PASSWORD`), and Label Studio 1.23's Personal Access Token (a JWT
refresh token exchanged at /api/token/refresh, sent as Bearer, renewed on expiry)
beside the legacy `Token <key>`."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from fastapi.testclient import TestClient

from longtail.errors import InputError
from longtail.server.app import create_app
from longtail.server.routers.label_studio import LabelStudioClient, is_jwt
from longtail.server.settings import ServerSettings

from .conftest import Clock

LS = "http://ls.example:8080"


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _backend(store, ml_auth=None, handler=None):
    handler = handler or (lambda request: httpx.Response(404, json={"detail": "not found"}))
    settings = ServerSettings(label_studio=True, label_studio_url=LS,
                              label_studio_token="ls-legacy-key", ml_auth=ml_auth)
    return TestClient(create_app(store.root, settings, ls_transport=httpx.MockTransport(handler)))


CALLS = [("get", "/health", None),
         ("post", "/setup", {"project": "3.17", "schema": "<View/>"}),
         ("post", "/predict", {"tasks": [{"id": 1, "data": {"text": "text number 1"}}]}),
         ("post", "/webhook", {"action": "PROJECT_UPDATED"})]


def test_ml_backend_routes_need_the_basic_auth_credentials(store, people):
    c = _backend(store, ml_auth="labelstudio:s3cret:with-colon")
    bearer = {"Authorization": f"Bearer {people['root'][1]}"}
    wrong = [{}, _basic("labelstudio", "nope"), _basic("other", "s3cret:with-colon"), bearer,
             {"Authorization": "Basic !!not-base64"}, {"Authorization": "Basic "}]
    for method, path, body in CALLS:
        for headers in wrong:
            r = getattr(c, method)(path, headers=headers, **({"json": body} if body else {}))
            assert r.status_code == 401, (path, headers, r.text)
            assert r.headers["www-authenticate"].startswith("Basic"), path
            assert "model_version" not in r.text
        r = getattr(c, method)(path, headers=_basic("labelstudio", "s3cret:with-colon"),
                               **({"json": body} if body else {}))
        assert r.status_code == 200, (path, r.text)
    # The annotators' routes keep their bearer tokens.
    assert c.post("/tasks/lease", headers=bearer).status_code == 200


def test_without_ml_auth_the_routes_stay_open_and_bad_settings_are_refused(store):
    assert _backend(store).get("/health").status_code == 200
    for bad in ("nocolon", ":pw", "user:"):
        with pytest.raises(InputError, match="USER:PASSWORD"):
            ServerSettings(label_studio=True, label_studio_url=LS, label_studio_token="k",
                           ml_auth=bad)
    with pytest.raises(InputError, match="--label-studio"):
        ServerSettings(ml_auth="u:p")
    assert "s3cret" not in repr(ServerSettings(label_studio=True, ml_auth="u:s3cret"))


def _jwt(payload: dict) -> str:
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


class FakeLabelStudio:
    """Label Studio 1.23's token behaviour over time: /api/token/refresh turns the PAT
    into an access token with an `exp`; API calls take `Bearer <access>` until it
    expires (401 after), or a legacy `Token <key>`. The exchange itself, a webhook read
    with a PAT and a revoked PAT's refusal are tested on what a real Label Studio
    answered (test_label_studio_recorded.py); this fake stays for what a 5-minute
    recording cannot show: renewal before expiry and after an early 401."""

    def __init__(self, clock: Clock, pat: str, legacy: str = "abc123legacy", ttl: float = 300):
        self.clock, self.pat, self.legacy, self.ttl = clock, pat, legacy, ttl
        self.issued: dict[str, float] = {}
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        self.seen.append((request.url.path, auth))
        if request.url.path == "/api/token/refresh":
            if request.method != "POST" or json.loads(request.content) != {"refresh": self.pat}:
                return httpx.Response(401, json={"detail": "Token is invalid or expired"})
            exp = self.clock() + self.ttl
            access = _jwt({"token_type": "access", "exp": exp, "n": len(self.issued)})
            self.issued[access] = exp
            return httpx.Response(200, json={"access": access})
        ok = auth == f"Token {self.legacy}" or (
            auth is not None and auth.startswith("Bearer ")
            and self.issued.get(auth[7:], 0) > self.clock())
        if not ok:
            return httpx.Response(401, json={"detail": "Authentication credentials were not provided."})
        return httpx.Response(200, json={"id": 5, "path": request.url.path})


def _client(fake, token: str, clock: Clock) -> LabelStudioClient:
    settings = ServerSettings(label_studio=True, label_studio_url=LS, label_studio_token=token)
    return LabelStudioClient(settings, httpx.MockTransport(fake), clock=clock)


def test_a_personal_access_token_is_exchanged_and_sent_as_bearer_and_renewed():
    clock = Clock()
    pat = _jwt({"token_type": "refresh", "exp": clock() + 10**8})
    assert is_jwt(pat) and not is_jwt("0123456789abcdef0123456789abcdef01234567")
    fake = FakeLabelStudio(clock, pat)
    client = _client(fake, pat, clock)
    assert client.fetch("/api/annotations/5") == {"id": 5, "path": "/api/annotations/5"}
    assert client.fetch("/api/tasks/7")["path"] == "/api/tasks/7"
    paths = [p for p, _ in fake.seen]
    assert paths == ["/api/token/refresh", "/api/annotations/5", "/api/tasks/7"]  # one exchange
    first = fake.seen[1][1]
    assert first.startswith("Bearer ") and first[7:] in fake.issued
    assert all(pat not in (a or "") for _, a in fake.seen)  # the PAT never goes as a header
    # Near its expiry, the access token is renewed before the call.
    clock.t += 290
    client.fetch("/api/tasks/8")
    assert [p for p, _ in fake.seen[3:]] == ["/api/token/refresh", "/api/tasks/8"]
    # Revoked or expired early (the server says 401): renewed once, the call retried.
    fake.issued = dict.fromkeys(fake.issued, 0.0)
    assert client.fetch("/api/tasks/9")["path"] == "/api/tasks/9"
    assert [p for p, _ in fake.seen[5:]] == ["/api/tasks/9", "/api/token/refresh", "/api/tasks/9"]


def test_a_legacy_token_goes_as_token():
    clock = Clock()
    pat = _jwt({"token_type": "refresh"})
    fake = FakeLabelStudio(clock, pat)
    assert _client(fake, "abc123legacy", clock).fetch("/api/tasks/1")["id"] == 5
    assert fake.seen == [("/api/tasks/1", "Token abc123legacy")]


def test_the_schema_says_basic_auth_only_when_it_is_on(store):
    def ops(c):
        paths = c.get("/openapi.json").json()["paths"]
        return [paths[p][m] for m, p, _ in [(x[0], x[1], x[2]) for x in CALLS]]
    for op in ops(_backend(store)):
        assert "security" not in op and "401" not in op["responses"]
    c = _backend(store, ml_auth="u:p")
    assert c.get("/openapi.json").json()["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    for op in ops(c):
        assert op["security"] == [{"basic": []}] and "401" in op["responses"]
