"""The service's settings: how work is handed out and what a request may carry."""

from __future__ import annotations

from dataclasses import dataclass, field

from longtail.engine.tasks import TaskPolicy
from longtail.errors import InputError


@dataclass(frozen=True)
class ServerSettings:
    """`longtail serve`'s options. Bodies over `max_body` bytes are refused (413), a
    label file sent to POST /admin/import over `max_import` bytes too; pages of lists
    hold at most `max_page` items."""

    lease_ttl: float = 600.0
    overlap: int = 1
    max_body: int = 64 * 1024
    max_import: int = 64 * 1024 * 1024
    max_page: int = 1000
    # Wrong tokens one client address may send within the window before it gets 429.
    auth_fail_limit: int = 20
    auth_fail_window: float = 10.0
    # ML-backend mode (`--label-studio`): Label Studio's URL and API token (kept out of
    # repr, so it never reaches a log line), and the labels that trigger a retrain.
    label_studio: bool = False
    label_studio_url: str | None = None
    label_studio_token: str | None = field(default=None, repr=False)
    retrain_every: int = 20
    # The ML-backend routes' body limit (`--max-ml-body`): Label Studio sends a whole
    # batch of tasks to /predict and every imported task in a TASKS_CREATED webhook.
    max_ml_body: int = 64 * 1024 * 1024
    # Plan a round of this many samples when none is open (`--auto-round`); 0: never.
    auto_round: int = 0
    # Bind (or move) the server to this Label Studio project (`--label-studio-project`).
    label_studio_project: int | None = None
    # The ML-backend routes' HTTP basic auth, "user:pass" (`--ml-auth`); None: open.
    ml_auth: str | None = field(default=None, repr=False)
    # Webhooks out: URLs that get round_completed / batch_exhausted events, and the
    # secret their HMAC signature is made with (out of repr too).
    webhooks: tuple[str, ...] = ()
    webhook_secret: str | None = field(default=None, repr=False)
    # Serve the two routes of a submission (lease, label) in the lean lane of
    # server/hot.py; False: through FastAPI's routing like every other route (the
    # tests compare the two).
    hot_routes: bool = True
    # The key of signed media URLs (server/media.py); random per start when None.
    media_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.policy  # noqa: B018  (checks TTL and overlap)
        if self.max_body < 1024:
            raise InputError(f"max body must be at least 1024 bytes, got {self.max_body}")
        if self.max_import < self.max_body:
            raise InputError(f"max import ({self.max_import} bytes) must be at least the max "
                             f"body ({self.max_body} bytes)")
        if self.auth_fail_limit < 1 or not self.auth_fail_window > 0:
            raise InputError("the failed sign-in limit needs at least 1 attempt over a "
                             "window of more than 0 seconds")
        if self.max_page < 1:
            raise InputError(f"max page must be at least 1, got {self.max_page}")
        for url in self.webhooks:
            if not url.startswith(("http://", "https://")):
                raise InputError(f"webhook {url!r}: an http:// or https:// URL")
        if self.ml_auth is not None:
            user, sep, password = self.ml_auth.partition(":")
            if not sep or not user or not password:
                raise InputError("--ml-auth takes USER:PASSWORD (both non-empty)")
            if not self.label_studio:
                raise InputError("--ml-auth guards the ML-backend routes: add --label-studio")
        if self.max_ml_body < 1024:
            raise InputError(f"max ML body must be at least 1024 bytes, got {self.max_ml_body}")
        if self.auto_round < 0:
            raise InputError(f"auto round must be 0 (off) or a batch size, got {self.auto_round}")
        if (self.auto_round or self.label_studio_project is not None) and not self.label_studio:
            raise InputError("--auto-round and --label-studio-project are for the ML-backend "
                             "mode: add --label-studio")
        if self.label_studio_project is not None and self.label_studio_project < 1:
            raise InputError("--label-studio-project takes a Label Studio project id (1 or more)")
        if self.retrain_every < 1:
            raise InputError(f"retrain every must be at least 1 label, got {self.retrain_every}")

    @property
    def policy(self) -> TaskPolicy:
        return TaskPolicy(lease_ttl=self.lease_ttl, overlap=self.overlap)
