"""The torch MLP learner: fits, saves without pickle and loads predicting the same,
warm-starts, and gives MC-dropout posteriors that BALD reads through `query`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from longtail.learners import (
    make_learner,  # noqa: E402
    persist,  # noqa: E402
)
from longtail.learners.torch_mlp import TorchMLP  # noqa: E402
from tests.conftest import make_pool  # noqa: E402


def test_mlp_learns_and_round_trips_without_pickle(tmp_path):
    X, y = make_pool(300, d=8, classes=3, seed=2)
    m = make_learner("mlp", hidden=32, epochs=60, seed=0).fit(X[:200], y[:200])
    acc = float(np.mean(m.predict(X[200:]) == y[200:]))
    assert acc > 0.9
    arrays = persist.dump(m)
    np.savez(tmp_path / "m.npz", **arrays)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as got:
        back = persist.load(dict(got))
    assert isinstance(back, TorchMLP)
    np.testing.assert_allclose(back.predict_proba(X[200:]), m.predict_proba(X[200:]), atol=1e-6)
    assert persist.warm_starts(back) and isinstance(persist.fresh_like(back), TorchMLP)


def test_posterior_samples_disagree_where_the_model_is_unsure():
    X, y = make_pool(300, d=8, classes=3, seed=3)
    m = TorchMLP(hidden=32, epochs=60, dropout=0.3).fit(X, y)
    S = m.posterior_samples(X, 16)
    assert S.shape == (16, 300, 3)
    np.testing.assert_allclose(S.sum(axis=2), 1.0, atol=1e-5)
    spread = S.std(axis=0).max(axis=1)
    conf = m.predict_proba(X).max(axis=1)
    # The rows the model is least sure of vary most across dropout masks.
    low, high = conf < np.quantile(conf, 0.2), conf > np.quantile(conf, 0.8)
    assert spread[low].mean() > spread[high].mean()


def test_warm_start_continues_from_the_learned_weights():
    X, y = make_pool(200, d=8, classes=3, seed=4)
    m = TorchMLP(hidden=16, epochs=30).fit(X, y)
    first = m.net_[0].weight.detach().clone()
    m.set_params(epochs=1).fit(X, y)
    # One more epoch moves the weights a little from where they were, not from scratch.
    assert float((m.net_[0].weight.detach() - first).abs().max()) < 0.5


@pytest.mark.parametrize("strategy", ["bald", "batchbald"])
def test_query_with_bald_uses_the_mlp_posterior(tmp_path, monkeypatch, strategy):
    from longtail.project import Project
    from tests.conftest import write_pool_csv

    X, y = make_pool(200, d=8, classes=3, seed=5)
    p = Project.init(tmp_path / "proj", eval_rate=0.0, learner="mlp",
                     learner_params={"hidden": 16, "epochs": 30})
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v", text="text")
    rows = np.arange(30)
    from longtail.engine.labels import LabelEvent

    p.record_labels([LabelEvent(id=f"s{i}", label=str(y[i])) for i in rows])
    p.train()
    calls = []
    real = TorchMLP.posterior_samples
    monkeypatch.setattr(TorchMLP, "posterior_samples",
                        lambda self, X, m=None: calls.append(len(X)) or real(self, X, m))
    got = p.query(10, strategy=strategy)
    assert calls  # the committee is the MLP's own MC-dropout posterior
    assert len(got.rows) == 10
    assert strategy in str(got.log)
