"""Ingest happy paths: formats, idempotence, labels, eval split, growing pools."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import make_pool, snapshot, write_pool_csv
from tests.reads import read


def test_csv_ingest_counts_and_vectors(loaded, pool_data):
    X, _ = pool_data
    st = loaded.status()
    assert st.samples == len(X)
    assert st.pool + st.eval == len(X)
    assert 0 < st.eval < len(X) * 0.25  # 10% eval rate
    vs = read(loaded.store, lambda u: u.vector_set("precomputed"))
    np.testing.assert_allclose(vs.read(np.array([5, 0, 299])), X[[5, 0, 299]], rtol=1e-5)
    assert loaded.settings["encoder"] == "precomputed"


def test_reingest_same_file_changes_nothing(loaded, tmp_path, pool_data):
    X, y = pool_data
    before = snapshot(loaded)
    report = loaded.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                           vector_prefix="v")
    assert (report.new, report.unchanged) == (0, len(X))
    after = snapshot(loaded)
    # The compute ledger accounts for the command that ran (issue 29): one more run, of
    # ingest; everything a user sees of the data is as it was.
    runs_before, runs_after = before.pop("compute_runs"), after.pop("compute_runs")
    assert len(runs_after) == len(runs_before) + 1 and "'ingest'" in runs_after[-1]
    assert after == before


def test_new_batch_appends_rows(loaded, tmp_path):
    X2, y2 = make_pool(50, seed=1)
    report = loaded.ingest(write_pool_csv(tmp_path / "more.csv", X2, y2, start=10_000),
                           id="id", text="text", vector_prefix="v")
    assert report.new == 50
    vs = read(loaded.store, lambda u: u.vector_set("precomputed"))
    assert vs.n_rows == 350
    np.testing.assert_allclose(vs.read(np.array([349])), X2[[49]], rtol=1e-5)


def test_label_column_becomes_import_annotations_once(project, tmp_path, pool_data):
    X, y = pool_data
    f = write_pool_csv(tmp_path / "pool.csv", X, y)
    r1 = project.ingest(f, id="id", text="text", vector_prefix="v", label="truth")
    r2 = project.ingest(f, id="id", text="text", vector_prefix="v", label="truth")
    assert r1.labels == len(X) and r2.labels == 0
    assert read(project.store, lambda u: u.labels.count()) == len(X)


def test_jsonl_and_parquet_list_vectors(project, tmp_path):
    X, y = make_pool(40, d=4)
    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join(json.dumps({"id": f"j{i}", "text": "t", "vec": X[i].tolist(),
                                        "y": y[i]}) for i in range(20)) + "\n")
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(20, 40)], "text": ["t"] * 20,
                             "vec": [X[i].tolist() for i in range(20, 40)], "y": y[20:]}),
                   tmp_path / "b.parquet")
    assert project.ingest(jl, id="id", text="text", vector="vec").new == 20
    assert project.ingest(tmp_path / "b.parquet", id="id", text="text", vector="vec").new == 20
    vs = read(project.store, lambda u: u.vector_set("precomputed"))
    np.testing.assert_allclose(vs.read(np.arange(40)), X, rtol=1e-6)
    _, _, _, meta = next(iter(read(project.store, lambda u: list(u.samples.iter()))))[0]
    assert meta == {"y": y[0]}


def test_eval_split_is_deterministic(tmp_path, pool_data):
    from longtail.project import Project

    X, y = pool_data
    f = write_pool_csv(tmp_path / "pool.csv", X, y)
    splits = []
    for name in ("a", "b"):
        p = Project.init(tmp_path / name, eval_rate=0.1)
        p.ingest(f, id="id", vector_prefix="v")
        splits.append(read(p.store, lambda u: u.samples.rows_by_split("eval")).tolist())
        p.close()
    assert splits[0] == splits[1] and splits[0]


def test_projects_made_before_hash_version_2_keep_their_hashes(tmp_path, pool_data):
    """A catalog without the `hashing` setting was written with BLAKE2b hashes: its
    re-ingest must still see unchanged rows and keep each sample's split."""
    from longtail.project import Project

    X, y = pool_data
    csv = write_pool_csv(tmp_path / "pool.csv", X, y)
    new = Project.init(tmp_path / "new", eval_rate=0.1)
    assert new.settings["hashing"] == 2
    new.ingest(csv, id="id", text="text", vector_prefix="v")
    old = Project.init(tmp_path / "old", eval_rate=0.1, hashing=1)
    old.ingest(csv, id="id", text="text", vector_prefix="v")
    with old.store.unit_of_work() as uow:  # as a version-1 catalog looks: no such key
        uow.conn.exec_driver_sql("DELETE FROM settings WHERE key = 'hashing'")
    assert old.settings["hashing"] == 1
    before = snapshot(old, ledger=False)
    report = old.ingest(csv, id="id", text="text", vector_prefix="v")
    assert (report.new, report.unchanged) == (0, len(X))
    assert snapshot(old, ledger=False) == before
    hashes = {len(h) for (h,) in old.store.engine.connect().exec_driver_sql(
        "SELECT content_hash FROM samples")}
    assert hashes == {32}
    # Both versions put about the eval rate into the eval split, from different hashes.
    assert 0 < new.status().eval < len(X) * 0.25 and 0 < old.status().eval < len(X) * 0.25
    new.close()
    old.close()


def test_large_file_lands_row_for_row(project, tmp_path):
    # More rows than one multi-row INSERT holds, and a remainder: every row keeps its
    # id, text, metadata and vector at its own row number.
    n = 1234
    X, y = make_pool(n, d=4)
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(n)], "text": [f"t{i}" for i in range(n)],
                             "vec": [X[i].tolist() for i in range(n)], "y": y}),
                   tmp_path / "big.parquet")
    report = project.ingest(tmp_path / "big.parquet", id="id", text="text", vector="vec")
    assert report.new == n and report.eval_rows > 0
    with project.store.engine.connect() as conn:
        splits = dict(conn.exec_driver_sql("SELECT split, count(*) FROM samples GROUP BY split").all())
        batches = conn.exec_driver_sql("SELECT DISTINCT batch_id FROM samples").all()
    assert splits == {"eval": report.eval_rows, "pool": n - report.eval_rows}
    assert len(batches) == 1
    got = [r for part in read(project.store, lambda u: list(u.samples.iter())) for r in part]
    assert [(row, ext, text, meta["y"]) for row, ext, text, meta in got] == [
        (i, f"r{i}", f"t{i}", y[i]) for i in range(n)]
    np.testing.assert_allclose(read(project.store,
                                    lambda u: u.vector_set("precomputed")).read(np.arange(n)), X, rtol=1e-6)


def test_batch_checksum_follows_the_rows_not_the_reader(tmp_path):
    from longtail.project import Project

    X, y = make_pool(300, d=4)
    table = pa.table({"id": [f"r{i}" for i in range(300)], "text": ["t"] * 300,
                      "vec": [X[i].tolist() for i in range(300)]})
    pq.write_table(table, tmp_path / "a.parquet")
    sums = []
    for name, batch_rows in (("p1", 64), ("p2", 100_000)):
        p = Project.init(tmp_path / name)
        import longtail.ingest.readers as readers

        orig = readers.TableSource.__init__.__defaults__
        readers.TableSource.__init__.__defaults__ = (batch_rows,)
        try:
            p.ingest(tmp_path / "a.parquet", id="id", text="text", vector="vec")
        finally:
            readers.TableSource.__init__.__defaults__ = orig
        with p.store.engine.connect() as conn:
            sums.append(conn.exec_driver_sql("SELECT file_sha256 FROM ingest_batches").scalar())
        p.close()
    assert sums[0] == sums[1] and len(sums[0]) == 64
    p = Project.init(tmp_path / "p3")
    pq.write_table(table.set_column(1, "text", pa.array(["u"] * 300)), tmp_path / "b.parquet")
    p.ingest(tmp_path / "b.parquet", id="id", text="text", vector="vec")
    with p.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT file_sha256 FROM ingest_batches").scalar() != sums[0]
