"""What a route depends on: the service (store, settings, writer, webhooks, clock) and
the user its bearer token names. Routers take these through `Depends`, so a test
mounts one router on its own and swaps any of them with `app.dependency_overrides`."""

# No `from __future__ import annotations`: FastAPI must see the Annotated aliases (Me,
# Admin, Svc) as objects, not strings.
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from longtail.engine import tasks, users
from longtail.engine.suggest import Suggester
from longtail.engine.users import User
from longtail.errors import InputError
from longtail.server.settings import ServerSettings
from longtail.store import Store

AUTH_TTL = 5.0  # seconds a checked token is trusted without reading the catalog again


class AuthCache:
    """Which user a token hash names, without a catalog read per request: every user's
    token hash is read at once (`users.token_table`, one query) and trusted for `ttl`
    seconds; a hash not in the table (a token made since, or a wrong one) is looked up
    on its own and remembered for `ttl`. A removed user or replaced token stops working
    within `ttl`. Only hashes are kept, as in the catalog; the single lookups are
    bounded, so a flood of bad tokens cannot grow it."""

    def __init__(self, ttl: float = AUTH_TTL, size: int = 10_000):
        self.ttl, self.size = ttl, size
        self._table: dict[str, User] = {}
        self._loaded = -math.inf
        self._loading: Any = None
        self._seen: dict[str, tuple[User | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[User | None] | None:
        if now - self._loaded <= self.ttl and (user := self._table.get(key)) is not None:
            return (user,)
        hit = self._seen.get(key)
        return None if hit is None or now - hit[1] > self.ttl else (hit[0],)

    def stale(self, now: float) -> bool:
        """Whether the table is older than `ttl` (read it again before trusting it)."""
        return now - self._loaded > self.ttl

    async def reload(self, load: Callable[[], dict[str, User]], now: float) -> None:
        """Read the table again with `load` (on a worker thread); requests that find
        it stale meanwhile wait for the same read instead of making their own."""
        import asyncio

        if self._loading is None:
            self._loading = asyncio.ensure_future(run_in_threadpool(load))
            try:
                table = await self._loading
            finally:
                self._loading = None
            with self._lock:
                self._table, self._loaded = table, now
                self._seen.clear()
        else:
            await asyncio.shield(self._loading)

    def put(self, key: str, user: User | None, now: float) -> None:
        with self._lock:
            if len(self._seen) > self.size:
                self._seen.clear()
            self._seen[key] = (user, now)

    def forget(self, user_id: int) -> None:
        """Drop every cached token of a user (removed, or their token replaced)."""
        with self._lock:
            self._seen = {k: v for k, v in self._seen.items()
                          if v[0] is None or v[0].id != user_id}
            self._table = {k: u for k, u in self._table.items() if u.id != user_id}


class FailedAuth:
    """Failed sign-ins per client address: after `limit` wrong tokens within `window`
    seconds, the address gets 429 with Retry-After until the oldest of them is older
    than the window (guessing tokens costs time; a typo costs nothing). Bounded: the
    table is cleared when it passes `size` addresses."""

    def __init__(self, limit: int = 20, window: float = 10.0, size: int = 10_000):
        self.limit, self.window, self.size = limit, window, size
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str, now: float) -> float:
        """Seconds `client` must wait before trying a token again (0: go ahead)."""
        with self._lock:
            times = [t for t in self._seen.get(client, ()) if now - t < self.window]
            if times:
                self._seen[client] = times
            else:
                self._seen.pop(client, None)
            return self.window - (now - times[0]) if len(times) >= self.limit else 0.0

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            if len(self._seen) > self.size:
                self._seen.clear()
            self._seen.setdefault(client, []).append(now)


@dataclass
class Service:
    """Everything the routes share, made once by `create_app` and kept on
    `app.state.service`: no route closes over mutable state of its own."""

    store: Store
    settings: ServerSettings
    writer: tasks.GroupCommit
    hooks: Any
    clock: Callable[[], float] = time.time
    auth: AuthCache = field(default_factory=AuthCache)
    failed_auth: FailedAuth = field(default_factory=FailedAuth)
    # batch_exhausted goes out once per emptying of the queue.
    exhausted_sent: bool = False
    # ML-backend mode: the Label Studio client (server/routers/label_studio.py).
    label_studio: Any = None
    # ...its bound project, pool order and retrain worker (server/ml_backend.py).
    ml_backend: Any = None
    # The model's top classes for a leased task (engine/suggest.py), its model cached.
    suggest: Suggester = field(default_factory=Suggester)
    # The key of the signed media URLs (server/media.py).
    media_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def policy(self) -> tasks.TaskPolicy:
        return self.settings.policy

    def page(self, limit: int | None) -> int:
        """A page size: `limit`, or 100 (at most the server's max page)."""
        if limit is None:
            return min(100, self.settings.max_page)
        if limit > self.settings.max_page:
            raise InputError(f"limit {limit} is over the page size limit "
                             f"{self.settings.max_page}")
        return limit


async def known_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (422), as request bodies
    refuse unknown fields: a typo (`?limt=5`) is an error, not a silent default."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    names: set[str] = set()
    todo = [dependant] if dependant is not None else []
    while todo:
        d = todo.pop()
        names.update(p.alias for p in d.query_params)
        todo.extend(d.dependencies)
    unknown = sorted(set(request.query_params.keys()) - names)
    if unknown:
        raise RequestValidationError([{"loc": ["query", k], "msg": "unknown query parameter",
                                       "type": "extra_forbidden"} for k in unknown])


# The dependencies are `async def`: FastAPI runs a plain `def` dependency on a worker
# thread, a hop per request on the hot routes for what is an attribute lookup.
async def get_service(request: Request) -> Service:
    """The service of the app serving this request."""
    return request.app.state.service


Svc = Annotated[Service, Depends(get_service)]


async def get_store(svc: Svc) -> Any:
    """The project's store."""
    return svc.store


StoreDep = Annotated[Any, Depends(get_store)]


async def current_user(request: Request, svc: Svc) -> User:
    """The user of the request's bearer token: 401 without one or with a wrong one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    key = users.token_hash(token)
    now = time.monotonic()
    client = request.client.host if request.client else "-"
    wait = svc.failed_auth.wait(client, now)
    if wait > 0:
        raise HTTPException(429, "too many wrong tokens from your address: wait before "
                            "trying again", headers={"Retry-After": str(math.ceil(wait))})
    hit = svc.auth.get(key, now)
    if hit is None and svc.auth.stale(now):
        await svc.auth.reload(lambda: users.token_table(svc.store).by_hash, now)
        hit = svc.auth.get(key, now)
    if hit is None:
        user = await run_in_threadpool(users.authenticate_hash, svc.store, key)
        svc.auth.put(key, user, now)
        hit = (user,)
    if hit[0] is None:
        svc.failed_auth.failed(client, now)
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    request.state.user = hit[0].name
    return hit[0]


Me = Annotated[User, Depends(current_user)]


async def admin_user(user: Me) -> User:
    """The current user, who must be an admin (403 otherwise)."""
    if not user.is_admin:
        raise HTTPException(403, "admins only")
    return user


Admin = Annotated[User, Depends(admin_user)]
