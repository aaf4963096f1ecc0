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


N_GRID = (5, 10, 20, 50, 100)
P_GRID = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)


def test_proportion_interval_covers_95_percent_exactly_at_small_n():
    # Summed over the binomial, not sampled: at least 94% at every (n, p) of the grid.
    from longtail.evaluation.metrics import interval_coverage

    worst = min(interval_coverage(n, p) for n in N_GRID for p in P_GRID)
    assert worst >= 0.94


def test_wilson_would_fail_the_same_check():
    # The check has teeth: Wilson's interval falls to 91.9% at n = 5, p = 0.9.
    from longtail.evaluation.budget import wilson_halfwidth
    from longtail.evaluation.metrics import interval_coverage

    def wilson(k, n, level):
        k = np.asarray(k, dtype=float)
        z2 = 1.959963984540054 ** 2
        centre = (k + z2 / 2) / (n + z2)
        h = np.array([wilson_halfwidth(x / n, n) for x in k])
        return centre - h, centre + h

    assert interval_coverage(5, 0.9, interval=wilson) == pytest.approx(0.919, abs=0.001)


def test_all_correct_small_eval_set_is_not_a_point():
    # 16 of 16 right: the bootstrap alone printed [1.000, 1.000]; the interval shown
    # must cover an accuracy of 0.9 (Clopper-Pearson: [0.794, 1]).
    y = np.array(["a", "b"] * 8)
    out = evaluate_predictions(y, y)
    acc = out["accuracy"]
    assert acc["hi"] == 1.0 and acc["lo"] == pytest.approx(0.025 ** (1 / 16), abs=1e-9)
    assert acc["lo"] < 0.9
    assert out["interval_method"]["accuracy"] == "clopper-pearson"
    assert out["worst_class_recall"]["lo"] < 0.9  # 8 of 8 in the worst class
    six = evaluate_predictions(y[:6], y[:6])["accuracy"]
    assert six["lo"] < 0.62


def test_proportion_interval_rejects_bad_counts():
    from longtail.evaluation.metrics import proportion_interval

    with pytest.raises(InputError):
        proportion_interval(5, 4)
    lo, hi = proportion_interval(np.array([0, 3]), np.array([10, 3]))
    assert lo[0] == 0.0 and hi[1] == 1.0 and 0 < hi[0] < 1 and 0 < lo[1] < 1
