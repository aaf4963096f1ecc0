"""Fixtures of the service suites: a small project with an open round, users, and a
test client over `create_app` with a clock the test moves."""

from __future__ import annotations

import json
import os
import uuid
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


PG_ENV = "LONGTAIL_TEST_PG"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_pg: dict = {}


def _pg_engine():
    """(admin engine, url) of the test PostgreSQL server, or (None, reason)."""
    if "engine" not in _pg:
        from sqlalchemy import create_engine, text

        from longtail.store.catalog import parse_db_url

        url = parse_db_url(os.environ.get(PG_ENV) or PG_DEFAULT)
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg.update(engine=engine, url=url)
        except Exception as e:  # noqa: BLE001 - any failure to connect means "no server"
            engine.dispose()
            _pg.update(engine=None, url=str(e).strip().splitlines()[0] if str(e).strip() else "?")
    return _pg["engine"], _pg["url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """None (SQLite in the project directory) or a PostgreSQL URL whose search_path is
    a fresh schema of this test. Without a server the PostgreSQL case is skipped,
    unless LONGTAIL_TEST_PG is set (CI): then it fails."""
    if request.param == "sqlite":
        yield None
        return
    from sqlalchemy import text

    engine, url = _pg_engine()
    if engine is None:
        if os.environ.get(PG_ENV):
            pytest.fail(f"{PG_ENV} is set but PostgreSQL does not answer: {url}")
        pytest.skip(f"no PostgreSQL server answers ({url}); set {PG_ENV} to require one")
    schema = f"lt_svc_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


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
