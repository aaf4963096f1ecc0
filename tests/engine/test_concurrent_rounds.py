"""Two `longtail query` commands started together never put one sample in two open
rounds. Real processes, on SQLite and PostgreSQL; the interleaving is forced by the
pause point `round:planned` (both have chosen their batch before either claims it), so
the outcome does not depend on timing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from longtail.project import Project
from longtail.store import schema as s
from tests.conftest import make_pool, write_pool_csv
from tests.reads import read

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _start_query(project: Path, pause_dir: Path, budget: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1",
           "LONGTAIL_CRASH_AT": "round:planned", "LONGTAIL_CRASH_ACTION": "pause",
           "LONGTAIL_PAUSE_DIR": str(pause_dir)}
    return subprocess.Popen([sys.executable, "-m", "longtail.cli", "query", "-n", str(budget),
                             "-p", str(project)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_paused(pause_dir: Path, n: int, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 120
    while len(list(pause_dir.glob("*.paused"))) < n:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"query ended before its pause point: {p.communicate()}")
        assert time.monotonic() < deadline, "the queries never reached their pause point"
        time.sleep(0.05)


def test_two_queries_started_together_never_share_a_sample(tmp_path: Path, catalog_url):
    X, y = make_pool(200)
    with Project.init(tmp_path / "proj", eval_rate=0.1, db=catalog_url) as p:
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                 vector_prefix="v")
    pause_dir = tmp_path / "pause"
    pause_dir.mkdir()
    procs = [_start_query(tmp_path / "proj", pause_dir, 30) for _ in range(2)]
    try:
        _wait_paused(pause_dir, 2, procs)  # both have read and chosen their batch
        (pause_dir / "go").touch()
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = [p.returncode for p in procs]
    for code, (_, err) in zip(codes, results, strict=True):
        assert code in (0, 2), err
        if code == 2:  # the loser says so in one line, no traceback
            assert len(err.strip().splitlines()) == 1 and "another round" in err, err
    assert 0 in codes
    with Project(tmp_path / "proj") as p, p.store.engine.connect() as conn:
        q = (select(s.round_items.c.row).join(s.rounds, s.rounds.c.id == s.round_items.c.round_id)
             .where(s.rounds.c.status == "open"))
        rows = np.array([r for (r,) in conn.execute(q)], dtype=np.int64)
        n_rounds = len(conn.execute(select(s.rounds.c.id)).all())
    assert n_rounds == codes.count(0)
    assert len(rows) == 30 * codes.count(0)
    assert len(np.unique(rows)) == len(rows), "a sample was handed out in two open rounds"


def test_a_query_that_keeps_losing_its_claim_says_so(loaded, monkeypatch):
    from longtail.engine import rounds
    from longtail.errors import RoundConflictError

    monkeypatch.setattr(rounds, "_claim", lambda *a, **k: None)
    with pytest.raises(RoundConflictError, match="another round is being planned"):
        loaded.query(10, strategy="random")
    assert read(loaded.store, lambda u: u.rounds.list()) == []
