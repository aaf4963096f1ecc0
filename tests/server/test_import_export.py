"""Admin import and export of label files over HTTP: the same bytes as `longtail
export`, the same all-or-nothing use case as `longtail import-labels`."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from longtail.cli import app as cli
from longtail.engine import labels, users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings

from .conftest import LABELS, make_store

runner = CliRunner()
TRUTH = {f"s{i}": LABELS[i % 3] for i in range(6)}


@pytest.fixture
def labeled(tmp_path, db_url):
    """A project with six labeled samples, an admin and an annotator."""
    st = make_store(tmp_path / "proj", db_url=db_url)
    labels.record_labels(st, [labels.LabelEvent(i, lab, annotator="ann") for i, lab in TRUTH.items()])
    tokens = {n: users.add_user(st, n, r)[1] for n, r in (("root", "admin"), ("ann", "annotator"))}
    yield st, tokens
    st.close()


def _client(st, **kw):
    return TestClient(create_app(st.root, ServerSettings(**kw)))


def _h(tokens, name):
    return {"Authorization": f"Bearer {tokens[name]}"}


def _current(st) -> dict[str, str]:
    with st.unit_of_work() as uow:
        cur = uow.labels.current()
    return {f"s{r}": lab for r, lab in cur.items()}


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("jsonl", ".jsonl"),
                                        ("parquet", ".parquet"), ("label-studio", ".json")])
def test_export_is_the_cli_export_byte_for_byte(labeled, tmp_path, fmt, suffix):
    st, tokens = labeled
    c = _client(st)
    r = c.get(f"/admin/export/labels?format={fmt}", headers=_h(tokens, "root"))
    assert r.status_code == 200, r.text
    media = {"csv": "text/csv", "jsonl": "application/x-ndjson",
             "parquet": "application/vnd.apache.parquet", "label-studio": "application/json"}
    assert r.headers["content-type"].split(";")[0] == media[fmt]
    out = tmp_path / f"cli{suffix}"
    args = ["export", str(out), "-p", str(st.root)] + (["--format", fmt] if fmt == "label-studio" else [])
    got = runner.invoke(cli, args)
    assert got.exit_code == 0, got.output
    assert r.content == out.read_bytes()
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(r.content)).to_pylist()
        assert {x["id"]: x["label"] for x in table} == TRUTH
    if fmt == "csv":
        assert r.headers["x-longtail-rows"] == "6"
        assert f'filename="labels-v{r.headers["x-longtail-version"]}.csv"' in r.headers[
            "content-disposition"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_then_import_round_trip(labeled, tmp_path, fmt):
    st, tokens = labeled
    body = _client(st).get(f"/admin/export/labels?format={fmt}", headers=_h(tokens, "root")).content
    other = make_store(tmp_path / "other")
    admin = users.add_user(other, "root", "admin")[1]
    try:
        c = _client(other)
        r = c.post(f"/admin/import?format={fmt}", content=body,
                   headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        assert r.json()["new_labels"] == 6 and r.json()["format"] == fmt
        assert _current(other) == TRUTH
        # Importing it again changes nothing.
        r = c.post(f"/admin/import?format={fmt}", content=body,
                   headers={"Authorization": f"Bearer {admin}"})
        assert r.json()["new_labels"] == 0 and r.json()["unchanged"] == 6
    finally:
        other.close()


def test_import_multipart_and_label_studio(labeled, tmp_path):
    st, tokens = labeled
    c = _client(st)
    f = "id,label,annotator\ns7,transfer,bob\ns8,card,bob\n"
    r = c.post("/admin/import?format=csv&annotator=annotator", headers=_h(tokens, "root"),
               files={"file": ("batch.csv", f.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["new_labels"] == 2 and r.json()["file"] == "batch.csv"
    ls = [{"data": {"text": "text number 9", "longtail_id": "s9"},
           "annotations": [{"result": [{"type": "choices", "value": {"choices": ["billing"]}}],
                            "completed_by": 3, "lead_time": 4.0}]}]
    r = c.post("/admin/import?format=label-studio", headers=_h(tokens, "root"),
               content=json.dumps(ls).encode())
    assert r.status_code == 200, r.text
    assert _current(st)["s9"] == "billing" and _current(st)["s7"] == "transfer"


def test_a_bad_file_is_422_naming_the_problem_and_changes_nothing(labeled):
    st, tokens = labeled
    c = _client(st)
    with st.unit_of_work() as uow:
        n0 = uow.labels.count()
    cases = [("csv", b"id,labl\ns7,card\n", "'label'"),
             ("csv", b"id,label\ns7,card\ns8,cardz\n", "allowed: billing, card, transfer"),
             ("csv", b"id,label\ns7,card\nnope,card\n", "unknown id"),
             ("jsonl", b'{"id": "s7", "label": "card"}\n{"id": ', "uploaded file"),
             ("label-studio", b"[1, 2]", "list of tasks"),
             ("csv", b"", "no body")]
    for fmt, body, said in cases:
        r = c.post(f"/admin/import?format={fmt}", content=body, headers=_h(tokens, "root"))
        assert r.status_code == 422, (body, r.text)
        assert said in json.dumps(r.json()["detail"]), (said, r.json())
        assert "longtail-import-" not in r.text  # our temporary copy is never named
        with st.unit_of_work() as uow:
            assert uow.labels.count() == n0
    r = c.post("/admin/import?format=xlsx", content=b"x", headers=_h(tokens, "root"))
    assert r.status_code == 422


def test_annotators_get_403_and_big_files_413(labeled):
    st, tokens = labeled
    c = _client(st, max_body=2048, max_import=4096)
    ann = _h(tokens, "ann")
    assert c.get("/admin/export/labels?format=csv", headers=ann).status_code == 403
    assert c.post("/admin/import?format=csv", content=b"id,label\ns7,card\n",
                  headers=ann).status_code == 403
    assert c.post("/admin/import?format=csv", content=b"id,label\ns7,card\n").status_code == 401
    big = b"id,label\n" + b"s7,card\n" * 1000  # 8 KB: over the import limit
    r = c.post("/admin/import?format=csv", content=big, headers=_h(tokens, "root"))
    assert r.status_code == 413
    # Between the body limit and the import limit: fine for an import only.
    mid = b"id,label\n" + b"s7,card\n" * 400
    assert c.post("/admin/import?format=csv", content=mid,
                  headers=_h(tokens, "root")).status_code == 200
    with st.unit_of_work() as uow:
        assert uow.labels.count() == 7
