"""Schema v2: a catalog written by version 1 opens, upgraded in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, inspect, select

from longtail.errors import ProjectError
from longtail.store import Store
from longtail.store import schema as s
from longtail.store.catalog import CATALOG, CATALOG_URL
from tests.reads import read, write

V2_ONLY = {("annotations", "kind"), ("models", "meta")}


def _v1_metadata() -> MetaData:
    """The version-1 tables: today's, less the columns version 2 added, and the old
    8-character rounds.status."""
    md = MetaData()
    for name, table in s.metadata.tables.items():
        cols = []
        for c in table.columns:
            if (name, c.name) in V2_ONLY:
                continue
            if (name, c.name) == ("rounds", "status"):
                c = Column("status", String(8), nullable=False)
            else:
                c = c._copy()
            cols.append(c)
        Table(name, md, *cols)
    return md


def _write_v1(root: Path, db_url: str | None) -> None:
    root.mkdir(parents=True)
    url = db_url or f"sqlite:///{root / CATALOG}"
    engine = create_engine(url)
    md = _v1_metadata()
    md.create_all(engine)
    t = md.tables
    with engine.begin() as conn:
        conn.execute(t["settings"].insert(), [{"key": "schema_version", "value": 1},
                                              {"key": "seed", "value": 3}])
        conn.execute(t["ingest_batches"].insert().values(
            id=1, source_file="f.csv", file_sha256="", created_at="2026-01-01", n_new=3,
            n_updated=0, n_unchanged=0, mapping={}))
        conn.execute(t["samples"].insert(), [
            {"row": i, "external_id": f"s{i}", "content_hash": "0" * 32, "batch_id": 1,
             "split": "pool", "text": None, "meta": None} for i in range(3)])
        conn.execute(t["annotations"].insert(), [
            {"row": 0, "label": "a", "created_at": "2026-01-01", "source": "human"},
            {"row": 0, "label": "b", "created_at": "2026-01-02", "source": "human"},
            {"row": 1, "label": "a", "created_at": "2026-01-02", "source": "import"}])
        conn.execute(t["rounds"].insert().values(
            id=1, created_at="2026-01-01", strategy="margin", params={}, status="open",
            n_labels=0, log={}))
        conn.execute(t["round_items"].insert(), [{"round_id": 1, "row": 2, "position": 0,
                                                  "kind": "selected"}])
    engine.dispose()
    if db_url:
        (root / CATALOG_URL).write_text(db_url)


def test_v1_catalog_is_upgraded_on_open(tmp_path: Path, catalog_url):
    root = tmp_path / "old"
    _write_v1(root, catalog_url)
    store = Store.open(root)
    try:
        assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION
        cols = {c["name"] for c in inspect(store.engine).get_columns("annotations")}
        assert "kind" in cols
        with store.engine.connect() as conn:
            kinds = [k for (k,) in conn.execute(select(s.annotations.c.kind))]
        assert kinds == ["label"] * 3  # every old event is a label
        assert read(store, lambda u: u.labels.current()) == {0: "b", 1: "a"}
        with store.unit_of_work() as uow:
            uow.labels.add([{"row": 1, "kind": "skip", "source": "human"}])
            uow.rounds.cancel(1)  # 'cancelled' fits the widened status column
            mid = uow.models.add("linear", "e", 2, ["a", "b"], {"w": np.ones(2)}, 0.1,
                                 meta={"format": "npz"})
        assert read(store, lambda u: u.labels.current()) == {0: "b", 1: "a"}
        assert read(store, lambda u: u.rounds.list())[0]["status"] == "cancelled"
        listed = read(store, lambda u: u.models.list())
        assert listed[0]["id"] == mid and listed[0]["meta"]["format"] == "npz"
    finally:
        store.close()
    # Opening again runs no migration twice.
    again = Store.open(root)
    assert read(again, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION
    assert read(again, lambda u: u.labels.count()) == 4
    again.close()


def test_newer_schema_is_refused(tmp_path: Path, catalog_url):
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    write(store, lambda u: u.settings.set("schema_version", s.SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(ProjectError, match="upgrade longtail"):
        Store.open(tmp_path / "p")


def test_json_values_of_catalogs_made_before_text_columns_read_back(tmp_path):
    """Version-1 catalogs declared JSON columns, which SQLite gives numeric affinity: the
    JSON text "1" was stored as the integer 1. Reading it must give 1, not a TypeError."""
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (v JSON)")
    con.executemany("INSERT INTO t VALUES (?)",
                    [("1",), ("0.05",), ('"abc"',), ("null",), ('{"a": [1, 2]}',)])
    con.commit()
    con.close()
    table = Table("t", MetaData(), Column("v", s.JSONText))
    with create_engine(f"sqlite:///{db}").connect() as conn:
        values = [v for (v,) in conn.execute(select(table.c.v))]
    assert values == [1, 0.05, "abc", None, {"a": [1, 2]}]
