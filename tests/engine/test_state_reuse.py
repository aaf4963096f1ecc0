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
