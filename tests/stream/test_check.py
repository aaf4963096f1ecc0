"""`longtail check`: passes on a whole project, names what is broken otherwise."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from longtail.cli import app
from tests.conftest import write_csv
from tests.reads import read

runner = CliRunner()


def _trained(loaded, tmp_path):
    truth = {b[1]: b[3]["truth"] for chunk in read(loaded.store,
                                                   lambda u: list(u.samples.iter())) for b in chunk}
    ids = [f"s{r}" for r in loaded.candidates()[:40]]
    loaded.import_labels(write_csv(tmp_path / "l.csv", ["id", "label"], [[i, truth[i]] for i in ids]))
    loaded.train()
    loaded.query(10, strategy="random")
    return loaded


def _failed(report) -> list[str]:
    return [c.name for c in report.checks if not c.ok]


def test_a_whole_project_passes(loaded, tmp_path):
    p = _trained(loaded, tmp_path)
    r = p.check()
    assert r.ok, r
    names = [c.name for c in r.checks]
    assert {"catalog", "models", "dataset versions", "vectors precomputed"} <= set(names)


def test_a_changed_model_file_fails_and_is_named(loaded, tmp_path):
    p = _trained(loaded, tmp_path)
    m = read(p.store, lambda u: u.models.list())[-1]
    path = p.path / m["path"]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    r = p.check()
    assert not r.ok and _failed(r) == ["models"]
    assert f"model {m['id']}" in next(c.detail for c in r.checks if c.name == "models")
    path.unlink()
    assert "missing" in next(c.detail for c in p.check().checks if c.name == "models")


def test_vector_files_shorter_than_the_catalog_fail(loaded, tmp_path):
    vs = read(loaded.store, lambda u: u.vector_set("precomputed"))
    chunk = sorted((loaded.path / "vectors" / "precomputed").glob("chunk-*.npy"))[-1]
    size = chunk.stat().st_size
    with open(chunk, "r+b") as f:
        f.truncate(size - vs.dim * 4 * 3)  # three rows short
    r = loaded.check()
    assert _failed(r) == ["vectors precomputed"]
    assert any(f"the catalog {vs.n_rows}" in c.detail for c in r.checks)


def test_rows_past_the_valid_count_are_a_note_not_a_failure(loaded):
    vs = loaded.store.vector_writer("precomputed", read(loaded.store,
                                                        lambda u: u.vector_set("precomputed")).dim, "float32")
    vs.write(read(loaded.store, lambda u: u.samples.count()), np.ones((2, vs.dim), np.float32))
    r = loaded.check()
    assert r.ok and any("2 rows past the valid count" in n for n in r.notes)


def test_cli_check_exit_codes(loaded, tmp_path):
    p = _trained(loaded, tmp_path)
    r = runner.invoke(app, ["check", "-p", str(p.path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"]
    (p.path / read(p.store, lambda u: u.models.list())[-1]["path"]).write_bytes(b"not a model")
    r = runner.invoke(app, ["check", "-p", str(p.path)])
    assert r.exit_code == 1 and "FAIL" in r.stdout


def test_a_model_file_without_its_row_is_a_note(loaded, tmp_path):
    p = _trained(loaded, tmp_path)
    (p.path / "models" / "000099.npz").write_bytes(b"left by a killed train")
    r = p.check()
    assert r.ok and any("000099.npz" in n for n in r.notes)
