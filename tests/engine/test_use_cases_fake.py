"""Round use cases on the in-memory unit of work (`fake_uow.py`): what a use case
decides, without a catalog. The same functions run on SQLite and PostgreSQL in
test_use_cases.py."""

from __future__ import annotations

import pytest

from longtail.engine import rounds, views
from longtail.errors import InputError, ProjectError
from tests.engine.fake_uow import FakeUnitOfWork


def _uow() -> FakeUnitOfWork:
    uow = FakeUnitOfWork(["pool"] * 8 + ["eval"] * 2)
    uow.rounds.add("random", {}, 0, {"selection": {"arm": "coverage"}},
                   [(0, 0, "selected"), (1, 1, "selected"), (8, 2, "eval")], None)
    uow.rounds.add("margin", {}, 3, {}, [(2, 0, "selected"), (3, 1, "selected")], None)
    uow.labels.events += [(0, "a"), (8, "b"), (0, "c")]
    return uow


def test_list_rounds_counts_labeled_items_and_names_the_arm():
    listed = rounds.list_rounds(_uow())
    assert [(r.id, r.size, r.labeled, r.status) for r in listed] == [
        (1, 3, 2, "open"), (2, 2, 0, "open")]
    assert listed[0].arm == "coverage"


def test_cancel_round_frees_its_rows_and_refuses_twice():
    uow = _uow()
    assert sorted(views.candidates(uow).tolist()) == [4, 5, 6, 7]  # labeled/queued/eval out
    done = rounds.cancel_round(uow, 2)
    assert (done.round, done.status, done.size) == (2, "cancelled", 2)
    assert sorted(views.candidates(uow).tolist()) == [2, 3, 4, 5, 6, 7]
    with pytest.raises(ProjectError, match="round 2 is cancelled"):
        rounds.cancel_round(uow, 2)
    with pytest.raises(InputError, match="no round 9"):
        rounds.cancel_round(uow, 9)
