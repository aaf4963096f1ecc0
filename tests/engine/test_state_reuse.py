"""A second command reuses the first one's indexes, and selects what a run that built
them from scratch selects."""

from __future__ import annotations

import shutil

from longtail.project import Project
from tests.conftest import make_pool, write_pool_csv


def _two_projects(tmp_path):
    X, y = make_pool(3000, d=16, classes=5, seed=7)
    pool = write_pool_csv(tmp_path / "pool.csv", X, y)
    paths = []
    for name in ("loaded", "fresh"):
        with Project.init(tmp_path / name, eval_rate=0.05) as p:
            p.ingest(pool, id="id", vector_prefix="v")
        paths.append(tmp_path / name)
    return paths


def test_second_query_loads_the_indexes_and_selects_as_a_fresh_build(tmp_path):
    loaded_dir, fresh_dir = _two_projects(tmp_path)
    logs = {}
    for path in (loaded_dir, fresh_dir):
        with Project(path) as p:  # one command
            first = p.query(60, strategy="coverage")
            assert "graph" in first.log["selection"]["indexes_built"]
            p.cancel_round(first.round_id)
        if path == fresh_dir:
            shutil.rmtree(path / "state")  # the next command starts from an empty state
        with Project(path) as p:  # the next command
            second = p.query(60, strategy="coverage")
            logs[path.name] = second
    reused = logs["loaded"].log["selection"]
    assert reused["indexes_built"] == []
    graph = reused["indexes"]["graph"]
    assert graph["action"] == "loaded" and graph["seconds"] == 0 and "load_seconds" in graph
    assert logs["loaded"].log["state"]["loaded"] is True
    assert "graph" in logs["fresh"].log["selection"]["indexes_built"]
    assert logs["loaded"].rows == logs["fresh"].rows


def test_rows_ingested_later_join_the_saved_indexes_and_the_round_log_says_so(tmp_path):
    X, y = make_pool(2400, d=16, classes=5, seed=3)
    with Project.init(tmp_path / "p", eval_rate=0.05) as p:
        p.ingest(write_pool_csv(tmp_path / "a.csv", X[:1200], y[:1200]), id="id",
                 vector_prefix="v")
        first = p.query(40, strategy="coverage")
        assert first.log["selection"]["indexes"]["graph"]["action"] == "built"
        p.cancel_round(first.round_id)
    with Project(tmp_path / "p") as p:  # a later command: more data from the same source
        p.ingest(write_pool_csv(tmp_path / "b.csv", X[1200:], y[1200:], start=1200),
                 id="id", vector_prefix="v")
        second = p.query(40, strategy="coverage")
        stored = [h for h in p.history() if h.round == second.round_id]
    sel = second.log["selection"]
    assert sel["pool_check"]["verdict"] == "update"
    assert sel["indexes_built"] == []  # the pool doubled, yet nothing was rebuilt
    graph = sel["indexes"]["graph"]
    assert graph["action"] == "updated" and graph["drift"]["drifted"] is False
    assert "new rows joined" in graph["reason"]
    # the round's stored log (what `longtail history` shows) says update and why
    assert stored[0].decision["indexes"]["graph"] == graph
    assert stored[0].decision["pool_check"]["verdict"] == "update"
