"""User use cases of the annotation service: add users with a bearer token (shown once,
kept as a hash), authenticate a token, list and remove users."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from longtail.engine.records import Record
from longtail.errors import InputError, LongtailError
from longtail.store import Store

ROLES = ("admin", "annotator")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class UserRemoved(LongtailError):
    """The user a request came from was removed meanwhile (the service answers 401)."""


@dataclass(frozen=True)
class User:
    """Who a request is from."""

    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_hash(token: str) -> str:
    """SHA-256 hex of a token: tokens are 32 random bytes, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check(name: str, role: str) -> None:
    if not _NAME.match(name or ""):
        raise InputError(f"user name {name!r}: 1-128 characters, letters, digits and . _ @ + - "
                         "(starting with a letter or digit)")
    if role not in ROLES:
        raise InputError(f"role {role!r}: one of {', '.join(ROLES)}")


def add_user(store: Store, name: str, role: str = "annotator", *,
             actor: str = "cli") -> tuple[User, str]:
    """A new user and their token (returned once; only its hash is stored). The audit
    log records who did it (`actor`: `cli` for a command on the machine)."""
    _check(name, role)
    token = secrets.token_urlsafe(32)
    with store.unit_of_work() as uow:
        if uow.users.by_name(name) is not None:
            raise InputError(f"user {name!r} exists already (`longtail users token {name}` "
                             "gives them a new token)")
        user_id = uow.users.add(name, role, token_hash(token))
        uow.audit.add(actor, "user_added", {"user": name, "role": role})
    return User(user_id, name, role), token


def new_token(store: Store, name: str, *, actor: str = "cli") -> str:
    """Replace a user's token (the old one stops working); the new token, once."""
    token = secrets.token_urlsafe(32)
    with store.unit_of_work() as uow:
        if not uow.users.set_token(name, token_hash(token)):
            raise InputError(f"no user {name!r}")
        uow.audit.add(actor, "token_replaced", {"user": name})
    return token


def remove_user(store: Store, name: str, *, actor: str = "cli") -> None:
    """Remove a user: their token stops working and their leases go back to the queue;
    their labels stay."""
    with store.unit_of_work() as uow:
        found = uow.users.by_name(name)
        if found is None:
            raise InputError(f"no user {name!r}")
        uow.users.remove(found["id"])
        uow.audit.add(actor, "user_removed", {"user": name})


def authenticate(store: Store, token: str) -> User | None:
    """The user holding `token`, or None."""
    return authenticate_hash(store, token_hash(token)) if token else None


def authenticate_hash(store: Store, token_sha256: str) -> User | None:
    """The user whose token hashes to `token_sha256`, or None (for callers that keep
    hashes, never tokens)."""
    with store.unit_of_work() as uow:
        found = uow.users.by_token_hash(token_sha256)
    return User(found["id"], found["name"], found["role"]) if found else None


@dataclass(frozen=True)
class TokenTable:
    """Every user by token hash (`by_hash`): the service's token cache, read at once."""

    by_hash: dict[str, User]


def token_table(store: Store) -> TokenTable:
    """token hash -> user, for every user, in one read."""
    with store.reading() as uow:
        return TokenTable({h: User(i, n, r) for h, (i, n, r) in uow.users.token_table().items()})


@dataclass(frozen=True)
class UserRecord(Record):
    """A user as `longtail users list` and `GET /admin/users` show it (never the token)."""

    id: int
    name: str
    role: str
    created_at: str


def list_users(store: Store) -> list[UserRecord]:
    """Every user: id, name, role, created_at (never a token or its hash)."""
    with store.unit_of_work() as uow:
        return [UserRecord(**u) for u in uow.users.list()]


@dataclass(frozen=True)
class AuditEntry(Record):
    """One admin action of the audit log (`GET /admin/audit`)."""

    id: int
    created_at: str
    actor: str
    action: str
    detail: dict


def audit_log(store: Store, *, offset: int = 0, limit: int = 100) -> list[AuditEntry]:
    """The audit log, most recent first, a page at a time."""
    with store.unit_of_work() as uow:
        return [AuditEntry(**e) for e in uow.audit.latest(offset, limit)]
