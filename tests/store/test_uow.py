"""The unit of work owns one transaction: everything inside commits together or not at
all, on SQLite and on PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from longtail.errors import ProjectError
from longtail.store import Store, UnitOfWork
from longtail.store import schema as s
from tests.reads import read


class Boom(Exception):
    pass


def _add_samples(uow: UnitOfWork, n: int) -> int:
    batch = uow.samples.add_batch("f.csv", "", {"id": "id"})
    start = uow.samples.next_row()
    uow.samples.insert(batch, [(start + i, f"s{start + i}", f"{i:032x}", f"t{i}", None)
                               for i in range(n)])
    return batch


def test_commit_on_normal_exit_is_seen_by_a_new_connection(store: Store):
    with store.unit_of_work() as uow:
        _add_samples(uow, 3)
        uow.labels.add([{"row": 0, "label": "a", "source": "human"}])
        uow.settings.set("encoder", "minilm")
    assert read(store, lambda u: u.samples.count()) == 3
    assert read(store, lambda u: u.labels.current()) == {0: "a"}
    assert read(store, lambda u: u.settings.get("encoder")) == "minilm"


def test_exception_inside_leaves_nothing(store: Store):
    before = read(store, lambda u: u.settings.all())
    with pytest.raises(Boom):
        with store.unit_of_work() as uow:
            _add_samples(uow, 5)
            uow.labels.add([{"row": 1, "label": "a", "source": "human"}])
            uow.rounds.add("random", {}, 0, {}, [(2, 0, "selected")], None)
            uow.metrics.add(None, "managed:v1", 1, {"accuracy": (0.5, None, None)})
            uow.settings.set("encoder", "minilm")
            assert uow.samples.count() == 5  # visible inside the transaction
            raise Boom
    assert read(store, lambda u: u.samples.count()) == 0
    assert read(store, lambda u: u.labels.count()) == 0
    assert read(store, lambda u: u.rounds.list()) == []
    assert read(store, lambda u: u.metrics.list()) == []
    assert read(store, lambda u: u.settings.all()) == before
    with store.engine.connect() as conn:
        assert conn.execute(select(s.ingest_batches)).all() == []


def test_uncommitted_work_is_invisible_to_another_connection(store: Store):
    with store.unit_of_work() as uow:
        _add_samples(uow, 2)
        assert read(store, lambda u: u.samples.count()) == 0  # another connection: not committed yet
    assert read(store, lambda u: u.samples.count()) == 2


def test_a_failed_statement_rolls_back_the_earlier_ones(store: Store):
    with store.unit_of_work() as uow:
        _add_samples(uow, 2)
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError, per dialect
        with store.unit_of_work() as uow:
            uow.labels.add([{"row": 0, "label": "a", "source": "human"}])
            _add_samples(uow, 1)
            # row 2 again: the primary key refuses it
            uow.samples.insert(1, [(2, "other", "0" * 32, None, None)])
    assert read(store, lambda u: u.labels.current()) == {}
    assert read(store, lambda u: u.samples.count()) == 2


def test_model_file_is_written_before_commit_and_orphaned_by_a_rollback(store: Store):
    arrays = {"coef": np.arange(6, dtype=np.float32).reshape(2, 3)}
    with pytest.raises(Boom):
        with store.unit_of_work() as uow:
            mid = uow.models.add("linear", "minilm", 4, ["a", "b"], arrays, 0.1)
            path = store.root / uow.models.get(mid)["path"]
            assert path.exists()  # on disk before the row commits
            raise Boom
    assert read(store, lambda u: u.models.list()) == []  # no row points to the orphan
    with store.unit_of_work() as uow:
        mid = uow.models.add("linear", "minilm", 4, ["a", "b"], arrays, 0.1)
    with store.reading() as uow:
        got = uow.models.arrays(uow.models.latest())
    np.testing.assert_array_equal(got["coef"], arrays["coef"])
    assert not list((store.root / "models").glob("*.tmp"))


def test_reading_sees_one_snapshot_and_never_commits(store: Store):
    from sqlalchemy import event

    commits: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: commits.append(1))
    with store.reading() as snap:
        assert snap.samples.count() == 0
        with store.unit_of_work() as uow:  # a commit beside the snapshot
            _add_samples(uow, 3)
        assert snap.samples.count() == 0  # the snapshot does not move
    assert commits == [1] and read(store, lambda u: u.samples.count()) == 3


def test_open_finds_the_catalog_again(tmp_path, catalog_url):
    st = Store.create(tmp_path / "p", {"seed": 7}, db_url=catalog_url)
    with st.unit_of_work() as uow:
        _add_samples(uow, 4)
    st.close()
    again = Store.open(tmp_path / "p")
    assert again.dialect == ("sqlite" if catalog_url is None else "postgresql")
    assert read(again,
                lambda u: u.samples.count()) == 4 and read(again, lambda u: u.settings.get("seed")) == 7
    again.close()
    with pytest.raises(ProjectError, match="already holds"):
        Store.create(tmp_path / "p", {})
    if catalog_url is not None:
        # Another directory pointed at the same database: refused, nothing overwritten.
        with pytest.raises(ProjectError, match="already holds a longtail catalog"):
            Store.create(tmp_path / "q", {}, db_url=catalog_url)
        assert not (tmp_path / "q" / "catalog.url").exists()


def test_unreachable_database_is_one_clear_error(tmp_path):
    # Port 9 (discard) answers nobody: a connection error, named with the URL.
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    with pytest.raises(ProjectError, match="cannot open the catalog database"):
        Store.create(tmp_path / "p", {}, db_url=url)
    assert not (tmp_path / "p" / "catalog.url").exists()


def test_bad_url_is_a_project_error(tmp_path):
    with pytest.raises(ProjectError, match="not a database URL"):
        Store.create(tmp_path / "p", {}, db_url="not a url")
    with pytest.raises(ProjectError, match="SQLite or PostgreSQL"):
        Store.create(tmp_path / "p", {}, db_url="mysql://u@h/d")
