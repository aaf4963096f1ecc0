"""The use cases run on both catalogs: every `project` here is made once on SQLite and
once on PostgreSQL (skipped, and counted in the run's summary, without a server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longtail.project import Project


@pytest.fixture
def project(tmp_path: Path, catalog_url) -> Project:
    p = Project.init(tmp_path / "proj", eval_rate=0.1, db=catalog_url)
    yield p
    p.close()
