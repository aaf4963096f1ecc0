"""A skorch-wrapped network fits the learner contract: string labels, probabilities in
`classes_` order, saved without pickle and loaded predicting the same, trained and
queried through the product path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("skorch")

from longtail.errors import InputError  # noqa: E402
from longtail.learners import is_learner, make_learner, persist  # noqa: E402
from longtail.learners.skorch_net import SkorchNet  # noqa: E402
from tests.conftest import make_pool  # noqa: E402

MODULE = "tests.learners.skorch_module.SmallNet"


def test_skorch_net_learns_string_labels_and_round_trips_without_pickle(tmp_path):
    X, y = make_pool(300, d=8, classes=3, seed=2)
    m = make_learner("skorch", module=MODULE, module_params={"hidden": 32},
                     max_epochs=40, lr=0.02).fit(X[:200], y[:200])
    assert is_learner(m) and m.classes_.tolist() == sorted(set(y.tolist()))
    P = m.predict_proba(X[200:])
    assert P.shape == (100, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    assert float(np.mean(m.classes_[P.argmax(1)] == y[200:])) > 0.85
    arrays = persist.dump(m)
    assert "skops" not in arrays
    np.savez(tmp_path / "m.npz", **arrays)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as got:
        back = persist.load(dict(got))
    assert isinstance(back, SkorchNet)
    np.testing.assert_allclose(back.predict_proba(X[200:]), P, atol=1e-6)
    fresh = persist.fresh_like(back)
    assert isinstance(fresh, SkorchNet) and not hasattr(fresh, "net_")
    assert not persist.warm_starts(back)


def test_a_bad_module_path_is_named():
    X, y = make_pool(40, d=4, classes=2, seed=1)
    with pytest.raises(InputError, match="no class 'Nope'"):
        make_learner("skorch", module="tests.learners.skorch_module.Nope").fit(X, y)


def test_train_and_query_with_a_skorch_net(tmp_path):
    from longtail.engine.labels import LabelEvent
    from longtail.project import Project
    from tests.conftest import write_pool_csv

    X, y = make_pool(200, d=8, classes=3, seed=5)
    p = Project.init(tmp_path / "proj", eval_rate=0.0, learner="skorch",
                     learner_params={"module": MODULE, "max_epochs": 20})
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v", text="text")
    p.record_labels([LabelEvent(id=f"s{i}", label=str(y[i])) for i in range(30)])
    p.train()
    got = p.query(10, strategy="margin")
    assert len(got.rows) == 10 and not set(got.rows) & set(range(30))
