"""Pseudo-labels: class-balanced, confident, and never stored or counted as labels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.learners import make_learner
from longtail.learners.semi import pseudo_labels
from longtail.project import Project
from tests.conftest import make_pool, snapshot, write_csv, write_pool_csv


def _labeled_project(tmp_path, n: int, seed: int, labels: int) -> Project:
    """A project over a seeded 3-class pool, no eval share, its first `labels` rows labeled."""
    X, y = make_pool(n, d=8, classes=3, seed=seed)
    p = Project.init(tmp_path / "proj", eval_rate=0.0)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
             vector_prefix="v")
    p.import_labels(write_csv(tmp_path / "l.csv", ["id", "label"],
                              [[f"s{i}", y[i]] for i in range(labels)]))
    return p


def test_self_training_is_class_balanced_and_mostly_right():
    X, y = make_pool(600, d=8, classes=3, seed=5)
    lab = np.r_[0:30]
    model = make_learner("linear").fit(X[lab], y[lab])
    pl = pseudo_labels("self-training", predict_proba=model.predict_proba,
                       classes=model.classes_, X_lab=X[lab], y_lab=y[lab], X_unlab=X[30:],
                       ratio=2.0)
    counts = {c: int(np.sum(y[lab] == c)) for c in model.classes_}
    for c in model.classes_:  # never more than ratio x the class's human labels
        assert np.sum(pl.labels == c) <= 2 * counts[c]
    assert len(pl) > 0.9 * 2 * 30
    assert np.mean(pl.labels == y[30:][pl.positions]) > 0.95  # the confident ones are right


def test_propagation_follows_the_clusters():
    X, y = make_pool(500, d=8, classes=4, seed=6)
    lab = np.r_[0:20]
    pl = pseudo_labels("propagation", predict_proba=None, classes=np.unique(y[lab]),
                       X_lab=X[lab], y_lab=y[lab], X_unlab=X[20:], ratio=3.0)
    assert len(pl) > 30 and np.mean(pl.labels == y[20:][pl.positions]) > 0.9


def test_unknown_method_is_refused():
    with pytest.raises(InputError, match="self-training"):
        pseudo_labels("magic", predict_proba=None, classes=np.array(["a"]),
                      X_lab=np.zeros((1, 2)), y_lab=np.array(["a"]), X_unlab=np.zeros((1, 2)))


def test_train_with_pseudo_labels_counts_and_stores_only_human_labels(tmp_path):
    p = _labeled_project(tmp_path, n=400, seed=7, labels=24)
    out = subprocess.run([sys.executable, "-m", "longtail.cli", "settings", "-p",
                          str(p.store.root), "pseudo_labels", "self-training", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["new"] == "self-training"
    before_labels = p.status().annotations
    r = p.train()
    assert r.labels == 24 and r.pseudo_labels["method"] == "self-training"
    assert 0 < r.pseudo_labels["n"] <= 24  # ratio 1: at most the human labels per class
    assert p.status().annotations == before_labels  # nothing written as a label
    assert p.status().labeled_pool == 24


def test_settings_refuses_bad_values_and_changes_nothing(tmp_path):
    p = Project.init(tmp_path / "proj")
    before = snapshot(p, ledger=False)
    for args in (["pseudo_labels", "magic"], ["pseudo_ratio", "-1"], ["pseudo_weight", "2"],
                 ["hashing", "1"],
                 ["nope", "1"]):
        r = subprocess.run([sys.executable, "-m", "longtail.cli", "settings", "-p",
                            str(p.store.root), *args], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
    assert snapshot(p, ledger=False) == before


def test_agreement_keeps_only_rows_where_model_and_spreading_agree():
    X, y = make_pool(500, d=8, classes=4, seed=8)
    lab = np.r_[0:40]
    classes = np.unique(y[lab])
    wrong = np.array([c == classes[0] for c in y[40:]])  # the model errs on a class

    def proba(Xu):  # confident and right, except class 0 rows: confidently class 1
        p = np.zeros((len(Xu), len(classes)))
        truth = np.searchsorted(classes, y[40:])
        p[np.arange(len(Xu)), np.where(wrong, 1, truth)] = 0.99
        return p + 0.0025

    plain = pseudo_labels("self-training", predict_proba=proba, classes=classes,
                          X_lab=X[lab], y_lab=y[lab], X_unlab=X[40:], ratio=3.0)
    both = pseudo_labels("agreement", predict_proba=proba, classes=classes,
                         X_lab=X[lab], y_lab=y[lab], X_unlab=X[40:], ratio=3.0)
    assert np.mean(plain.labels == y[40:][plain.positions]) < 0.85  # the mistakes get in
    assert len(both) > 30 and np.mean(both.labels == y[40:][both.positions]) > 0.95
    assert both.method == "agreement"


def test_weighted_pseudo_labels_pull_the_torch_learner_less():
    """A pseudo-label's weight scales its pull; weight-0 rows, however wrong, change
    nothing a human label decides (and never judge early stopping)."""
    X, y = make_pool(600, d=8, classes=3, seed=9)
    lab, bad = np.r_[0:60], np.r_[60:400]
    flipped = np.roll(np.unique(y), 1)[np.searchsorted(np.unique(y), y[bad])]
    Xf, yf = np.concatenate([X[lab], X[bad]]), np.concatenate([y[lab], flipped])
    test = np.r_[400:600]

    def acc(weight):
        w = np.concatenate([np.ones(len(lab)), np.full(len(bad), weight)])
        m = make_learner("mlp", hidden=32, epochs=60, seed=0).fit(Xf, yf, sample_weight=w)
        return float(np.mean(m.predict(X[test]) == y[test]))

    alone = float(np.mean(make_learner("mlp", hidden=32, epochs=60, seed=0)
                          .fit(X[lab], y[lab]).predict(X[test]) == y[test]))
    assert acc(1.0) < 0.5 < alone  # wrong pseudo-labels at full weight take over
    assert acc(0.0) > alone - 0.05
    with pytest.raises(InputError, match="sample_weight"):
        make_learner("mlp").fit(X[lab], y[lab], sample_weight=np.ones(3))


def test_train_weighs_pseudo_labels_for_a_torch_learner(tmp_path):
    p = _labeled_project(tmp_path, n=300, seed=10, labels=30)
    for key, value in (("learner", "mlp"), ("learner_params", '{"epochs": 20}'),
                       ("pseudo_labels", "agreement"), ("pseudo_weight", "0.5")):
        out = subprocess.run([sys.executable, "-m", "longtail.cli", "settings", "-p",
                              str(p.store.root), key, value], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    r = p.train()
    assert r.pseudo_labels["method"] == "agreement" and r.pseudo_labels["weight"] == 0.5
    assert 0 < r.pseudo_labels["n"] <= 30 and r.labels == 30
    assert p.status().labeled_pool == 30
