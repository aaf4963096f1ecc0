"""Item 9 of issue 19: one non-numeric cell in a numeric column. Embedding names the
same row as ingest does, and re-ingesting the fixed file changes that row only."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.project import Project
from tests.conftest import write_csv
from tests.reads import read

HEADER = ["id", *[f"f{j}" for j in range(4)], "digit"]


def _rows(n: int = 20) -> list[list]:
    rng = np.random.default_rng(3)
    return [[f"s{i}", *rng.normal(size=4).round(3).tolist(), int(rng.integers(0, 3))]
            for i in range(n)]


@pytest.fixture
def files(tmp_path):
    rows = _rows()
    good = write_csv(tmp_path / "good.csv", HEADER, rows)
    rows[7][3] = "abc"  # data row 8 (the header is not counted), column f2
    bad = write_csv(tmp_path / "bad.csv", HEADER, rows)
    return good, bad


@pytest.mark.parametrize("hashing", [1, 2])
def test_fixed_file_updates_only_the_fixed_row(tmp_path, files, hashing):
    good, bad = files
    p = Project.init(tmp_path / "p", hashing=hashing)
    p.ingest(bad, id="id")
    with pytest.raises(InputError, match=r"good\.csv: row 8: id 's7'"):
        p.ingest(good, id="id")  # the changed row, not "row 1" for an unchanged one
    report = p.ingest(good, id="id", update=True)
    assert (report.updated, report.unchanged, report.new) == (1, 19, 0)
    assert report.updated_rows == [7] and "updated_rows" not in report.to_dict()
    assert p.ingest(good, id="id").unchanged == 20
    p.close()


def test_bad_file_after_the_good_one_names_the_bad_row(tmp_path, files):
    good, bad = files
    p = Project.init(tmp_path / "p")
    p.ingest(good, id="id")
    with pytest.raises(InputError, match=r"row 8: id 's7'"):
        p.ingest(bad, id="id")
    assert p.ingest(bad, id="id", update=True).updated == 1
    p.close()


def test_tabular_embed_names_the_row_ingest_would(tmp_path, files):
    _, bad = files
    p = Project.init(tmp_path / "p")
    # The reference numbering: ingest reading the column as a vector value.
    with pytest.raises(InputError, match=r"row 8, column 'f2'"):
        p.ingest(bad, id="id", vector_prefix="f")
    p.ingest(bad, id="id")
    with pytest.raises(InputError, match=r"'f2' has non-numeric value 'abc' at row 8\b"):
        p.embed("tabular", batch_rows=5)
    assert read(p.store, lambda u: u.vectors.info("tabular")) is None  # nothing written
    p.close()


def test_fixed_rows_embed_after_the_update(tmp_path, files):
    good, bad = files
    p = Project.init(tmp_path / "p")
    p.ingest(bad, id="id")
    p.ingest(good, id="id", update=True)
    # Unchanged rows still hold the text form of f2 ("0.123"): read as numbers.
    p.embed("tabular", label_columns=["digit"])
    info = read(p.store, lambda u: u.vectors.info("tabular"))
    assert info["config"]["columns"] == ["f0", "f1", "f2", "f3"] and info["dim"] == 4
    p.close()


def test_rows_hashed_before_the_canonical_form_stay_unchanged(tmp_path, files, monkeypatch):
    import longtail.ingest.pipeline as pipeline

    _, bad = files
    p = Project.init(tmp_path / "p")
    # As the code before the canonical form hashed: the literal text of every cell.
    monkeypatch.setattr(pipeline, "has_number_text", lambda batch, columns: False)
    p.ingest(bad, id="id")
    monkeypatch.undo()
    report = p.ingest(bad, id="id")
    assert (report.unchanged, report.updated) == (20, 0)
    p.close()
