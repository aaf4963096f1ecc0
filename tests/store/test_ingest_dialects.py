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
from tests.reads import read, write

MAPPING = ColumnMapping(id="id", text="text", label="truth", vector_prefix="v",
                        metadata=("source",))


def _every_fifth(ids: list[str], current: int, strata: list | None) -> np.ndarray:  # noqa: ARG001
    return np.array([int(i[1:]) % 5 == 0 for i in ids], dtype=bool)


def _pool_csv(path: Path, n: int, start: int = 0, seed: int = 0) -> Path:
    X, y = make_pool(n, d=4, seed=seed)
    rows = [[f"s{start + i}", f"text é {start + i}" if i % 7 else "", *X[i].tolist(),
             y[i] if i % 3 else "", "web" if i % 2 else "app"] for i in range(n)]
    return write_csv(path, ["id", "text", "v0", "v1", "v2", "v3", "truth", "source"], rows)


def _view(store: Store, vectors: bool = True) -> dict:
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
    vs = read(store, lambda u: u.vector_set("precomputed")) if vectors else None
    return {"samples": samples, "events": events, "batches": batches,
            "splits": read(store, lambda u: u.samples.split_counts()),
            "labels": read(store, lambda u: u.labels.current()),
            "vectors": vs.read(np.arange(vs.n_rows)).tobytes() if vs else None}


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


def _no_eval(ids: list[str], current: int, strata: list | None) -> np.ndarray:  # noqa: ARG001
    return np.zeros(len(ids), dtype=bool)


def test_ids_with_copy_special_characters_are_kept_as_on_sqlite(tmp_path: Path, catalog_url):
    """PostgreSQL takes ingest's catalog rows by COPY (text format): ids holding a tab,
    newline, carriage return, backslash or quote, or looking like COPY's NULL marker,
    come back as they were, as on SQLite; the eval rows are in the eval split."""
    ids = ["plain", "tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\t",
           "quote'\"", "é ü 漢", "end\\"] + [f"r{i}" for i in range(40)]
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"id": ids, "text": [f"t{i}" for i in range(len(ids))]}), path)
    mapping = ColumnMapping(id="id", text="text", metadata=())
    every_third = lambda ids, c, st: np.arange(len(ids)) % 3 == 0  # noqa: E731
    ref = Store.create(tmp_path / "ref", {}, db_url=None)
    got = Store.create(tmp_path / "got", {}, db_url=catalog_url)
    try:
        for st in (ref, got):
            ingest_file(st, path, mapping, assign_eval=every_third)
        view = _view(got, False)
        assert view == _view(ref, False)
        assert [r[1] for r in view["samples"]] == ids
        assert view["splits"] == {"eval": 17, "pool": 33}
        # Known now: the same file again is unchanged, found by these ids.
        again = ingest_file(got, path, mapping, assign_eval=every_third)
        assert (again.new, again.unchanged) == (0, len(ids))
    finally:
        ref.close()
        got.close()


def test_duplicates_within_and_across_files_give_the_same_catalog(tmp_path: Path, catalog_url):
    """A file repeating an id already in the project, or one of its own (in another
    reader batch), is one InputError naming it and leaves the catalog as it was, on
    either dialect; rows known with the same content are unchanged, new ones added."""
    n = 32_768 + 10  # two reader batches
    first = tmp_path / "first.parquet"
    pq.write_table(pa.table({"id": [f"a{i}" for i in range(n)], "text": ["x"] * n}), first)
    overlap = tmp_path / "overlap.parquet"  # half known (same content), half new
    ids = [f"a{i}" for i in range(n // 2, n)] + [f"b{i}" for i in range(n // 2)]
    pq.write_table(pa.table({"id": ids, "text": ["x"] * len(ids)}), overlap)
    repeat = tmp_path / "repeat.parquet"  # a new id twice, in different reader batches
    rids = [f"c{i}" for i in range(n)]
    rids[-1] = "c3"
    pq.write_table(pa.table({"id": rids, "text": ["y"] * n}), repeat)
    mapping = ColumnMapping(id="id", text="text", metadata=())
    ref = Store.create(tmp_path / "ref", {}, db_url=None)
    got = Store.create(tmp_path / "got", {}, db_url=catalog_url)
    try:
        for st in (ref, got):
            ingest_file(st, first, mapping, assign_eval=_no_eval)
            r = ingest_file(st, overlap, mapping, assign_eval=_no_eval)
            assert (r.new, r.unchanged) == (n // 2 + n % 2, n - n // 2)
            before = _view(st, False)
            with pytest.raises(InputError, match=r"duplicate id 'c3' \(first seen at row 4\)"):
                ingest_file(st, repeat, mapping, assign_eval=_no_eval)
            assert _view(st, False) == before
        assert _view(got, False) == _view(ref, False)
    finally:
        ref.close()
        got.close()


def test_a_failing_ingest_leaves_the_project_as_it_was(tmp_path: Path, catalog_url):
    """An ingest that fails in its last reader batch, after earlier batches' rows went
    to the catalog, rolls all of them back: one transaction per command."""
    store = Store.create(tmp_path / "p", {}, db_url=catalog_url)
    mapping = ColumnMapping(id="id", text="text", metadata=())
    try:
        ingest_file(store, _pool_csv(tmp_path / "a.csv", 30), MAPPING, assign_eval=_every_fifth)
        before = _view(store)
        n = 2 * 32_768 + 3
        ids = [f"z{i}" for i in range(n)]
        ids[-2] = "s5"  # already in the project, with other content, in the 3rd batch
        path = tmp_path / "late.parquet"
        pq.write_table(pa.table({"id": ids, "text": ["late"] * n}), path)
        with pytest.raises(InputError, match=r"row 65538: id 's5' is already in the project"):
            ingest_file(store, path, mapping, assign_eval=_no_eval)
        assert _view(store) == before
        assert read(store, lambda u: u.samples.count()) == 30
    finally:
        store.close()


def test_a_version_7_catalog_opens_and_ingests_without_the_batch_foreign_key(
        tmp_path: Path, catalog_url):
    """Version 8 drops PostgreSQL's foreign key from samples.batch_id (a check query per
    ingested row) and indexes only the rows outside the pool by split; a version-7
    project opens upgraded, reads its splits and goes on ingesting."""
    from sqlalchemy import inspect, text

    root = tmp_path / "p"
    store = Store.create(root, {}, db_url=catalog_url)
    ingest_file(store, _pool_csv(tmp_path / "a.csv", 20), MAPPING, assign_eval=_every_fifth)
    if catalog_url is not None:  # as version 7 made it
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE samples ADD CONSTRAINT samples_batch_id_fkey "
                              "FOREIGN KEY (batch_id) REFERENCES ingest_batches (id)"))
            conn.execute(text("DROP INDEX ix_samples_split"))
            conn.execute(text("CREATE INDEX ix_samples_split ON samples (split)"))
    write(store, lambda u: u.settings.set("schema_version", 7))
    store.close()
    store = Store.open(root)
    try:
        assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION == 8
        fks = inspect(store.engine).get_foreign_keys("samples")
        split_ix = next(i for i in inspect(store.engine).get_indexes("samples")
                        if i["name"] == "ix_samples_split")
        if catalog_url is not None:
            assert fks == []
            assert "pool" in str(split_ix["dialect_options"]["postgresql_where"])
        assert read(store, lambda u: u.samples.split_counts()) == {"eval": 4, "pool": 16}
        assert read(store, lambda u: u.samples.rows_by_split("eval")).tolist() == [0, 5, 10, 15]
        r = ingest_file(store, _pool_csv(tmp_path / "b.csv", 10, start=20), MAPPING,
                        assign_eval=_every_fifth)
        assert r.new == 10
        assert read(store, lambda u: u.samples.count()) == 30
    finally:
        store.close()
