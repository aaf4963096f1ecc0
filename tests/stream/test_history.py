"""Run history: per round the strategy, auto's decision, the models with their hashes."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.errors import InputError, ProjectError
from tests.conftest import write_csv
from tests.reads import read

runner = CliRunner()


def _label_round(p, tmp_path, q, name):
    truth = {b[1]: b[3]["truth"] for chunk in read(p.store, lambda u: list(u.samples.iter())) for b in chunk}
    return p.import_labels(write_csv(tmp_path / name, ["id", "label"],
                                     [[i, truth[i]] for i in q.ids]))


@pytest.fixture
def looped(loaded, tmp_path):
    """Round 1 (random, cold), labeled, trained; round 2 (auto) picked by that model."""
    q1 = loaded.query(40, strategy="random")
    _label_round(loaded, tmp_path, q1, "r1.csv")
    # eval labels too (the first batch has none before a model), so models get metrics
    truth = {b[1]: b[3]["truth"] for chunk in read(loaded.store,
                                                   lambda u: list(u.samples.iter())) for b in chunk}
    loaded.import_labels(write_csv(tmp_path / "eval.csv", ["id", "label"], [
        [f"s{r}", truth[f"s{r}"]] for r in read(loaded.store,
                                                lambda u: u.samples.rows_by_split("eval"))[:20]]))
    loaded.train()
    q2 = loaded.query(20, strategy="auto")
    return loaded, q1, q2


def test_history_names_the_models_that_picked_and_were_trained(looped):
    p, q1, q2 = looped
    h = p.history()
    assert [r.round for r in h] == [q1.round_id, q2.round_id]
    first, second = h
    assert first.picked_by is None and first.strategy == "random"
    model = read(p.store, lambda u: u.models.list())[-1]
    assert first.trained.id == model["id"]
    assert second.picked_by.id == model["id"] and second.trained is None
    on_disk = hashlib.sha256((p.path / model["path"]).read_bytes()).hexdigest()
    assert first.trained.sha256 == on_disk
    assert first.trained.fit_seconds == model["fit_seconds"]
    assert "accuracy" in first.trained.metrics
    assert second.arm == q2.log["selection"]["arm"]
    assert second.decision == q2.log["selection"]
    assert second.params["budget"] == 20 and second.size == 20
    assert second.timings["seconds"] >= 0 and "seconds" in first.timings
    assert [r.dataset_version for r in h] == [v.id for v in p.versions()]


def test_history_shows_the_eval_metrics_of_a_model_once_eval_rows_are_labeled(looped,
                                                                             tmp_path):
    p, q1, q2 = looped
    _label_round(p, tmp_path, q2, "r2.csv")
    p.train()
    assert "accuracy" in p.history()[1].trained.metrics


def test_round_model_needs_a_trained_model_and_a_known_round(looped):
    from longtail.engine.history import round_model

    p, q1, q2 = looped
    assert round_model(p.store, q1.round_id).id == read(p.store, lambda u: u.models.list())[-1]["id"]
    with pytest.raises(ProjectError, match=f"no model was trained after round {q2.round_id}"):
        round_model(p.store, q2.round_id)
    with pytest.raises(InputError, match="no round 9 .rounds: 1, 2"):
        round_model(p.store, 9)


def test_cli_history_json(looped):
    p, q1, q2 = looped
    r = runner.invoke(app, ["history", "-p", str(p.path), "--json"])
    assert r.exit_code == 0, r.output
    rounds = json.loads(r.stdout)
    assert [x["round"] for x in rounds] == [q1.round_id, q2.round_id]
    r = runner.invoke(app, ["history", "-p", str(p.path)])
    assert r.exit_code == 0 and "rounds" in r.stdout


def test_any_rounds_model_loads_back_checked_against_its_hash(looped, tmp_path):
    import numpy as np

    p, q1, q2 = looped
    _label_round(p, tmp_path, q2, "r2.csv")
    p.train()
    X = p.vectors().read(np.arange(10))
    for q in (q1, q2):
        meta = p.history()[q.round_id - 1].trained
        want = p.model(meta.id).predict_proba(X)
        assert np.allclose(p.model(round=q.round_id).predict_proba(X), want)
    assert not np.allclose(p.model(round=q1.round_id).predict_proba(X),
                           p.model(round=q2.round_id).predict_proba(X))
    path = p.path / p.history()[0].trained.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="does not match the hash"):
        p.model(round=q1.round_id)


def test_history_keeps_every_model_whatever_rounds_were_cancelled(loaded, tmp_path):
    p = loaded
    truth = {b[1]: b[3]["truth"] for chunk in read(p.store, lambda u: list(u.samples.iter())) for b in chunk}
    # a model from imported labels before any round
    first_ids = [f"s{r}" for r in read(p.store, lambda u: u.samples.rows_by_split("pool"))[:12]]
    p.import_labels(write_csv(tmp_path / "early.csv", ["id", "label"],
                              [[i, truth[i]] for i in first_ids]))
    p.train()
    q1 = p.query(30, strategy="random")
    q2 = p.query(20, strategy="random")  # a second open round, then given up on
    p.cancel_round(q2.round_id)
    _label_round(p, tmp_path, q1, "r1.csv")
    p.train()
    p.train(force=True)
    h = p.history()
    models = [m["id"] for m in read(p.store, lambda u: u.models.list())]
    assert [m.id for r in h for m in r.models] == models  # none lost, none twice
    early, first, second = h
    assert early.round is None and [m.id for m in early.models] == models[:1]
    assert first.round == q1.round_id and first.trained.id == models[-1]
    assert [m.id for m in first.models] == models[1:]
    assert second.status == "cancelled" and second.trained is None

    # a label for the cancelled round's rows is recorded, with a warning naming it
    got = p.import_labels(write_csv(tmp_path / "late.csv", ["id", "label"],
                                    [[i, truth[i]] for i in q2.ids[:3]]))
    assert got["new_labels"] == 3
    assert any(f"round {q2.round_id}" in w and "cancelled" in w for w in got["warnings"])

    r = runner.invoke(app, ["history", "-p", str(p.path)])
    assert r.exit_code == 0 and "None" not in r.stdout and "nan" not in r.stdout
