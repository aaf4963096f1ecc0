"""Shared fixtures: small seeded synthetic pools written as files, a project, and
catalog URLs for SQLite and PostgreSQL (`catalog_url`)."""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text

from longtail.project import Project
from longtail.store import schema


def make_pool(n: int = 300, d: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return X, np.array([f"c{k}" for k in y])


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_pool_csv(path: Path, X: np.ndarray, y: np.ndarray, start: int = 0) -> Path:
    d = X.shape[1]
    rows = [[f"s{start + i}", f"text {start + i}", *X[i].tolist(), y[i], "web"]
            for i in range(len(X))]
    return write_csv(path, ["id", "text", *[f"v{j}" for j in range(d)], "truth", "source"], rows)


def snapshot(project: Project, *, ledger: bool = True) -> dict:
    """Everything a user can see in the project: every catalog table's rows and the
    valid part of every vector set. `ledger=False` leaves out the compute ledger, which
    records every command that ran, a no-op included."""
    out = {}
    with project.store.engine.connect() as conn:
        for name, table in schema.metadata.tables.items():
            if not ledger and name == "compute_runs":
                continue
            out[name] = sorted(map(repr, conn.execute(select(table)).all()))
    with project.store.reading() as uow:
        sets = {name: uow.vector_set(name) for name in uow.vectors.names()}
    for name, vs in sets.items():
        out[f"vectors:{name}"] = vs.read(np.arange(vs.n_rows)).tobytes()
    return out


@pytest.fixture
def pool_data():
    return make_pool()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.init(tmp_path / "proj", eval_rate=0.1)
    yield p
    p.close()


@pytest.fixture
def loaded(project: Project, tmp_path: Path, pool_data) -> Project:
    X, y = pool_data
    project.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                   vector_prefix="v")
    return project


# -- catalogs on SQLite and PostgreSQL -------------------------------------------------

PG_ENV = "LONGTAIL_TEST_PG"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_pg: dict = {}  # the admin engine (or why there is none), made once per run
_pg_skipped: list[str] = []
_pg_ran: list[str] = []


def _pg_admin():
    """(engine, url, None) for the test server, or (None, url, reason) when none answers."""
    if not _pg:
        from longtail.store.catalog import parse_db_url

        url = parse_db_url(os.environ.get(PG_ENV) or PG_DEFAULT)
        _pg["url"] = url
        try:
            import psycopg  # noqa: F401
        except ImportError as e:
            _pg["engine"], _pg["reason"] = None, f"psycopg is not installed ({e})"
            return None, url, _pg["reason"]
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg["engine"], _pg["reason"] = engine, None
        except Exception as e:  # noqa: BLE001 - any failure to connect means "no server"
            engine.dispose()
            first = str(getattr(e, "orig", e)).strip().splitlines()
            _pg["engine"], _pg["reason"] = None, first[0] if first else type(e).__name__
    return _pg["engine"], _pg["url"], _pg["reason"]


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request):
    """The `db_url` to give `Store.create`: None (SQLite in the project directory), or
    a PostgreSQL URL whose search_path is a fresh schema of this test only, dropped
    afterwards. Without a server the PostgreSQL case is skipped (and the run's summary
    says how many were), unless LONGTAIL_TEST_PG is set: then it fails."""
    if request.param == "sqlite":
        yield None
        return
    engine, url, reason = _pg_admin()
    shown = url.render_as_string()
    if engine is None:
        if os.environ.get(PG_ENV):
            pytest.fail(f"{PG_ENV}={shown}: PostgreSQL does not answer: {reason}")
        _pg_skipped.append(request.node.nodeid)
        pytest.skip(f"PostgreSQL at {shown} unusable ({reason}); start one or set {PG_ENV}")
    schema = f"lt_test_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    _pg_ran.append(request.node.nodeid)
    try:
        # -c search_path: every connection of the store under test lands in the schema.
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.begin() as conn:
            # A store left open by a failed test must not hang the run on its locks.
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def store(tmp_path: Path, catalog_url):
    """An empty store (settings as a fresh project has a few) on each catalog dialect."""
    from longtail.store import Store

    st = Store.create(tmp_path / "store", {"seed": 0, "encoder": None}, db_url=catalog_url)
    yield st
    st.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Say plainly whether the PostgreSQL half of the store tests ran."""
    if _pg_skipped:
        terminalreporter.write_line(
            f"PostgreSQL: {len(_pg_skipped)} test(s) SKIPPED: cannot use "
            f"{_pg['url'].render_as_string()}: {_pg['reason']}. Start a server (as .ci/run does) "
            f"or set {PG_ENV}=postgresql+psycopg://USER@HOST:PORT/DB.", yellow=True, bold=True)
    elif _pg_ran:
        terminalreporter.write_line(
            f"PostgreSQL: {len(_pg_ran)} test(s) ran on {_pg['url'].render_as_string()}.")
