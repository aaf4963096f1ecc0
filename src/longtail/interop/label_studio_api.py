"""Label Studio's REST API, as longtail reads and writes it: the one place that talks
to a Label Studio server (the service's ML-backend mode and `longtail label-studio
sync`). Needs httpx (the `serve` extra).

Two kinds of token: a Personal Access Token (Label Studio 1.23's default, a JWT refresh
token) is exchanged at `POST /api/token/refresh` for an access token sent as
`Authorization: Bearer`, renewed before it expires and again on a 401; a legacy API
token goes as `Authorization: Token <key>`. Tokens are never logged."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from typing import Any

from longtail.errors import ProjectError

_B64URL = re.compile(r"[A-Za-z0-9_-]+=*")
# Refresh an access token this many seconds before its `exp`, not on the last second.
EXPIRY_MARGIN = 30.0
# Tasks per page when reading a project's tasks (`tasks`).
PAGE = 100
# The httpx transport when none is given (None: the network). Tests point it at a
# replay of recorded exchanges to drive the CLI.
default_transport: Any = None


def is_jwt(token: str) -> bool:
    """A Label Studio Personal Access Token is a JWT (a refresh token: three base64url
    parts, two dots); a legacy API token is one hex key."""
    parts = token.split(".")
    return len(parts) == 3 and all(p and _B64URL.fullmatch(p) for p in parts)


def _expires(access: str) -> float | None:
    """The `exp` of a JWT access token (read, not verified: Label Studio verifies it;
    we only want to renew it in time); None when it has none we can read."""
    try:
        body = access.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("exp")
    except (IndexError, ValueError, binascii.Error, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None


class LabelStudioAPI:
    """Label Studio at `url` with `token` (a PAT or a legacy key). `transport` is an
    httpx transport (tests replay recorded exchanges through one); `clock` gives the
    time access tokens are judged by."""

    def __init__(self, url: str | None, token: str | None, transport: Any = None,
                 clock: Any = time.time):
        import httpx

        if not url or not token:
            raise ProjectError("Label Studio needs its URL and an API token "
                               "(--label-studio-url/--label-studio-token, or "
                               "LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY)")
        self.base = url.rstrip("/")
        token = token.strip()
        self._pat = token if is_jwt(token) else None
        transport = transport if transport is not None else default_transport
        self.client = httpx.Client(base_url=self.base, transport=transport, timeout=30.0,
                                   headers={} if self._pat else
                                   {"Authorization": f"Token {token}"})
        self._clock = clock
        self._access: str | None = None
        self._access_exp: float | None = None
        self._auth = threading.Lock()

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

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        if self._pat is None:
            return self.client.request(method, path, **kw)
        access = self._bearer()
        r = self.client.request(method, path, headers={"Authorization": f"Bearer {access}"}, **kw)
        if r.status_code == 401:  # expired early or revoked: renew once and retry
            access = self._bearer(stale=access)
            r = self.client.request(method, path, headers={"Authorization": f"Bearer {access}"},
                                    **kw)
        return r

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """`method` `path` of Label Studio's API, its JSON answer; ProjectError naming
        the path for no answer or a status other than 2xx."""
        import httpx

        try:
            r = self._send(method, path, **kw)
        except httpx.HTTPError as e:
            raise ProjectError(f"Label Studio at {self.base} did not answer {path}: "
                               f"{type(e).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise ProjectError(f"Label Studio at {self.base} answered {r.status_code} for "
                               f"{path}")
        try:
            return r.json() if r.content else None
        except ValueError:
            raise ProjectError(f"Label Studio at {self.base}: {path} did not answer JSON") from None

    def fetch(self, path: str) -> dict:
        """GET `path` as an object; ProjectError otherwise."""
        got = self.call("GET", path)
        if not isinstance(got, dict):
            raise ProjectError(f"Label Studio at {self.base}: {path} is not an object")
        return got

    def tasks(self, project: int) -> list[dict]:
        """Every task of `project` with its annotations (cancelled ones too), a page at
        a time (`GET /api/tasks?project=N&fields=all`)."""
        out: list[dict] = []
        page = 1
        while True:
            got = self.call("GET", "/api/tasks", params={
                "project": project, "page": page, "page_size": PAGE, "fields": "all"})
            batch = got.get("tasks") if isinstance(got, dict) else got
            if not isinstance(batch, list):
                raise ProjectError(f"Label Studio at {self.base}: /api/tasks did not list tasks")
            out += [t for t in batch if isinstance(t, dict)]
            total = got.get("total") if isinstance(got, dict) else None
            if not batch or len(batch) < PAGE or (isinstance(total, int) and len(out) >= total):
                return out
            page += 1

    def rename_backend(self, project: int, old: set[str], new: str) -> list[tuple[int, str]]:
        """Rename the project's ML backends that are longtail's (title or model version
        in `old`, or starting with "longtail") to `new`: Label Studio moves the
        project's pinned `model_version` along with its backend's title, so the data
        manager's prediction scores and `/next` read the new model's predictions, and
        Label Studio asks /predict again for tasks whose predictions are older. The ids
        of longtail's backends (renamed now or named so already), with their URLs; none
        while Label Studio has not saved the backend it is connecting."""
        got = self.call("GET", "/api/ml", params={"project": project})
        backends = got if isinstance(got, list) else (got or {}).get("results", [])
        old = {o for o in old if o}
        ours = []
        for b in backends:
            if not isinstance(b, dict):
                continue
            names = {str(b.get("title") or ""), str(b.get("model_version") or "")} - {""}
            if not (new in names or names & old or any(n.startswith("longtail") for n in names)):
                continue
            ours.append((int(b["id"]), str(b.get("url") or "")))
            if b.get("title") == new:
                continue
            # Label Studio checks the connection again on any change, and needs the URL
            # and project for that (a PATCH of the title alone answers 500); an empty
            # password keeps the stored one.
            body = {"title": new, "url": b.get("url"), "project": project,
                    "auth_method": b.get("auth_method") or "NONE"}
            if body["auth_method"] == "BASIC_AUTH":
                body.update(basic_auth_user=b.get("basic_auth_user"), basic_auth_pass="")
            self.call("PATCH", f"/api/ml/{int(b['id'])}", json=body)
        return ours

    def authorize_webhook(self, project: int, backend_url: str, authorization: str) -> list[int]:
        """Give the webhook Label Studio made for an ML backend (`<backend
        URL>/webhook`, created without credentials when the model is connected) the
        `Authorization` header the backend wants (`serve --ml-auth`), keeping its other
        headers. The ids of the webhooks changed."""
        want = backend_url.rstrip("/") + "/webhook"
        got = self.call("GET", "/api/webhooks", params={"project": project})
        done = []
        for h in got if isinstance(got, list) else []:
            if not isinstance(h, dict) or str(h.get("url") or "").rstrip("/") != want:
                continue
            headers = h.get("headers") if isinstance(h.get("headers"), dict) else {}
            if headers.get("Authorization") == authorization:
                continue
            self.call("PATCH", f"/api/webhooks/{int(h['id'])}",
                      json={"headers": {**headers, "Authorization": authorization}})
            done.append(int(h["id"]))
        return done

    def close(self) -> None:
        self.client.close()
