"""A small project whose long tail is known: four well-separated classes in 16-d, the
fourth (source "mobile") never labeled, so the model cannot predict it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.project import Project
from tests.conftest import write_csv
from tests.reads import read

D = 16


def make_tail_pool(n: int = 400, seed: int = 0):
    """(X, y, source): classes a, b, c common, d rare (8% of rows) and all "mobile"."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4, D) * 6
    y = rng.choice(4, size=n, p=[0.32, 0.32, 0.28, 0.08])
    X = (centres[y] + rng.normal(size=(n, D))).astype(np.float32)
    names = np.array(["a", "b", "c", "d"])[y]
    source = np.where(y == 3, "mobile", rng.choice(["web", "email"], size=n))
    return X, names, source


def write_tail_csv(path: Path, X, y, source, start: int = 0) -> Path:
    rows = [[f"s{start + i}", f"message {start + i} about {y[i]}", *X[i].tolist(), source[i],
             y[i]] for i in range(len(X))]
    return write_csv(path, ["id", "text", *[f"v{j}" for j in range(X.shape[1])], "source",
                            "truth"], rows)


@pytest.fixture
def tail_project(tmp_path: Path):
    """Ingested, with a, b and c labeled (30 pool rows each, every eval row) and trained."""
    X, y, source = make_tail_pool()
    p = Project.init(tmp_path / "proj", eval_rate=0.2)
    p.ingest(write_tail_csv(tmp_path / "pool.csv", X, y, source), text="text",
             vector_prefix="v", metadata=["source"])
    eval_rows = set(read(p.store, lambda u: u.samples.rows_by_split("eval")).tolist())
    picked = []
    for c in ("a", "b", "c"):
        picked += [i for i in range(len(y)) if y[i] == c and i not in eval_rows][:30]
    picked += sorted(eval_rows)
    write_csv(tmp_path / "labels.csv", ["id", "label"], [[f"s{i}", y[i]] for i in picked])
    p.import_labels(tmp_path / "labels.csv")
    p.train()
    yield p, (X, y, source)
    p.close()
