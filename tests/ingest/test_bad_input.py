"""Each kind of bad input: one clear message naming file, row and column; the project
exactly as it was before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from longtail.errors import InputError
from tests.conftest import snapshot, write_csv, write_pool_csv
from tests.reads import read


def _rows(n: int, d: int = 8, start: int = 0) -> list[list]:
    rng = np.random.default_rng(start)
    return [[f"s{start + i}", f"text {start + i}", *rng.normal(size=d).round(3).tolist(), "c0",
             "web"] for i in range(n)]


HEADER = ["id", "text", *[f"v{j}" for j in range(8)], "truth", "source"]


def _check(project, path: Path, match: str, **mapping) -> None:
    before = snapshot(project)
    kwargs = {"id": "id", "text": "text", "vector_prefix": "v", **mapping}
    with pytest.raises(InputError, match=match):
        project.ingest(path, **kwargs)
    assert snapshot(project) == before


def test_unreadable_file(loaded, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('id,text,v0\n"s1,unterminated,1\ns2,ok\n')
    _check(loaded, bad, r"bad\.csv")


def test_missing_file(loaded, tmp_path):
    _check(loaded, tmp_path / "nope.csv", "no such file")


def test_unknown_format(loaded, tmp_path):
    f = tmp_path / "pool.xlsx"
    f.write_text("x")
    _check(loaded, f, "unknown file type")


def test_missing_mapped_column(loaded, tmp_path):
    f = write_csv(tmp_path / "x.csv", HEADER, _rows(5, start=1000))
    _check(loaded, f, r"text column 'body' not found", text="body")


def test_non_numeric_vector(loaded, tmp_path):
    rows = _rows(5, start=1000)
    rows[3][4] = "abc"
    f = write_csv(tmp_path / "x.csv", HEADER, rows)
    _check(loaded, f, r"x\.csv: row 4, column 'v2': 'abc' is not a number")


def test_nan_vector(loaded, tmp_path):
    rows = _rows(5, start=1000)
    rows[1][2] = "nan"
    f = write_csv(tmp_path / "x.csv", HEADER, rows)
    _check(loaded, f, r"row 2, column 'v0': nan is not a finite number")


def test_wrong_dimension(loaded, tmp_path):
    header = ["id", "text", *[f"v{j}" for j in range(4)]]
    rows = [[f"s{1000 + i}", "t", 1.0, 2.0, 3.0, 4.0] for i in range(3)]
    f = write_csv(tmp_path / "x.csv", header, rows)
    _check(loaded, f, r"vectors have 4 dimensions; this project's vectors have 8")


def test_ragged_list_vectors(project, tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "vec": [1.0, 2.0]}, {"id": "b", "vec": [1.0]}]) + "\n")
    _check(project, f, r"row 2, column 'vec': vector has 1 values, expected 2",
           vector="vec", vector_prefix=None, text=None)


def test_duplicate_ids_in_file(loaded, tmp_path):
    rows = _rows(6, start=1000)
    rows[5][0] = rows[2][0]
    f = write_csv(tmp_path / "x.csv", HEADER, rows)
    _check(loaded, f, r"row 6, column 'id': duplicate id 's1002' \(first seen at row 3\)")


def test_duplicate_id_in_a_later_record_batch_rolls_back_earlier_batches(project, tmp_path):
    # Parquet read in record batches: the duplicate sits past the first batch, after
    # rows and vectors of the first batch were already written inside the transaction.
    n = 70_000
    ids = [f"s{i}" for i in range(n)]
    ids[-1] = "s5"
    vec = np.ones((n, 4), np.float32)
    table = pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(vec.ravel(), 4)})
    f = tmp_path / "x.parquet"
    pq.write_table(table, f, row_group_size=10_000)
    _check(project, f, r"duplicate id 's5'", vector="vec", vector_prefix=None, text=None)
    assert read(project.store, lambda u: u.samples.count()) == 0


def test_same_id_other_content_needs_update(loaded, tmp_path, pool_data):
    X, y = pool_data
    X2 = X.copy()
    X2[0] += 1
    f = write_pool_csv(tmp_path / "changed.csv", X2, y)
    _check(loaded, f, r"id 's0' is already in the project with different content")
    report = loaded.ingest(f, id="id", text="text", vector_prefix="v", update=True)
    assert (report.new, report.updated) == (0, 1)
    np.testing.assert_allclose(read(loaded.store,
                                    lambda u: u.vector_set("precomputed")).read(np.array([0]))[0], X2[0],
                               rtol=1e-5)


def test_empty_file(loaded, tmp_path):
    f = write_csv(tmp_path / "x.csv", HEADER, [])
    _check(loaded, f, "no rows")


def test_empty_id(loaded, tmp_path):
    rows = _rows(3, start=1000)
    rows[1][0] = ""
    f = write_csv(tmp_path / "x.csv", HEADER, rows)
    before = snapshot(loaded)
    # An empty string is a value, not a null, in CSV: it is still a distinct id, so the
    # file ingests; what must never happen is a partial write on failure.
    loaded.ingest(f, id="id", text="text", vector_prefix="v")
    assert snapshot(loaded) != before


def test_duplicate_ids_across_record_batches_into_a_non_empty_project(project, tmp_path):
    # With rows already in the project each batch's ids are looked up: a new id met
    # again in a later batch, or a project id met twice, is a duplicate all the same.
    def parquet(name: str, ids: list[str]) -> Path:
        vec = np.ones((len(ids), 4), np.float32)
        table = pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(vec.ravel(), 4)})
        pq.write_table(table, tmp_path / name, row_group_size=10_000)
        return tmp_path / name

    project.ingest(parquet("first.parquet", [f"p{i}" for i in range(10)]), id="id",
                   vector="vec")
    n = 70_000
    new_twice = [f"s{i}" for i in range(n)]
    new_twice[-1] = "s5"
    _check(project, parquet("a.parquet", new_twice), r"row 70000, column 'id': duplicate id "
           r"'s5' \(first seen at row 6\)", vector="vec", vector_prefix=None, text=None)
    old_twice = [f"s{i}" for i in range(n)]
    old_twice[3], old_twice[-1] = "p3", "p3"
    _check(project, parquet("b.parquet", old_twice), r"row 70000, column 'id': duplicate id "
           r"'p3' \(first seen at row 4\)", vector="vec", vector_prefix=None, text=None)
    assert read(project.store, lambda u: u.samples.count()) == 10
