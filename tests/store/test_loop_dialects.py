"""The whole loop (ingest, query, label, train, query again) gives the same rounds and
figures on a PostgreSQL catalog as on SQLite: the callers above the store do not know
which one they run on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from longtail.project import DEFAULTS, Project
from longtail.store import Store
from tests.conftest import make_pool, write_csv, write_pool_csv
from tests.reads import read


def _run(root: Path, db_url: str | None, work: Path) -> dict:
    # What Project.init writes, with the catalog where the test says.
    Store.create(root, {**DEFAULTS, "hashing": 2, "eval_rate": 0.1}, db_url=db_url).close()
    work.mkdir()
    X, y = make_pool(240, d=6, classes=3, seed=4)
    with Project(root) as p:
        p.ingest(write_pool_csv(work / "pool.csv", X, y), id="id", text="text", vector_prefix="v")
        truth = {ext: meta["truth"] for b in read(p.store,
                                                  lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
        q1 = p.query(40, strategy="random", seed=1)
        answers = write_csv(work / "a1.csv", ["id", "label"], [[i, truth[i]] for i in q1.ids])
        imported = p.import_labels(answers)
        p.train()
        # The first batch has no eval rows (no model yet); the second has.
        q2 = p.query(30, strategy="margin")
        p.import_labels(write_csv(work / "a2.csv", ["id", "label"],
                                  [[i, truth[i]] for i in q2.ids]))
        trained = p.train()
        q3 = p.query(30, strategy="margin")
        status = p.status().to_dict()
        return {
            "q1": (q1.rows, q1.kinds), "q2": (q2.rows, q2.kinds), "q3": (q3.rows, q3.kinds),
            "closed": imported["closed_rounds"], "new_labels": imported["new_labels"],
            "accuracy": trained.eval.accuracy["value"],
            "labels": read(p.store, lambda u: u.labels.current()),
            "metrics": [(m["name"], m["eval_set"], m["value"]) for m in read(p.store,
                                                                             lambda u: u.metrics.list())],
            "rounds": [(r["status"], r["size"], r["strategy"]) for r in read(p.store,
                                                                             lambda u: u.rounds.list())],
            "status": {k: status[k] for k in ("open_rounds", "annotations") if k in status},
            "dialect": p.store.dialect,
        }


def test_loop_is_the_same_on_both_catalogs(tmp_path: Path, catalog_url):
    ref = _run(tmp_path / "ref", None, tmp_path / "ref_files")
    got = _run(tmp_path / "got", catalog_url, tmp_path / "got_files")
    assert got.pop("dialect") == ("sqlite" if catalog_url is None else "postgresql")
    ref.pop("dialect")
    assert got == ref
    assert got["closed"] and got["new_labels"] == 40
    assert [r[0] for r in got["rounds"]] == ["closed", "closed", "open"]
    assert "eval" in got["q2"][1]
    assert 0 <= got["accuracy"] <= 1 and np.isfinite(got["accuracy"])
