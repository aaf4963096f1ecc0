"""The service's settings: how work is handed out and what a request may carry."""

from __future__ import annotations

from dataclasses import dataclass

from longtail.engine.tasks import TaskPolicy
from longtail.errors import InputError


@dataclass(frozen=True)
class ServerSettings:
    """`longtail serve`'s options. Bodies over `max_body` bytes are refused (413);
    pages of lists hold at most `max_page` items."""

    lease_ttl: float = 600.0
    overlap: int = 1
    max_body: int = 64 * 1024
    max_page: int = 1000

    def __post_init__(self) -> None:
        self.policy  # noqa: B018  (checks TTL and overlap)
        if self.max_body < 1024:
            raise InputError(f"max body must be at least 1024 bytes, got {self.max_body}")
        if self.max_page < 1:
            raise InputError(f"max page must be at least 1, got {self.max_page}")

    @property
    def policy(self) -> TaskPolicy:
        return TaskPolicy(lease_ttl=self.lease_ttl, overlap=self.overlap)
