"""Each command's catalog changes commit once (SQLAlchemy's `commit` event, counted on
the store's engine), on SQLite and PostgreSQL: a kill between two commits of one
command can no longer leave a model without its metrics, or a round half-recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event

from longtail.project import Project
from tests.conftest import make_pool, write_csv, write_pool_csv


def commits(project: Project, call: Callable[[], object]) -> int:
    """How many transactions `call` commits on the project's catalog, leaving out the
    compute ledger's record (issue 29: kept in a small transaction of its own after a
    metered command succeeds, so a failed command changes nothing, not even the ledger)."""
    seen: list[int] = []
    statements: dict[int, list[str]] = {}

    def executed(conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.setdefault(id(conn), []).append(statement.lstrip().upper())

    def committed(conn) -> None:  # noqa: ANN001
        writes = [s for s in statements.pop(id(conn), [])
                  if s.startswith(("INSERT", "UPDATE", "DELETE"))]
        if not (writes and all(" COMPUTE_RUNS" in s.split("(")[0] for s in writes)):
            seen.append(1)

    def rolled_back(conn) -> None:  # noqa: ANN001
        statements.pop(id(conn), None)

    engine = project.store.engine
    event.listen(engine, "before_cursor_execute", executed)
    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
    try:
        call()
    finally:
        event.remove(engine, "rollback", rolled_back)
        event.remove(engine, "commit", committed)
        event.remove(engine, "before_cursor_execute", executed)
    return len(seen)


def _label(p: Project, ids: list[str], path: Path, annotator: str = "a") -> Callable[[], object]:
    truth = {ext: meta["truth"] for b in p.store.iter_samples() for _, ext, _, meta in b}
    f = write_csv(path, ["id", "label", "who"], [[i, truth[i], annotator] for i in ids])
    return lambda: p.import_labels(f, annotator="who")


@pytest.fixture
def trained(project: Project, tmp_path: Path) -> Project:
    X, y = make_pool(300, seed=4)
    project.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                   vector_prefix="v")
    for i in range(2):
        q = project.query(40, strategy="random")
        _label(project, q.ids, tmp_path / f"l{i}.csv")()
        project.train()
    return project


def test_every_command_commits_once(trained: Project, tmp_path: Path):
    p = trained
    q = None

    def query() -> None:
        nonlocal q
        q = p.query(30)

    assert commits(p, query) == 1
    assert commits(p, _label(p, q.ids, tmp_path / "more.csv")) == 1
    # train: the model, its metrics on the managed eval set, the rounds' lifts and the
    # lift settings, together (before: 9 commits)
    assert commits(p, p.train) == 1
    assert commits(p, lambda: p.train(force=True)) == 1
    assert commits(p, p.evaluate) == 1
    assert commits(p, lambda: p.set_consensus("majority")) == 1
    assert commits(p, p.suspects) <= 1
    # Reads commit nothing.
    for read in (p.status, p.rounds, p.curves, p.stopping, p.history):
        assert commits(p, read) == 0, read
