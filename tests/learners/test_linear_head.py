import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_classification
from sklearn.linear_model import LogisticRegression

import longtail.learners.linear as linear
from longtail.errors import InputError
from longtail.learners import LinearHead


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=3_000, n_features=24, n_informative=12, n_redundant=4, n_classes=6,
        n_clusters_per_class=1, class_sep=1.2, random_state=7,
    )
    return X[:2_400], y[:2_400], X[2_400:], y[2_400:]


def _growing_rounds(y, sizes):
    """Row orders where the first rounds see only some classes, as in a cold start."""
    late = np.isin(y, [4, 5])
    order = np.concatenate([np.flatnonzero(~late)[:150], np.flatnonzero(late),
                            np.flatnonzero(~late)[150:]])
    order[150:] = np.random.default_rng(0).permutation(order[150:])
    return [order[:n] for n in sizes]


def test_warm_start_matches_cold_accuracy_with_fewer_iterations(data):
    X, y, Xt, yt = data
    sizes = [150, 300, 450, 600, 800, 1_000, 1_200, 1_400, 1_600, 1_800, 2_000, 2_200, 2_400]
    warm = LinearHead()
    warm_iterations, cold_iterations = [], []
    for rows in _growing_rounds(y, sizes):
        warm.fit(X[rows], y[rows])
        cold = LinearHead(warm_start=False).fit(X[rows], y[rows])
        np.testing.assert_array_equal(warm.classes_, cold.classes_)
        warm_accuracy = np.mean(warm.predict(Xt) == yt)
        cold_accuracy = np.mean(cold.predict(Xt) == yt)
        assert abs(warm_accuracy - cold_accuracy) <= 0.01
        warm_iterations.append(warm.n_iter_)
        cold_iterations.append(cold.n_iter_)
    assert warm.classes_.tolist() == [0, 1, 2, 3, 4, 5]
    assert sum(warm_iterations) < sum(cold_iterations)
    # Once rounds add a small share of the labels, the previous model is close.
    assert sum(warm_iterations[-6:]) < 0.8 * sum(cold_iterations[-6:])
    assert warm.fit_seconds_ > 0


def test_classes_grow_and_vanish_between_rounds():
    X, y = make_blobs(n_samples=600, centers=4, n_features=8, random_state=1)
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    head = LinearHead()
    first = np.isin(labels, ["bee", "dog"])
    head.fit(X[first], labels[first])  # binary
    assert head.classes_.tolist() == ["bee", "dog"] and head.coef_.shape == (2, 8)
    head.fit(X, labels)  # two new classes, one of them sorts first
    assert head.classes_.tolist() == ["ant", "bee", "cat", "dog"]
    probs = head.predict_proba(X)
    assert probs.shape == (600, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.mean(head.predict(X) == labels) > 0.95
    keep = labels != "bee"  # relabeling can make a class vanish
    head.fit(X[keep], labels[keep])
    assert head.classes_.tolist() == ["ant", "cat", "dog"]
    assert np.mean(head.predict(X[keep]) == labels[keep]) > 0.95


def test_warm_start_reuses_rows_by_class_name():
    X, y = make_blobs(n_samples=400, centers=3, n_features=5, random_state=2)
    head = LinearHead().fit(X[y > 0], y[y > 0])
    start = head._warm_init(np.array([0, 1, 2]), 5)
    assert start is not None
    coef, intercept = start
    np.testing.assert_array_equal(coef[0], 0)  # the new class starts from zero
    np.testing.assert_allclose(coef[1:], head.coef_)  # binary model is already centred
    assert head._warm_init(np.array([0, 1, 2]), 6) is None  # new dimension: cold


@pytest.mark.parametrize("n_classes", [2, 5])
def test_probabilities_equal_sklearn(n_classes):
    X, y = make_classification(n_samples=500, n_features=10, n_informative=6,
                               n_classes=n_classes, random_state=3)
    ours = LinearHead(warm_start=False).fit(X, y)
    theirs = LogisticRegression(C=10.0, max_iter=300).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)


def test_single_class_predicts_ones_then_learns_a_second():
    X = np.random.default_rng(0).normal(size=(20, 4))
    head = LinearHead().fit(X, ["yes"] * 20)
    probs = head.predict_proba(X[:3])
    assert probs.shape == (3, 1) and np.all(probs == 1.0)
    assert head.predict(X[:2]).tolist() == ["yes", "yes"]
    y = np.where(X[:, 0] > 0, "yes", "no")
    head.fit(X, y)
    assert head.classes_.tolist() == ["no", "yes"]
    assert head.predict_proba(X).shape == (20, 2)


def test_bad_input_is_input_error():
    with pytest.raises(InputError, match="no labeled samples"):
        LinearHead().fit(np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(InputError, match="y has shape"):
        LinearHead().fit(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(InputError, match="not trained"):
        LinearHead().predict_proba(np.zeros((1, 4)))
    with pytest.raises(InputError, match="C must be"):
        LinearHead(C=0).fit(np.zeros((2, 1)), [0, 1])
    head = LinearHead().fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(InputError, match=r"shape \(n, 4\)"):
        head.predict_proba(np.zeros((2, 3)))


def test_predict_proba_streams_chunks_and_keeps_float32(data, monkeypatch):
    X, y, Xt, _ = data
    head = LinearHead().fit(X, y)
    whole = head.predict_proba(Xt)
    monkeypatch.setattr(linear, "_CHUNK_ROWS", 7)
    np.testing.assert_allclose(head.predict_proba(Xt), whole, atol=1e-12)
    probs32 = head.predict_proba(Xt.astype(np.float32))
    assert probs32.dtype == np.float32
    np.testing.assert_allclose(probs32, whole, atol=1e-4)


@pytest.mark.parametrize("labels", [None, np.array(["b", "a", "c", "d", "e", "f"])])
def test_state_dict_round_trip_predicts_identically(data, tmp_path, labels):
    X, y, Xt, _ = data
    y = y if labels is None else labels[y]
    head = LinearHead(C=3.0).fit(X, y)
    state = head.state_dict()
    (tmp_path / "meta.json").write_text(json.dumps(state["meta"]))
    np.savez(tmp_path / "arrays.npz", **state["arrays"])
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as arrays:
        loaded = LinearHead.from_state_dict({
            "meta": json.loads((tmp_path / "meta.json").read_text()),
            "arrays": dict(arrays),
        })
    assert loaded.get_params() == head.get_params()
    np.testing.assert_array_equal(loaded.classes_, head.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(Xt), head.predict_proba(Xt))
    # A loaded model warm-starts the next round.
    loaded.fit(X, y)
    assert loaded.n_iter_ < LinearHead(C=3.0, warm_start=False).fit(X, y).n_iter_


def test_state_dict_of_single_class_model():
    head = LinearHead().fit(np.ones((3, 2)), [7, 7, 7])
    loaded = LinearHead.from_state_dict(head.state_dict())
    assert loaded.predict_proba(np.zeros((2, 2))).tolist() == [[1.0], [1.0]]
