"""Fixtures of the service suites: a small project with an open round, users, and a
test client over `create_app` with a clock the test moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The service is the `serve` extra (`make test` installs it); without it, say so.
pytest.importorskip("fastapi", reason="the service needs the serve extra: pip install -e '.[serve]'")

from longtail.engine import users
from longtail.store import Store

LABELS = ["billing", "card", "transfer"]


class Clock:
    """A clock a test sets: leases expire when the test says so."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_store(root: Path, n: int = 20, round_sizes: tuple[int, ...] = (10,),
               label_set: list[str] | None = LABELS, db_url: str | None = None) -> Store:
    """A catalog with `n` text samples (rows 0..n-1) and one open round per size, each
    taking the next rows in order (position = order)."""
    store = Store.create(root, {"seed": 0}, db_url=db_url)
    with store.unit_of_work() as uow:
        batch = uow.samples.add_batch("pool.csv", "0" * 64, {})
        uow.samples.insert(batch, [(i, f"s{i}", f"{i:032x}", f"text number {i}",
                                    json.dumps({"source": "web"})) for i in range(n)])
        if label_set is not None:
            uow.label_set.set(label_set)
        start = 0
        for size in round_sizes:
            items = [(start + k, k, "selected") for k in range(size)]
            uow.rounds.add("random", {"budget": size}, 0, {"strategy": "random"}, items, None)
            start += size
    return store


@pytest.fixture
def db_url(catalog_url):
    """The service suites' name for `catalog_url` (tests/conftest.py): None (SQLite) or
    a PostgreSQL URL in a fresh schema of this test; skipped without a server unless
    LONGTAIL_TEST_PG is set."""
    return catalog_url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, db_url) -> Store:
    """The small project, on SQLite and on PostgreSQL (see `db_url`)."""
    s = make_store(tmp_path / "proj", db_url=db_url)
    yield s
    s.close()


@pytest.fixture
def people(store: Store) -> dict[str, tuple[users.User, str]]:
    return {name: users.add_user(store, name, role)
            for name, role in (("ann", "annotator"), ("bob", "annotator"), ("cat", "annotator"),
                               ("root", "admin"))}
