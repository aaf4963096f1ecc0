"""`longtail duplicates`: exact (content hash) and near (cosine on the vectors) groups."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine.duplicates import near_pairs
from longtail.errors import InputError
from tests.conftest import make_pool, write_csv

runner = CliRunner()


class _Vectors:
    """An in-memory stand-in of a vector set (n_rows, dim, read, iter_chunks)."""

    def __init__(self, X):
        self.X, self.n_rows, self.dim = X, len(X), X.shape[1]

    def read(self, rows):
        return self.X[rows]

    def iter_chunks(self, rows=None, chunk_rows=65_536):
        for s in range(0, self.n_rows, chunk_rows):
            r = np.arange(s, min(s + chunk_rows, self.n_rows))
            yield r, self.X[r]


def test_near_pairs_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    X[100] = X[7] * 3 + 0.01  # same direction: cosine ~1
    X[200] = X[7] + 0.05 * rng.normal(size=16)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T  # brute force, fine at 300 rows
    want = {(a, b) for a, b in zip(*np.nonzero(np.triu(S, 1) >= 0.95), strict=True)}
    got = {tuple(p) for p in near_pairs(_Vectors(X), 0.95).tolist()}
    assert got == want and {(7, 100), (7, 200)} <= got


def test_project_lists_exact_and_near_groups(project, tmp_path):
    X, y = make_pool(120, d=8, seed=2)
    X[50] = X[10] * 1.001  # a near-duplicate of row 10
    rows = [[f"s{i}", f"text {i}", *X[i].tolist()] for i in range(len(X))]
    rows.append(["copy", "text 3", *X[3].tolist()])  # same content as s3
    f = write_csv(tmp_path / "pool.csv", ["id", "text", *[f"v{j}" for j in range(8)]], rows)
    project.ingest(f, text="text", vector_prefix="v")
    project.import_labels(write_csv(tmp_path / "l.csv", ["id", "label"], [["s10", "c0"]]))
    r = project.duplicates(threshold=0.999)
    assert [[e["id"] for e in g] for g in r["exact"]] == [["s3", "copy"]]
    near = [[e["id"] for e in g] for g in r["near"]]
    assert ["s10", "s50"] in near and ["s3", "copy"] in near
    assert r["counts"]["near_with_labeled"] >= 1
    assert {"id": "s10", "label": "c0"} in next(g for g in r["near"] if g[0]["id"] == "s10")
    with pytest.raises(InputError, match="threshold"):
        project.duplicates(threshold=1.5)
    out = runner.invoke(app, ["duplicates", "-p", str(project.path), "--threshold", "0.999",
                              "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["counts"]["exact_groups"] == 1
