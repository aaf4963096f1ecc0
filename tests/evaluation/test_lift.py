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


# -- arms whose true difference is known: clean labels, label noise, identical draws --

CENTRES = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])


def blobs(rng, n):
    """Three Gaussian classes in 2-d; a nearest-centroid model gets about 90% right."""
    y = rng.integers(0, 3, n)
    return CENTRES[y] + rng.normal(size=(n, 2)), y


def nearest_centroid(X, y, X_eval):
    classes = np.unique(y)
    centroids = np.stack([X[y == c].mean(axis=0) for c in classes])
    return classes[((X_eval[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)]


def two_arms(seed, n_sel, n_ctrl, n_eval=600, *, shuffle_ctrl=False, shuffle_sel=False):
    rng = np.random.default_rng(seed)
    (X_sel, y_sel), (X_ctrl, y_ctrl), (X_eval, y_eval) = (
        blobs(rng, n_sel), blobs(rng, n_ctrl), blobs(rng, n_eval))
    if shuffle_sel:
        y_sel = rng.permutation(y_sel)  # labels carry no information
    if shuffle_ctrl:
        y_ctrl = rng.permutation(y_ctrl)
    return round_lift(nearest_centroid, None, None, X_sel, y_sel, X_ctrl, y_ctrl,
                      X_eval, y_eval, np.random.default_rng(seed + 1), n_repeats=3, n_boot=300)


def test_clean_labels_beat_labels_that_are_noise():
    lift = two_arms(0, 40, 40, shuffle_ctrl=True)
    assert lift.acc_selected > 0.8 and lift.acc_control < 0.65, lift
    assert lift.lo > 0, lift
    assert verdict(lift).startswith("selection is beating random by")


def test_noise_labels_in_the_selected_arm_give_a_negative_verdict():
    lift = two_arms(0, 40, 40, shuffle_sel=True)
    assert lift.hi < 0, lift
    assert verdict(lift).startswith("random is beating selection by")


@pytest.mark.parametrize(("n_sel", "n_ctrl"), [(16, 16), (40, 40)])
def test_arms_drawn_alike_are_not_told_apart(n_sel, n_ctrl):
    # Equal slices: the repeats cannot show the training noise (S' is all of S each time),
    # which once gave a "beating" verdict to about half of such pairs.
    lifts = [two_arms(seed, n_sel, n_ctrl) for seed in range(30)]
    inconclusive = [lift for lift in lifts if lift.lo <= 0 <= lift.hi]
    assert len(inconclusive) >= 27, [(round(x.lo, 3), round(x.hi, 3)) for x in lifts]
    assert all(verdict(x).startswith("no measurable difference yet") for x in inconclusive)


def test_interval_width_matches_the_spread_of_lifts_over_fresh_draws():
    # |S| = 3|R|: the repeats measure the training noise at the right size, so the
    # standard error should match how much the lift really varies between draws.
    lifts = [two_arms(seed, 120, 40) for seed in range(40)]
    spread = np.std([x.lift for x in lifts], ddof=1)
    mean_se = np.mean([x.se for x in lifts])
    assert 0.7 * spread < mean_se < 1.6 * spread, (spread, mean_se)
    assert sum(x.lo <= 0 <= x.hi for x in lifts) >= 35


def test_rounds_too_small_alone_add_up_to_a_verdict():
    weak = Lift(0.02, -0.01, 0.05, 0.015, 0.95, 10, 400)  # each round inconclusive
    assert verdict(weak).startswith("no measurable difference yet")
    total = cumulative_lift([weak] * 4)
    assert total.n_rounds == 4 and total.n_labels == 40
    assert total.lift == pytest.approx(0.02) and total.lo > 0
    assert verdict(total).startswith("selection is beating random by 2.0 points")
    # Rounds that disagree do not add up to a verdict either way.
    against = Lift(-0.02, -0.05, 0.01, 0.015, 0.95, 10, 400)
    mixed = cumulative_lift([weak, against, weak, against])
    assert mixed.lo < 0 < mixed.hi and mixed.lift == pytest.approx(0.0, abs=1e-12)
    # A precise round outweighs a vague one.
    precise = Lift(0.01, 0.006, 0.014, 0.002, 0.95, 10, 400)
    vague = Lift(0.20, -0.2, 0.6, 0.2, 0.95, 10, 400)
    assert cumulative_lift([precise, vague]).lift < 0.011


def test_verdict_words():
    assert verdict(Lift(0.031, 0.012, 0.050, 0.01, 0.95, 10, 100)) == (
        "selection is beating random by 3.1 points (95% CI 1.2 to 5.0)"
    )
    assert verdict(Lift(-0.03, -0.05, -0.01, 0.01, 0.95, 10, 100)).startswith(
        "random is beating selection by 3.0 points"
    )
    unsure = verdict(Lift(0.004, -0.01, 0.018, 0.007, 0.9, 10, 100))
    assert unsure == ("no measurable difference yet: random would do as well "
                      "(lift 0.4 points, 90% CI -1.0 to 1.8)")


def test_errors():
    X = np.zeros((3, 2))
    y = np.zeros(3, int)
    with pytest.raises(InputError):
        round_lift(fit_predict, None, None, X[:0], y[:0], X, y, X, y, np.random.default_rng(0))
    with pytest.raises(InputError):
        cumulative_lift([])
    with pytest.raises(InputError, match="n_halves"):
        round_lift(fit_predict, None, None, X, y, X, y, X, y, np.random.default_rng(0),
                   n_halves=1)


def _fit_predict_lr(X, y, X_new):
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) == 1:
        return np.full(len(X_new), y[0])
    return LogisticRegression(C=10, max_iter=300).fit(X, y).predict(X_new)


def _long_tail(seed: int):
    """One big easy class and nine rare ones: a uniform sample mostly misses the rare."""
    rng = np.random.default_rng(seed)
    sizes = [1800] + [22] * 9
    centers = rng.normal(size=(10, 6)) * 6
    y = np.concatenate([np.full(s, k) for k, s in enumerate(sizes)])
    X = centers[y] + rng.normal(size=(len(y), 6))
    return X, y


def test_crossfit_lift_sees_a_class_covering_arm_beat_random():
    from longtail.evaluation.lift import crossfit_lift

    X, y = _long_tail(0)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(y))
    eval_rows, pool_rows = order[:1000], order[1000:]
    # The active arm covers every class (what a good strategy buys); 40 labels.
    per_class = [pool_rows[y[pool_rows] == k][:4] for k in range(10)]
    active = np.concatenate(per_class)
    lift = crossfit_lift(_fit_predict_lr, X[active], y[active], X[eval_rows], y[eval_rows], rng)
    assert lift.n_labels == len(active)
    assert lift.lo > 0 and verdict(lift).startswith("selection is beating random")


def test_crossfit_lift_sees_noisy_labels_lose_and_equal_arms_tie():
    from longtail.evaluation.lift import crossfit_lift

    X, y = _long_tail(2)
    rng = np.random.default_rng(3)
    order = rng.permutation(len(y))
    eval_rows, pool_rows = order[:1000], order[1000:1200]
    shuffled = rng.permutation(y[pool_rows])
    worse = crossfit_lift(_fit_predict_lr, X[pool_rows], shuffled, X[eval_rows], y[eval_rows], rng)
    assert worse.hi < 0 and verdict(worse).startswith("random is beating selection")
    ties = 0
    for seed in range(5):  # an active arm drawn like the random one: no measurable lift
        r = np.random.default_rng(10 + seed)
        o = r.permutation(len(y))
        same = crossfit_lift(_fit_predict_lr, X[o[1000:1400]], y[o[1000:1400]], X[o[:1000]],
                             y[o[:1000]], r)
        ties += same.lo <= 0 <= same.hi
    assert ties >= 4


def _centroid_proba(X, y, X_new):
    """Nearest-centroid class probabilities (softmax of -distance²/2): fast and calibrated
    enough to be a surrogate."""
    classes = np.unique(y)
    cent = np.stack([X[y == c].mean(0) for c in classes])
    s = -((X_new[:, None, :] - cent[None]) ** 2).sum(2) / 2
    p = np.exp(s - s.max(1, keepdims=True))
    return classes, p / p.sum(1, keepdims=True)


def _centroid_predict(X, y, X_new):
    classes, p = _centroid_proba(X, y, X_new)
    return classes[p.argmax(1)]


def _two_arms(seed: int):
    """Four overlapping classes; the selected arm holds each class's two most typical rows,
    the control arm eight random rows: the truth is the lift over a big population."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(4, 2)) * 2.0
    y = rng.integers(0, 4, 12000)
    X = centers[y] + rng.normal(size=(12000, 2))
    pool, population = np.arange(1000), np.arange(1000, 12000)
    sel = np.concatenate([pool[y[pool] == c][np.argsort(
        ((X[pool[y[pool] == c]] - centers[c]) ** 2).sum(1))[:2]] for c in range(4)])
    ctrl = rng.choice(pool, 8, replace=False)
    while len(np.unique(y[ctrl])) < 4:
        ctrl = rng.choice(pool, 8, replace=False)
    truth = np.mean((_centroid_predict(X[sel], y[sel], X[population]) == y[population])
                    .astype(float)
                    - (_centroid_predict(X[ctrl], y[ctrl], X[population]) == y[population]))
    return X, y, sel, ctrl, population, rng, float(truth)


def test_ppi_lift_covers_the_population_lift_and_is_no_wider_than_the_bootstrap():
    """The verdict on the accuracy's estimator: PPI++ over the eval population (labeled
    eval rows + the split's unlabeled rows) keeps its coverage of the lift over the whole
    population and is tighter than the paired bootstrap on the same labeled rows."""
    X, y, sel, ctrl, population, rng, truth = _two_arms(0)
    hits, widths = {"uniform": [], "ppi": []}, {"uniform": [], "ppi": []}
    for r in range(60):
        lab = rng.choice(population, 400, replace=False)
        rest = np.setdiff1d(population, lab)[:3000]
        for est in hits:
            lift = round_lift(_centroid_predict, None, None, X[sel], y[sel], X[ctrl], y[ctrl],
                              X[lab], y[lab], np.random.default_rng(r), n_repeats=1,
                              n_halves=0, n_boot=300, estimator=est,
                              fit_proba=_centroid_proba, X_pop=X[rest])
            assert lift.estimator == est, lift.note
            hits[est].append(lift.lo <= truth <= lift.hi)
            widths[est].append(lift.hi - lift.lo)
    assert np.mean(hits["ppi"]) >= 0.9, np.mean(hits["ppi"])
    assert np.mean(widths["ppi"]) < np.mean(widths["uniform"]), widths
    assert truth > 0.02  # a real lift, so the test says something about the sign too


def test_ppi_lift_falls_back_to_the_bootstrap_and_says_so_when_the_arms_rarely_differ():
    X, y, sel, _, population, rng, _ = _two_arms(1)
    lab = rng.choice(population, 300, replace=False)
    same = round_lift(_centroid_predict, None, None, X[sel], y[sel], X[sel], y[sel], X[lab],
                      y[lab], rng, n_repeats=1, n_halves=0, estimator="ppi",
                      fit_proba=_centroid_proba, X_pop=X[population[:2000]])
    assert same.estimator == "uniform" and "ppi asked" in same.note
    assert same.lo <= 0 <= same.hi
    with pytest.raises(InputError, match="fit_proba"):
        round_lift(_centroid_predict, None, None, X[sel], y[sel], X[sel], y[sel], X[lab],
                   y[lab], rng, estimator="ppi")


def test_crossfit_lift_on_ppi_ties_equal_arms_as_often_as_the_bootstrap():
    """Two arms drawn alike: PPI's verdict says "no measurable difference" at least as
    often as the bootstrap's on the same draws (the crossfit interval holds eval noise
    only, so neither ties every time), and says which estimator it used."""
    from longtail.evaluation.lift import crossfit_lift

    X, y, _, _, population, _, _ = _two_arms(2)
    ties = {"uniform": 0, "ppi": 0}
    used = set()
    for seed in range(5):
        for est in ties:
            r = np.random.default_rng(20 + seed)
            o = r.permutation(population)
            lift = crossfit_lift(_centroid_predict, X[o[600:640]], y[o[600:640]], X[o[:600]],
                                 y[o[:600]], r, estimator=est, fit_proba=_centroid_proba,
                                 X_pop=X[o[700:3700]])
            assert lift.n_labels == 40
            ties[est] += lift.lo <= 0 <= lift.hi
            if est == "ppi":
                used.add(lift.estimator)
    assert ties["ppi"] >= ties["uniform"] >= 3
    assert "ppi" in used
