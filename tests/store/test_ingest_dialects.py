"""The ingest pipeline writes the same catalog on PostgreSQL as on SQLite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from longtail.errors import InputError
from longtail.ingest import ingest_file
from longtail.ingest.mapping import ColumnMapping
from longtail.store import Store
from longtail.store import schema as s
from tests.conftest import make_pool, write_csv
from tests.reads import read

MAPPING = ColumnMapping(id="id", text="text", label="truth", vector_prefix="v",
                        metadata=("source",))


def _every_fifth(ids: list[str], current: int, strata: list | None) -> np.ndarray:  # noqa: ARG001
    return np.array([int(i[1:]) % 5 == 0 for i in ids], dtype=bool)


def _pool_csv(path: Path, n: int, start: int = 0, seed: int = 0) -> Path:
    X, y = make_pool(n, d=4, seed=seed)
    rows = [[f"s{start + i}", f"text é {start + i}" if i % 7 else "", *X[i].tolist(),
             y[i] if i % 3 else "", "web" if i % 2 else "app"] for i in range(n)]
    return write_csv(path, ["id", "text", "v0", "v1", "v2", "v3", "truth", "source"], rows)


def _view(store: Store) -> dict:
    """What the ingest wrote, without time stamps, and batch ids as their rank: a
    PostgreSQL sequence is not rolled back with the no-op re-ingest, so ids may skip."""
    with store.engine.connect() as conn:
        rank = {b: i for i, (b,) in enumerate(conn.execute(
            select(s.ingest_batches.c.id).order_by(s.ingest_batches.c.id)))}
        samples = [(*r[:3], rank[r[3]], *r[4:])
                   for r in conn.execute(select(s.samples).order_by(s.samples.c.row))]
        events = [tuple(r) for r in conn.execute(
            select(s.annotations.c.row, s.annotations.c.label, s.annotations.c.source,
                   s.annotations.c.kind).order_by(s.annotations.c.id))]
        batches = [tuple(r) for r in conn.execute(
            select(s.ingest_batches.c.n_new, s.ingest_batches.c.n_updated,
                   s.ingest_batches.c.n_unchanged, s.ingest_batches.c.file_sha256)
            .order_by(s.ingest_batches.c.id))]
    vs = read(store, lambda u: u.vector_set("precomputed"))
    return {"samples": samples, "events": events, "batches": batches,
            "splits": read(store, lambda u: u.samples.split_counts()),
            "labels": read(store, lambda u: u.labels.current()),
            "vectors": vs.read(np.arange(vs.n_rows)).tobytes()}


def _ingest_steps(store: Store, tmp_path: Path) -> list:
    reports = []
    first = _pool_csv(tmp_path / "a.csv", 60)
    reports.append(ingest_file(store, first, MAPPING, assign_eval=_every_fifth).to_dict())
    # The same file again changes nothing.
    reports.append(ingest_file(store, first, MAPPING, assign_eval=_every_fifth).to_dict())
    # New rows plus known ones, one of them changed (with --update).
    X, y = make_pool(30, d=4, seed=1)
    rows = [[f"s{50 + i}", f"text é {50 + i}", *X[i].tolist(), y[i], "web"] for i in range(30)]
    second = write_csv(tmp_path / "b.csv", ["id", "text", "v0", "v1", "v2", "v3", "truth",
                                            "source"], rows)
    reports.append(ingest_file(store, second, MAPPING, assign_eval=_every_fifth,
                               update=True).to_dict())
    for r in reports:
        r.pop("file")
    return reports


def test_ingest_gives_the_same_samples_as_sqlite(tmp_path: Path, catalog_url):
    ref = Store.create(tmp_path / "ref", {}, db_url=None)
    got = Store.create(tmp_path / "got", {}, db_url=catalog_url)
    try:
        ref_reports = _ingest_steps(ref, tmp_path / "ref")
        got_reports = _ingest_steps(got, tmp_path / "got")
        assert got_reports == ref_reports
        assert got_reports[0]["new"] == 60 and got_reports[1]["new"] == 0
        assert got_reports[2]["new"] == 20 and got_reports[2]["updated"] == 10
        view = _view(got)
        assert view == _view(ref)
        assert view["splits"] == {"eval": 16, "pool": 64}
        assert {r[3] for r in view["samples"][50:]} == {1}  # new and updated: the 2nd batch
        assert view["labels"] and set(view["labels"].values()) <= {"c0", "c1", "c2"}
        first = next(iter(read(got, lambda u: list(u.samples.iter(np.array([1]))))))[0]
        assert first == (1, "s1", "text é 1", {"source": "web"})
    finally:
        ref.close()
        got.close()


def test_duplicate_id_across_reader_batches_is_an_input_error(tmp_path: Path, catalog_url):
    # Two ids equal in different record batches (32,768 rows each) of a file going into
    # an empty project: only the catalog's unique index sees it, on either dialect.
    n = 32_768 + 5
    ids = [f"id{i}" for i in range(n)]
    ids[-1] = "id7"
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": ids, "text": ["t"] * n}), path)
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    try:
        with pytest.raises(InputError, match=r"duplicate id 'id7' \(first seen at row 8\)"):
            ingest_file(store, path, ColumnMapping(id="id", text="text", metadata=()),
                        assign_eval=lambda ids, c, st: np.zeros(len(ids), dtype=bool))
        assert read(store, lambda u: u.samples.count()) == 0
        with store.engine.connect() as conn:
            assert conn.execute(select(s.ingest_batches)).all() == []
    finally:
        store.close()


def test_nul_in_text_is_kept_on_both_catalogs_and_a_nul_id_is_named(tmp_path: Path, catalog_url):
    """Texts live in the column files (schema 7), which keep any character, so a NUL in a
    text is kept on PostgreSQL too; an id with one is still named there."""
    path = tmp_path / "nul.csv"
    path.write_text("id,text\na,fine\nb,bad\x00text\n")
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    mapping = ColumnMapping(id="id", text="text", metadata=())
    no_eval = lambda ids, c, st: np.zeros(len(ids), dtype=bool)  # noqa: E731
    try:
        ingest_file(store, path, mapping, assign_eval=no_eval)
        assert next(iter(read(store,
                              lambda u: list(u.samples.iter(np.array([1]))))))[0][2] == "bad\x00text"
        if catalog_url is not None:
            bad = tmp_path / "nul_id.csv"
            bad.write_text("id,text\nc\x00d,x\n")
            with pytest.raises(InputError, match=r"sample id 'c\\x00d' holds a NUL character"):
                ingest_file(store, bad, mapping, assign_eval=no_eval)
            assert read(store, lambda u: u.samples.count()) == 2
    finally:
        store.close()
