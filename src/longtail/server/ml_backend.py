"""The service's side of Label Studio's ML-backend mode (`serve --label-studio`): its
client of Label Studio's API, the bound Label Studio project, the cached order over the
pool that /predict scores with, and the worker that retrains (and, with
`--auto-round`, plans the next round) off the webhook's request.

Label Studio gives a webhook about a second: /webhook records the label and queues the
work; the worker runs it after the answer. Labels that arrive while a model trains
queue another pass, so none is lost; after each pass that changed the served version,
the worker renames longtail's ML backend in Label Studio to that version, which moves
the project's pinned `model_version` along (Label Studio's own rule), so the data
manager's scores and `/next` read the new predictions."""

from __future__ import annotations

import base64
import logging
import threading
import time
import weakref
from typing import Any

from longtail.engine import labelstudio, rounds, tasks
from longtail.engine.settings import Settings
from longtail.errors import LongtailError, ProjectError
from longtail.interop.label_studio_api import LabelStudioAPI
from longtail.server.settings import ServerSettings
from longtail.store import Store

log = logging.getLogger("longtail.server.ml_backend")


class LabelStudioClient(LabelStudioAPI):
    """Label Studio's API with the server's URL and token (`ServerSettings`)."""

    def __init__(self, settings: ServerSettings, transport: Any = None, clock: Any = time.time):
        super().__init__(settings.label_studio_url, settings.label_studio_token, transport, clock)


class MLWorker:
    """One background thread that does the slow work a webhook asks for: retrain once
    `retrain_every` labels arrived since the latest model, plan a round of `auto_round`
    when none is open, then rename the Label Studio backend to the new version.
    `request()` returns at once; a request made while a pass runs makes another pass."""

    # Every worker made in this process (tests stop them before dropping a catalog).
    made: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, store: Store, settings: ServerSettings, client: LabelStudioAPI | None,
                 project: Any, warm: Any = None):
        self.store, self.settings, self.client = store, settings, client
        self._project = project  # a callable: the bound Label Studio project or None
        self._warm = warm  # a callable: compute the new version's pool order ahead
        self._cond = threading.Condition()
        self._asked = self._done = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self.retrains = 0
        self.pinned: str | None = None  # the version Label Studio's backend was renamed to
        self.planned: list[int] = []
        self.errors: list[str] = []
        MLWorker.made.add(self)

    def request(self) -> int:
        """Queue a pass; its ticket (see `wait`)."""
        with self._cond:
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="longtail-ml-worker",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return self._asked

    def wait(self, ticket: int | None = None, timeout: float = 60.0) -> bool:
        """Until the pass of `ticket` (default: every pass asked so far) is done."""
        deadline = time.monotonic() + timeout
        with self._cond:
            want = self._asked if ticket is None else ticket
            while self._done < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = 30.0) -> None:
        """Finish the pass in progress (a model half trained is not kept anyway) and stop."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._done >= self._asked and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                ticket = self._asked
            try:
                self.work()
            except Exception as e:  # noqa: BLE001 - a failed pass is logged, the next one runs
                self.errors.append(f"{type(e).__name__}: {e}")
                log.warning("ML-backend pass failed: %s: %s", type(e).__name__, e)
            with self._cond:
                self._done = ticket
                self._cond.notify_all()

    def work(self) -> None:
        """One pass: retrain when due, plan a round when none is open (`--auto-round`),
        and pin the served version in Label Studio when it changed."""
        settings = Settings.load(self.store)
        try:
            if labelstudio.retrain_due(self.store, settings, self.settings.retrain_every):
                self.retrains += 1
        except LongtailError as e:
            self.errors.append(str(e))
        if self.settings.auto_round and not tasks.open_rounds(self.store):
            try:
                with tasks.exclusive(self.store):
                    planned = rounds.plan_round(self.store, settings, self.settings.auto_round)
                with tasks.exclusive(self.store), self.store.unit_of_work() as uow:
                    uow.audit.add("label-studio", "round_planned", {
                        "round": planned.round_id, "budget": self.settings.auto_round,
                        "strategy": planned.log.get("strategy", "auto"),
                        "size": len(planned.rows)})
                self.planned.append(planned.round_id)
            except LongtailError as e:  # nothing left to plan, no vectors: said, kept going
                self.errors.append(str(e))
        if self._warm is not None:  # the pass over the pool here, not in Label Studio's
            self._warm()  # next /predict after the rename
        self.pin()

    def pin(self) -> None:
        """Rename longtail's backend in the bound Label Studio project to the served
        version, once per version (a refusal is logged, not retried at every call; a
        backend Label Studio has not saved yet is looked for again at the next one);
        with `--ml-auth`, give the webhook Label Studio made for it the credentials."""
        now = labelstudio.served_version(self.store)
        project = self._project()
        if self.client is None or project is None or now == self.pinned:
            return
        old, self.pinned = self.pinned, now  # /setup calls meanwhile queue nothing
        try:
            found = self.client.rename_backend(project, {old or ""}, now)
        except ProjectError as e:
            self.errors.append(str(e))
            log.warning("could not pin model version %s in Label Studio: %s", now, e)
            return
        if not found:
            self.pinned = old
            return
        if self.settings.ml_auth:  # Label Studio's own webhook, without our basic auth
            header = "Basic " + base64.b64encode(self.settings.ml_auth.encode()).decode()
            for _, url in found:
                try:
                    self.client.authorize_webhook(project, url, header)
                except ProjectError as e:
                    self.errors.append(str(e))
                    log.warning("could not give Label Studio's webhook the basic auth: %s", e)

    def stale(self) -> bool:
        """Whether Label Studio's pin is not the served version (yet)."""
        return self.client is not None and labelstudio.served_version(self.store) != self.pinned


class MLBackend:
    """The ML-backend mode's shared state on the service."""

    def __init__(self, store: Store, settings: ServerSettings, client: LabelStudioAPI | None):
        self.store, self.settings, self.client = store, settings, client
        self._order: labelstudio.PoolOrder | None = None
        self._order_lock = threading.Lock()
        self.project: int | None = labelstudio.bound_project(store)
        self.worker = MLWorker(store, settings, client, lambda: self.project, self.order)

    @classmethod
    def start(cls, store: Store, settings: ServerSettings, transport: Any = None) -> MLBackend:
        """The mode's state for `create_app`: the client (a transport for tests), and
        the project bound to `--label-studio-project` when given."""
        client = LabelStudioClient(settings, transport)
        if settings.label_studio_project is not None:
            with store.unit_of_work() as uow:
                labelstudio.bind_project(uow, settings.label_studio_project, rebind=True)
        return cls(store, settings, client)

    def order(self) -> labelstudio.PoolOrder:
        """The pool's order for the served version, computed once per version."""
        version = labelstudio.served_version(self.store)
        with self._order_lock:
            if self._order is None or self._order.version != version:
                self._order = labelstudio.pool_order(self.store, Settings.load(self.store))
            return self._order

    def close(self) -> None:
        self.worker.close()
        if self.client is not None:
            self.client.close()
