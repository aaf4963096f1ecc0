"""Likely label errors (cleanlab on out-of-fold probabilities) and the relabel queue
that `query --relabel SHARE` draws from."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine.labels import LabelEvent
from longtail.errors import InputError, ProjectError
from longtail.project import Project
from tests.conftest import make_pool, snapshot, write_pool_csv
from tests.reads import read

runner = CliRunner()
N_FLIPPED = 10


@pytest.fixture
def planted(tmp_path, catalog_url):
    """Three well-separated Gaussian blobs, 150 of 300 samples labeled, 10 of those
    labels flipped to another class."""
    X, y = make_pool(300, d=8, classes=3, seed=1)
    p = Project.init(tmp_path / "p", eval_rate=0.1, db=catalog_url)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
    rng = np.random.default_rng(5)
    labeled = rng.choice(len(y), 150, replace=False)
    flipped = {f"s{i}" for i in labeled[:N_FLIPPED]}
    truth = {f"s{i}": str(y[i]) for i in range(len(y))}
    classes = sorted(set(truth.values()))
    events = []
    for i in labeled:
        sid = f"s{i}"
        label = truth[sid]
        if sid in flipped:
            label = [c for c in classes if c != label][int(rng.integers(2))]
        events.append(LabelEvent(id=sid, label=label))
    p.record_labels(events)
    yield p, flipped, truth, tmp_path
    p.close()


def test_suspects_rank_most_planted_label_errors_first(planted):
    p, flipped, truth, _ = planted
    found = p.suspects()
    top = found.suspects[:15]
    hits = [s for s in top if s["id"] in flipped]
    assert len(hits) / N_FLIPPED >= 0.7
    # On separable blobs the cross-fitted model knows the true class of a flipped label.
    assert all(s["suggested"] == truth[s["id"]] != s["given"] for s in hits)
    # Ranked by self-confidence, lowest (most likely wrong) first.
    conf = [s["self_confidence"] for s in found.suspects]
    assert conf == sorted(conf)
    # Eval rows' labels are checked too (they are never trained on by the loop's models).
    assert {s["split"] for s in found.suspects} <= {"pool", "eval"}
    assert found.labels == 150 and found.folds == 5
    assert len(p.suspects(limit=3).suspects) == 3


def test_too_few_labels_per_class_is_one_clear_error(tmp_path):
    X, y = make_pool(40, seed=2)
    with Project.init(tmp_path / "p") as p:
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
        p.record_labels([LabelEvent(id="s0", label="a"), LabelEvent(id="s1", label="a"),
                         LabelEvent(id="s2", label="b")])
        with pytest.raises(ProjectError, match="at least 2 classes with 2 or more labels"):
            p.suspects()
        before = snapshot(p)
        # query --relabel falls back to no relabel rows and says why
        q = p.query(5, strategy="random", relabel=0.4)
        assert "relabel" not in q.kinds and "no relabel rows" in q.log["relabel"]["reason"]
        p.cancel_round(q.round_id)
        assert snapshot(p)["annotations"] == before["annotations"]
    res = runner.invoke(app, ["suspects", "-p", str(tmp_path / "p")])
    assert res.exit_code == 2 and "at least 2 classes" in res.output


def _batch_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_query_relabel_puts_top_suspects_in_the_batch_marked(planted):
    p, flipped, truth, tmp_path = planted
    top = [s["id"] for s in p.suspects().suspects]
    q = p.query(20, strategy="random", relabel=0.5, out=tmp_path / "batch.csv")
    relabel_ids = [i for i, k in zip(q.ids, q.kinds, strict=True) if k == "relabel"]
    assert len(relabel_ids) == 10 and len(q.rows) == 20
    assert relabel_ids == top[:10]  # the top suspects, in rank order
    assert [s["id"] for s in q.relabel] == relabel_ids
    assert all(s["given"] != s["suggested"] for s in q.relabel)
    # The batch file tells the annotator which rows are a second look.
    rows = {r["id"]: r for r in _batch_rows(tmp_path / "batch.csv")}
    assert {i for i, r in rows.items() if r["kind"] == "relabel"} == set(relabel_ids)
    # A second batch while the first is open never queues the same rows again.
    q2 = p.query(20, strategy="random", relabel=0.5)
    assert not set(q2.ids) & set(q.ids)
    assert set(q2.kinds) <= {"selected", "control", "eval", "relabel"}


def test_corrected_labels_leave_the_suspects_and_close_the_round(planted):
    p, flipped, truth, tmp_path = planted
    q = p.query(20, strategy="random", relabel=0.5)
    relabel_ids = [i for i, k in zip(q.ids, q.kinds, strict=True) if k == "relabel"]
    others = [i for i, k in zip(q.ids, q.kinds, strict=True) if k != "relabel"]
    p.record_labels([LabelEvent(id=i, label=truth[i]) for i in others])
    assert p.rounds()[-1].status == "open"  # relabel rows still await their answer
    events_before = read(p.store, lambda u: u.labels.count())
    # Corrections arrive as ordinary, appended label events.
    res = p.record_labels([LabelEvent(id=i, label=truth[i]) for i in relabel_ids])
    assert res["closed_rounds"] == [q.round_id]
    assert read(p.store, lambda u: u.labels.count()) == events_before + len(relabel_ids)
    still = {s["id"] for s in p.suspects().suspects}
    fixed = [i for i in relabel_ids if i in flipped]
    assert fixed and not still & set(fixed)


def test_a_confirmed_label_answers_its_relabel_item_and_is_not_queued_again(planted):
    p, flipped, truth, tmp_path = planted
    q = p.query(10, strategy="random", relabel=0.5)
    given = {s["id"]: s["given"] for s in q.relabel}
    assert len(given) == 5
    events_before = read(p.store, lambda u: u.labels.count())
    # The reviewer keeps every given label: each answer is still an event.
    p.record_labels([LabelEvent(id=i, label=given.get(i, truth[i])) for i in q.ids])
    assert p.rounds()[-1].status == "closed"
    assert read(p.store, lambda u: u.labels.count()) == events_before + len(q.ids)
    q2 = p.query(10, strategy="random", relabel=0.5)
    assert not set(given) & {s["id"] for s in q2.relabel}
    # Cancelling a round puts its relabel rows back in the queue.
    p.cancel_round(q2.round_id)
    q3 = p.query(10, strategy="random", relabel=0.5)
    assert [s["id"] for s in q3.relabel] == [s["id"] for s in q2.relabel]


def test_relabel_share_out_of_range_is_an_error(planted):
    p, *_ = planted
    before = snapshot(p)
    with pytest.raises(InputError, match="--relabel must be a share between 0 and 1"):
        p.query(10, relabel=1.5)
    assert snapshot(p) == before


def test_cli_suspects_and_query_relabel(planted):
    p, flipped, truth, tmp_path = planted
    path = str(p.path)
    res = runner.invoke(app, ["suspects", "-p", path, "--limit", "5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["suspects"]) == 5 and out["n_suspects"] >= 5
    res = runner.invoke(app, ["suspects", "-p", path, "--limit", "3"])
    assert res.exit_code == 0 and out["suspects"][0]["id"] in res.output
    res = runner.invoke(app, ["query", "-p", path, "-n", "10", "--strategy", "random",
                              "--relabel", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    q = json.loads(res.output)
    assert q["kinds"].count("relabel") == 3 and len(q["relabel"]) == 3
    res = runner.invoke(app, ["query", "-p", path, "-n", "10", "--relabel", "0.3"])
    assert res.exit_code == 0 and "3 relabel" in " ".join(res.output.split())
    res = runner.invoke(app, ["query", "-p", path, "-n", "10", "--relabel", "2"])
    assert res.exit_code == 2
