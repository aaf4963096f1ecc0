"""Shared fixtures: small seeded synthetic pools written as files, and a project."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from longtail.project import Project
from longtail.store import schema


def make_pool(n: int = 300, d: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return X, np.array([f"c{k}" for k in y])


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_pool_csv(path: Path, X: np.ndarray, y: np.ndarray, start: int = 0) -> Path:
    d = X.shape[1]
    rows = [[f"s{start + i}", f"text {start + i}", *X[i].tolist(), y[i], "web"]
            for i in range(len(X))]
    return write_csv(path, ["id", "text", *[f"v{j}" for j in range(d)], "truth", "source"], rows)


def snapshot(project: Project) -> dict:
    """Everything a user can see in the project: every catalog table's rows and the
    valid part of every vector set."""
    out = {}
    with project.store.engine.connect() as conn:
        for name, table in schema.metadata.tables.items():
            out[name] = sorted(map(repr, conn.execute(select(table)).all()))
    for name in project.store.vector_set_names():
        vs = project.store.vectors(name)
        out[f"vectors:{name}"] = vs.read(np.arange(vs.n_rows)).tobytes()
    return out


@pytest.fixture
def pool_data():
    return make_pool()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project.init(tmp_path / "proj", eval_rate=0.1)
    yield p
    p.close()


@pytest.fixture
def loaded(project: Project, tmp_path: Path, pool_data) -> Project:
    X, y = pool_data
    project.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                   vector_prefix="v")
    return project
