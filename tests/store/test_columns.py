"""Schema 7 (issue 31): texts and metadata live in column files beside the catalog, read
by row number through the store, on SQLite and PostgreSQL; older projects migrate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text

from longtail.ingest import ingest_file
from longtail.ingest.mapping import ColumnMapping
from longtail.store import Store
from longtail.store import schema as s
from longtail.store.repos import SamplesRepo
from tests.reads import read, write

MAPPING = ColumnMapping(id="id", text="text", metadata=("source", "n"))


def _no_eval(ids, c, st):  # noqa: ANN001, ANN202, ARG001
    return np.zeros(len(ids), dtype=bool)


def _csv(path: Path, rows: list[tuple]) -> Path:
    path.write_text("id,text,source,n\n" + "".join(f"{i},{t},{src},{n}\n" for i, t, src, n in rows))
    return path


def _everything(store: Store) -> list:
    return read(store, lambda u: [b for chunk in u.samples.iter() for b in chunk])


def test_texts_and_metadata_live_beside_the_catalog(tmp_path: Path, catalog_url):
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    try:
        ingest_file(store, _csv(tmp_path / "a.csv", [("a", "first", "web", 1), ("b", "", "app", 2),
                                                    ("c", "third", "web", 3)]),
                    MAPPING, assign_eval=_no_eval)
        # --update replaces b's text: its new text lives in the second batch's files.
        ingest_file(store, _csv(tmp_path / "b.csv", [("b", "second", "app", 2), ("d", "fourth", "", 4)]),
                    MAPPING, assign_eval=_no_eval, update=True)
        cols = {c["name"] for c in inspect(store.engine).get_columns("samples")}
        assert "text" not in cols and "meta" not in cols and "pos" in cols
        assert sorted({p.parent.name for p in (tmp_path / "p" / "columns").rglob("part-*.arrow")}) \
            == ["batch-00000001", "batch-00000002"]
        got = _everything(store)
        assert [(r, e, t) for r, e, t, _ in got] == [(0, "a", "first"), (1, "b", "second"),
                                                      (2, "c", "third"), (3, "d", "fourth")]
        assert got[0][3] == {"source": "web", "n": 1} and got[3][3] == {"source": "", "n": 4}
        # Read by row number, in the order asked.
        picked = read(store, lambda u: next(u.samples.iter(np.array([3, 0, 1]))))
        assert [(r, t) for r, _, t, _ in picked] == [(3, "fourth"), (0, "first"), (1, "second")]
        with store.reading() as uow:
            assert uow.samples.one(2) == ("c", "third", {"source": "web", "n": 3})
            assert uow.samples.without_text() == (0, [])
    finally:
        store.close()


def test_a_rolled_back_ingest_leaves_no_text_behind(tmp_path: Path, catalog_url, monkeypatch):
    """SQLite gives a rolled-back batch's id to the next batch: its stale parts must not
    be read as the new batch's texts."""
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    try:
        ingest_file(store, _csv(tmp_path / "a.csv", [("a", "one", "web", 1)]), MAPPING,
                    assign_eval=_no_eval)
        # 50 new rows and a's update: parts at positions 0 and 50, then rolled back.
        stale = [(f"x{i}", f"stale {i}", "web", i) for i in range(50)] + [("a", "stale a", "web", 1)]
        real = SamplesRepo.finish_batch

        def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise RuntimeError("killed before the commit")

        monkeypatch.setattr(SamplesRepo, "finish_batch", boom)
        with pytest.raises(RuntimeError):
            ingest_file(store, _csv(tmp_path / "stale.csv", stale), MAPPING, assign_eval=_no_eval,
                        update=True)
        monkeypatch.setattr(SamplesRepo, "finish_batch", real)
        assert read(store, lambda u: u.samples.count()) == 1
        # 60 new rows and a's update: parts at 0 and 60; positions 50..59 must not be read
        # from the stale part at 50.
        fresh = [(f"y{i}", f"fresh {i}", "app", i) for i in range(59)] + [("z", "", "app", 8),
                                                                           ("a", "new a", "web", 1)]
        ingest_file(store, _csv(tmp_path / "fresh.csv", fresh), MAPPING, assign_eval=_no_eval,
                    update=True)
        got = [(e, t) for _, e, t, _ in _everything(store)]
        assert got == [("a", "new a")] + [(f"y{i}", f"fresh {i}") for i in range(59)] + [("z", "")]
        with store.reading() as uow:
            assert uow.samples.without_text() == (1, [(60, "z")])
    finally:
        store.close()


def test_a_schema_6_project_moves_its_texts_out_of_the_catalog(tmp_path: Path, catalog_url):
    root = tmp_path / "p"
    store = Store.create(root, {}, db_url=catalog_url)
    ingest_file(store, _csv(tmp_path / "a.csv", [("a", "first", "web", 1), ("b", "old", "app", 2),
                                                ("c", "", "web", 3)]), MAPPING, assign_eval=_no_eval)
    ingest_file(store, _csv(tmp_path / "b.csv", [("b", "new", "app", 2), ("d", "fourth", "mail", 4)]),
                MAPPING, assign_eval=_no_eval, update=True)
    before = _everything(store)
    # Make it a version-6 catalog: text and meta in the samples table, no pos, no files.
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE samples ADD COLUMN text TEXT"))
        conn.execute(text("ALTER TABLE samples ADD COLUMN meta TEXT"))
        for r, _, t, m in before:
            conn.execute(text("UPDATE samples SET text = :t, meta = :m WHERE row = :r"),
                         {"t": t, "m": json.dumps(m, sort_keys=True), "r": r})
        conn.execute(text("ALTER TABLE samples DROP COLUMN pos"))
    write(store, lambda u: u.settings.set("schema_version", 6))
    store.close()
    for part in (root / "columns").rglob("*.arrow"):
        part.unlink()

    store = Store.open(root)
    try:
        assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION
        cols = {c["name"] for c in inspect(store.engine).get_columns("samples")}
        assert "text" not in cols and "meta" not in cols
        assert _everything(store) == before
        # The migrated project goes on: a new batch and an update of a migrated row.
        ingest_file(store, _csv(tmp_path / "c.csv", [("a", "renamed", "web", 1), ("e", "fifth", "web", 5)]),
                    MAPPING, assign_eval=_no_eval, update=True)
        got = {e: t for _, e, t, _ in _everything(store)}
        assert got == {"a": "renamed", "b": "new", "c": "", "d": "fourth", "e": "fifth"}
    finally:
        store.close()
