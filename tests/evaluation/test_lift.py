import numpy as np
import pytest

from longtail.errors import InputError
from longtail.evaluation import Lift, cumulative_lift, round_lift, verdict


def fit_predict(X, y, X_eval):
    """A 1-D threshold learner: the boundary sits midway between the two classes' closest points."""
    x = X[:, 0]
    below = x[y == 0].max() if (y == 0).any() else -np.inf
    above = x[y == 1].min() if (y == 1).any() else np.inf
    if np.isinf(below) or np.isinf(above):
        threshold = above if np.isinf(below) else below
    else:
        threshold = (below + above) / 2
    return (X_eval[:, 0] > threshold).astype(int)


BOUNDARY = 0.1


def make_pool(rng, n):
    """Points on [-1, 1]; class 1 right of the boundary."""
    X = rng.uniform(-1, 1, size=(n, 1))
    return X, (X[:, 0] > BOUNDARY).astype(int)


def near_boundary(X, k):
    return np.argsort(np.abs(X[:, 0] - BOUNDARY))[:k]


def test_positive_lift_when_selection_is_informative():
    rng = np.random.default_rng(0)
    X_pool, y_pool = make_pool(rng, 4000)
    X_eval, y_eval = make_pool(rng, 2000)
    # a few earlier labels, far from the boundary
    far = np.flatnonzero(np.abs(X_pool[:, 0] - BOUNDARY) > 0.5)
    prev = rng.choice(far, 6, replace=False)
    sel = near_boundary(X_pool, 60)
    ctrl = rng.choice(len(X_pool), 20, replace=False)
    lift = round_lift(
        fit_predict, X_pool[prev], y_pool[prev], X_pool[sel], y_pool[sel],
        X_pool[ctrl], y_pool[ctrl], X_eval, y_eval, np.random.default_rng(1), n_repeats=4,
    )
    assert lift.n_labels == 20
    assert lift.lo > 0, lift
    assert lift.acc_selected > lift.acc_control
    assert verdict(lift).startswith("selection is beating random by")


def test_no_lift_when_selection_is_random():
    rng = np.random.default_rng(2)
    X_pool, y_pool = make_pool(rng, 4000)
    X_eval, y_eval = make_pool(rng, 1000)
    rounds = []
    prev = rng.choice(len(X_pool), 10, replace=False)
    for t in range(4):
        sel = rng.choice(len(X_pool), 40, replace=False)
        ctrl = rng.choice(len(X_pool), 10, replace=False)
        rounds.append(round_lift(
            fit_predict, X_pool[prev], y_pool[prev], X_pool[sel], y_pool[sel],
            X_pool[ctrl], y_pool[ctrl], X_eval, y_eval, np.random.default_rng(t), n_repeats=3,
        ))
        prev = np.concatenate([prev, sel])
    for r in rounds:
        assert r.lo <= 0 <= r.hi
    total = cumulative_lift(rounds)
    assert total.n_rounds == 4
    assert total.lo <= 0 <= total.hi
    assert total.se <= min(r.se for r in rounds)
    assert verdict(total).startswith("no measurable difference yet: random would do as well")


def test_cumulative_is_precision_weighted():
    a = Lift(0.04, 0.0, 0.08, 0.02, 0.95, 10, 100)
    b = Lift(0.01, -0.01, 0.03, 0.01, 0.95, 10, 100)
    total = cumulative_lift([a, b])
    assert total.lift == pytest.approx((0.04 / 0.0004 + 0.01 / 0.0001) / (1 / 0.0004 + 1 / 0.0001))
    assert total.se == pytest.approx(1 / np.sqrt(1 / 0.0004 + 1 / 0.0001))
    assert total.n_labels == 20


def test_verdict_words():
    assert verdict(Lift(0.031, 0.012, 0.050, 0.01, 0.95, 10, 100)) == (
        "selection is beating random by 3.1 points (95% CI 1.2 to 5.0)"
    )
    assert verdict(Lift(-0.03, -0.05, -0.01, 0.01, 0.95, 10, 100)).startswith(
        "random is beating selection by 3.0 points"
    )


def test_errors():
    X = np.zeros((3, 2))
    y = np.zeros(3, int)
    with pytest.raises(InputError):
        round_lift(fit_predict, None, None, X[:0], y[:0], X, y, X, y, np.random.default_rng(0))
    with pytest.raises(InputError):
        cumulative_lift([])
