"""Schema v5 (issue 29): a catalog of version 4 opens with the compute ledger's table."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from longtail.store import Store
from longtail.store import schema as s
from tests.reads import read, write


def test_v4_catalog_gets_the_compute_ledger(tmp_path: Path, catalog_url):
    root = tmp_path / "p"
    Store.create(root, {"seed": 0}, db_url=catalog_url).close()
    store = Store.open(root)
    with store.engine.begin() as conn:  # make it a version-4 catalog
        conn.execute(text("DROP TABLE compute_runs"))
    write(store, lambda u: u.settings.set("schema_version", 4))
    store.close()
    store = Store.open(root)
    try:
        assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION
        assert inspect(store.engine).has_table("compute_runs")
        with store.unit_of_work() as uow:
            uow.compute.add({"command": "train", "cpu_seconds": 1.5, "wall_seconds": 2.0,
                             "phases": {"train": {"cpu_seconds": 1.5}}})
        with store.unit_of_work() as uow:
            assert [r["command"] for r in uow.compute.list()] == ["train"]
    finally:
        store.close()
