import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from longtail.errors import InputError
from longtail.evaluation import evaluate_predictions


def test_point_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 6, 400))
    out = evaluate_predictions(y_true, y_pred, n_boot=0)
    assert out["accuracy"]["value"] == pytest.approx(np.mean(y_true == y_pred))
    assert out["macro_f1"]["value"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    recalls = recall_score(y_true, y_pred, average=None, labels=np.arange(5))
    assert out["worst_class_recall"]["value"] == pytest.approx(recalls.min())
    precisions = precision_score(y_true, y_pred, average=None, labels=np.arange(5))
    for k in range(5):
        assert out["per_class"][str(k)]["precision"] == pytest.approx(precisions[k])
        assert out["per_class"][str(k)]["recall"] == pytest.approx(recalls[k])
        assert out["per_class"][str(k)]["support"] == int(np.sum(y_true == k))
    # class 5 is predicted but never true: recall undefined, precision 0
    assert out["per_class"]["5"]["recall"] is None
    assert out["per_class"]["5"]["precision"] == 0.0


def test_bootstrap_interval_covers_known_accuracy():
    # Many eval sets drawn from a model whose true accuracy is 0.8: the 95%
    # interval should cover 0.8 in about 95% of them.
    rng = np.random.default_rng(0)
    covered = 0
    trials = 100
    for t in range(trials):
        y_true = rng.integers(0, 4, 300)
        right = rng.random(300) < 0.8
        y_pred = np.where(right, y_true, (y_true + 1) % 4)
        acc = evaluate_predictions(y_true, y_pred, n_boot=400, seed=t)["accuracy"]
        assert acc["lo"] <= acc["value"] <= acc["hi"]
        covered += acc["lo"] <= 0.8 <= acc["hi"]
    assert 0.88 <= covered / trials <= 1.0


def test_interval_width_matches_binomial():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 2000)
    y_pred = np.where(rng.random(2000) < 0.9, y_true, (y_true + 1) % 3)
    acc = evaluate_predictions(y_true, y_pred, n_boot=2000)["accuracy"]
    p = acc["value"]
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / 2000)
    assert acc["hi"] - acc["lo"] == pytest.approx(expected, rel=0.15)


def test_string_labels_unknown_prediction_and_json():
    y_true = ["cat", "dog", "dog", "bird"]
    y_pred = ["cat", "dog", "fish", "bird"]
    out = evaluate_predictions(y_true, y_pred, classes=["bird", "cat", "dog"], n_boot=50)
    assert out["accuracy"]["value"] == 0.75
    assert out["per_class"]["dog"]["recall"] == 0.5
    assert set(out["per_class"]) == {"bird", "cat", "dog"}
    json.dumps(out, allow_nan=False)


def test_deterministic_given_seed():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 100)
    p = rng.integers(0, 3, 100)
    assert evaluate_predictions(y, p, seed=7) == evaluate_predictions(y, p, seed=7)


def test_errors_are_user_errors():
    with pytest.raises(InputError):
        evaluate_predictions([], [])
    with pytest.raises(InputError):
        evaluate_predictions([1, 2], [1])
    with pytest.raises(InputError, match="not in `classes`"):
        evaluate_predictions([1, 3], [1, 1], classes=[1, 2])
