import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.ensemble import RandomForestClassifier

from longtail.errors import InputError
from longtail.learners import (
    LinearHead,
    bootstrap_committee,
    committee_probs,
    is_learner,
    make_learner,
)


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=300, centers=4, n_features=6, random_state=4)


def test_bootstrap_committee_is_seeded_and_shaped(blobs):
    X, y = blobs
    first = bootstrap_committee(LinearHead, X, y, m=4, rng=np.random.default_rng(0))
    again = bootstrap_committee(LinearHead, X, y, m=4, rng=np.random.default_rng(0))
    assert len(first) == 4 and all(isinstance(m, LinearHead) for m in first)
    probs = committee_probs(first, X[:50], classes=[0, 1, 2, 3])
    assert probs.shape == (4, 50, 4)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    np.testing.assert_array_equal(probs, committee_probs(again, X[:50], classes=[0, 1, 2, 3]))
    # Members differ: they saw different resamples.
    assert not np.allclose(probs[0], probs[1])


def test_committee_probs_aligns_members_that_missed_a_class(blobs):
    X, y = blobs
    full = LinearHead().fit(X, y)
    partial = LinearHead().fit(X[y != 2], y[y != 2])  # never saw class 2
    probs = committee_probs([full, partial], X[:20], classes=[3, 2, 1, 0])
    assert probs.shape == (2, 20, 4)
    np.testing.assert_array_equal(probs[1][:, 1], 0.0)  # class 2 is column 1
    np.testing.assert_allclose(probs[0][:, ::-1], full.predict_proba(X[:20]))
    np.testing.assert_allclose(probs[1][:, [3, 2, 0]], partial.predict_proba(X[:20]))
    union = committee_probs([partial, partial], X[:5])  # default: union of classes
    assert union.shape == (2, 5, 3)
    with pytest.raises(ValueError, match="not in classes"):
        committee_probs([full], X[:5], classes=[0, 1])


def test_committee_with_sklearn_members_by_name(blobs):
    X, y = blobs
    members = bootstrap_committee("sklearn.naive_bayes.GaussianNB", X, y, m=3, rng=1)
    assert committee_probs(members, X).shape == (3, 300, 4)


def test_make_learner_default_and_params():
    head = make_learner()
    assert isinstance(head, LinearHead) and head.C == 10.0 and head.warm_start
    assert make_learner("linear", C=1.0).C == 1.0


def test_make_learner_dotted_sklearn_path(blobs):
    X, y = blobs
    forest = make_learner("sklearn.ensemble.RandomForestClassifier", n_estimators=10,
                          random_state=0)
    assert isinstance(forest, RandomForestClassifier) and is_learner(forest)
    assert forest.fit(X, y).predict_proba(X).shape == (300, 4)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("ridge", {}, "valid learners: cnn, linear, mlp"),
        ("sklearn.ensemble.NoSuchForest", {}, "no class"),
        ("nosuchpackage.Model", {}, "cannot import"),
        ("sklearn.svm.SVC", {}, "predict_proba"),
        ("linear", {"gamma": 1}, "gamma"),
    ],
)
def test_make_learner_errors(name, params, match):
    with pytest.raises(InputError, match=match):
        make_learner(name, **params)


def test_bootstrap_committee_errors(blobs):
    X, y = blobs
    with pytest.raises(InputError):
        bootstrap_committee(LinearHead, X[:0], y[:0])
    with pytest.raises(InputError):
        bootstrap_committee(LinearHead, X, y, m=0)


def test_bootstrap_members_see_every_labeled_class():
    # One label of class "rare" among 200: a plain bootstrap misses it in ~37% of
    # members; the stratified one never does, and keeps each class's count.
    seen = []

    class Recorder:
        def fit(self, X, y):
            assert (X[np.asarray(y) == "rare", 0] == 199).all()  # drawn from its own class
            seen.append(np.asarray(y))
            self.classes_ = np.unique(y)
            return self

    y = np.array(["common"] * 199 + ["rare"])
    X = np.arange(200, dtype=np.float64)[:, None]
    bootstrap_committee(Recorder, X, y, m=30, rng=0)
    assert len(seen) == 30
    for ys in seen:
        assert (ys == "rare").sum() == 1 and (ys == "common").sum() == 199
