"""Label files read into records: skip and unsure are kinds, never classes."""

from __future__ import annotations

import json

import pytest

from longtail.errors import InputError
from longtail.ingest.labels import SKIP, UNSURE, read_label_records
from tests.conftest import write_csv


def test_empty_label_is_a_skip_and_the_literals_mark_skip_and_unsure(tmp_path):
    f = write_csv(tmp_path / "l.csv", ["id", "label", "who", "secs"], [
        ["a", "cat", "ann", "2.5"], ["b", "", "ann", ""], ["c", SKIP, "bob", "1"],
        ["d", UNSURE, "bob", "4"], ["e", "dog", "", ""]])
    records = read_label_records(f, annotator="who", seconds="secs")
    assert [(r.id, r.kind, r.label) for r in records] == [
        ("a", "label", "cat"), ("b", "skip", None), ("c", "skip", None),
        ("d", "unsure", None), ("e", "label", "dog")]
    assert [r.seconds for r in records] == [2.5, None, 1.0, 4.0, None]
    assert [r.annotator for r in records] == ["ann", "ann", "bob", "bob", None]
    assert [r.line for r in records] == [1, 2, 3, 4, 5]


def test_jsonl_empty_string_and_null_labels_are_skips(tmp_path):
    f = tmp_path / "l.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "label": ""}, {"id": "b", "label": None}, {"id": "c", "label": "x"}]) + "\n")
    assert [r.kind for r in read_label_records(f)] == ["skip", "skip", "label"]


@pytest.mark.parametrize(("rows", "kwargs", "match"), [
    ([["a", "c0", "slow"]], {"seconds": "secs"},
     r"row 1, column 'secs': 'slow' is not a number of seconds"),
    ([["a", "c0", "1"], ["b", "c0", "-3"]], {"seconds": "secs"},
     r"row 2, column 'secs': -3 is not a non-negative number of seconds"),
    ([], {}, "the file has no rows"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, rows, kwargs, match):
    f = write_csv(tmp_path / "l.csv", ["id", "label", "secs"], rows)
    with pytest.raises(InputError, match=match):
        read_label_records(f, **kwargs)


def test_missing_label_column(tmp_path):
    f = write_csv(tmp_path / "l.csv", ["id", "category"], [["s1", "c0"]])
    with pytest.raises(InputError, match=r"label column 'label' not found"):
        read_label_records(f)
