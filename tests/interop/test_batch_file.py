"""The batch file is ready to label: id, text and a blank label first, then the pool's
columns in its order under their own names, no empty text column, and an existing
file is never overwritten silently."""

from __future__ import annotations

import csv
import json

import pytest

from longtail.errors import InputError
from longtail.ingest.labels import read_label_records
from longtail.interop import write_batch_file


def _tabular(n=3):
    return [(r, f"s{r}", None, {**{f"f{j}": float(r * 10 + j) for j in range(12)},
                                "digit": r % 10}) for r in range(n)]


def test_tabular_batch_keeps_the_pools_column_order_names_and_a_blank_label_first(tmp_path):
    features = [f"f{j}" for j in range(12)]
    # the file's order: the answer column first, then the features
    out = write_batch_file(tmp_path / "b.csv", _tabular(), ["eval", "select", "control"], 4,
                           column_order=["digit", *features])
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["id", "label", "digit", *features, "kind", "round"]
    assert [r["label"] for r in rows] == ["", "", ""]
    assert [r["kind"] for r in rows] == ["eval", "select", "control"]
    assert rows[1]["f10"] == "20.0" and rows[1]["round"] == "4"
    # Returned unlabeled, every row reads back as a skip, not an error.
    assert {r.kind for r in read_label_records(out)} == {"skip"}


def test_text_batch_keeps_text_and_metadata(tmp_path):
    records = [(0, "a", "hello", {"source": "web", "n2": 1, "n10": 2}), (1, "b", None, {})]
    out = write_batch_file(tmp_path / "b.jsonl", records, ["select", "select"], 1)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    # without a known order: natural order (n2 before n10), names as ingested
    assert list(lines[0]) == ["id", "text", "label", "n2", "n10", "source", "kind", "round"]
    assert lines[0]["text"] == "hello" and lines[1]["text"] == "" and lines[0]["label"] == ""


def test_existing_out_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "b.csv"
    out.write_text("keep me\n")
    with pytest.raises(InputError, match="exists.*--overwrite"):
        write_batch_file(out, _tabular(1), ["select"], 1)
    assert out.read_text() == "keep me\n"
    write_batch_file(out, _tabular(1), ["select"], 1, overwrite=True)
    assert out.read_text().startswith("id,label,")
    assert [p.name for p in tmp_path.iterdir()] == ["b.csv"]  # no temporary left


def test_feature_named_like_a_fixed_column_and_bad_suffix(tmp_path):
    records = [(0, "a", None, {"kind": 1.0, "x": 2.0})]
    out = write_batch_file(tmp_path / "b.csv", records, ["select"], 1,
                           column_order=["x", "kind"])
    assert out.read_text().splitlines()[0] == "id,label,x,meta_kind,kind,round"
    with pytest.raises(InputError, match=r"\.csv or \.jsonl"):
        write_batch_file(tmp_path / "b.txt", records, ["select"], 1)


def test_an_image_batch_shows_the_media_path_before_the_label(tmp_path):
    records = [(0, "a", None, {"size": "32x32", "media": "cats/a.png", "sha256": "ab"})]
    out = write_batch_file(tmp_path / "b.csv", records, ["select"], 1,
                           column_order=["media", "size", "sha256"])
    assert out.read_text().splitlines()[0] == "id,media,label,size,sha256,kind,round"
