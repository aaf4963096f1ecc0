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
from tests.reads import read


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
    truth = {ext: meta["truth"] for b in read(p.store,
                                              lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
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
    for reader in (p.status, p.rounds, p.curves, p.stopping, p.history):
        assert commits(p, reader) == 0, reader


def _counting(engine) -> tuple[list[int], Callable[[], None]]:  # noqa: ANN001
    """A live count of the commits on `engine` (`[n]`), and the function that stops it."""
    n = [0]

    def committed(_conn) -> None:  # noqa: ANN001
        n[0] += 1

    event.listen(engine, "commit", committed)
    return n, lambda: event.remove(engine, "commit", committed)


def test_run_commits_once_per_step(project: Project, tmp_path: Path):
    """`longtail run`: each step of its loop (a data file with its mark, a label file with
    its mark, a model, a round with its triggers' matches) is one transaction."""
    X, y = make_pool(300, seed=7)
    inbox = tmp_path / "inbox"
    (inbox / "data").mkdir(parents=True)
    (inbox / "labels").mkdir()
    write_pool_csv(inbox / "data" / "a.csv", X, y)
    n, stop = _counting(project.store.engine)
    steps: list[tuple[str, int]] = []
    last = [0]

    def on_event(line: str) -> None:
        steps.append((line.split(":")[0], n[0] - last[0]))
        last[0] = n[0]

    try:
        project.run(inbox, batch=40, retrain_every=20, max_passes=1, poll=0, text="text",
                    vector_prefix="v", on_event=on_event, sleep=lambda _s: None)
        assert [s for s, _ in steps] == ["ingest", "batch"]
        assert all(c == 1 for _, c in steps), steps
        # A trigger fires on the next round; a label file, a model and the round follow.
        project.add_trigger("unsure", "confidence < 2", priority=2.0)  # every eligible row
        truth = {f"s{i}": y[i] for i in range(len(y))}
        with open(inbox / "batches" / "round-0001.csv") as f:
            ids = [line.split(",")[0] for line in f.read().splitlines()[1:]]
        write_csv(inbox / "labels" / "r1.csv", ["id", "label"], [[i, truth[i]] for i in ids])
        steps.clear()
        last[0] = n[0]
        project.run(inbox, batch=40, retrain_every=20, max_passes=1, poll=0, text="text",
                    vector_prefix="v", on_event=on_event, sleep=lambda _s: None)
    finally:
        stop()
    assert [s for s, _ in steps] == ["labels", "train", "batch"], steps
    assert all(c == 1 for _, c in steps), steps
    newest = read(project.store, lambda u: u.rounds.list())[-1]
    hits = newest["log"]["triggers"]["unsure"]
    assert hits > 0
    # queued in the round's own transaction: the run counted, none of its rows queued
    (trigger,) = project.triggers()
    assert trigger["runs"][-1]["on"] == f"round {newest['id']}" and trigger["hits"] == hits
    queue = read(project.store, lambda u: u.settings.get("discovery_queue"))
    held = {row for row, _, _ in read(project.store, lambda u: u.rounds.items(newest["id"]))}
    assert len(queue) == hits and not held & {it["row"] for it in queue}


def test_ingest_commits_once_with_the_settings_it_implies(project: Project, tmp_path: Path):
    """A file's rows, its precomputed vectors' encoder and its label column commit in
    one transaction (they were three)."""
    X, y = make_pool(200, seed=8)
    f = write_pool_csv(tmp_path / "pool.csv", X, y)
    assert commits(project, lambda: project.ingest(f, id="id", text="text", vector_prefix="v",
                                                   label="truth")) == 1
    settings = read(project.store, lambda u: u.settings.all())
    assert settings["encoder"] == "precomputed" and settings["label_columns"] == ["truth"]


def test_an_image_folder_commits_its_rows_and_media_root_together(tmp_path: Path):
    from tests.images.test_image_pool import make_folder

    root = make_folder(tmp_path / "imgs", per_class=4)
    p = Project.init(tmp_path / "proj", eval_rate=0.1)
    try:
        assert commits(p, lambda: p.ingest(root, folder_labels=True)) == 1
        assert read(p.store, lambda u: u.settings.get("media_root")) == str(root.resolve())
    finally:
        p.close()
