"""auto: phases, the bandit, the proxy, and what it logs."""

from __future__ import annotations

import json

import numpy as np

from longtail.strategies import select
from longtail.strategies.auto import arm_statistics

from ._data import blobs

CENTERS = np.random.default_rng(1).normal(0, 10, size=(6, 8))


def _pool(n_per=30):
    X, y = blobs(n_per, CENTERS, 1.0, 0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, y


def _probs(y, labeled, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(6), size=len(y))
    return P


def test_cold_start_uses_coverage_not_random():
    X, y = _pool()
    sel = select("auto", 6, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X)
    assert sel.log["arm"] == "coverage" and sel.log["phase"] == "cold_start"
    assert sorted(y[sel.rows].tolist()) == list(range(6))  # one per cluster
    json.dumps(sel.log)


def _history(arms_gains, n=60, acc=0.5, step=10):
    h = []
    for arm, gain in arms_gains:
        h.append({"arm": arm, "n_labels_before": n, "n_labels_after": n + step,
                  "metric_before": acc, "metric_after": acc + gain})
        n, acc = n + step, acc + gain
    return h


def test_representative_arms_stay_while_they_pay_whatever_the_labels_per_class():
    """No labels-per-class threshold: with 10 labels per class and no evidence, coverage
    is still an arm; it leaves only when measured worse than an informative arm."""
    X, y = _pool(n_per=60)
    labeled = np.arange(0, 360, 6)  # 60 labels: 10 per class
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    probs = _probs(y[cand], labeled)

    def run(history, state=None):
        return select("auto", 10, cand, rng=np.random.default_rng(0), vectors=X, probs=probs,
                      classes=np.arange(6), labeled_rows=labeled, labeled_y=y[labeled],
                      history=history, state=state)

    log = run(None).log
    assert log["phase"] == "transition" and "coverage" in log["allowed_arms"]
    paying = _history([("coverage", 0.05), ("margin_coverage", 0.02)] * 2)
    log = run(paying).log
    assert log["phase"] == "transition" and "coverage" in log["allowed_arms"]
    stopped = _history([("coverage", 0.0), ("margin_coverage", 0.06)] * 3)
    state: dict = {}
    log = run(stopped, state).log
    assert log["phase"] == "informative" and "coverage" not in log["allowed_arms"]
    assert "stopped paying" in log["phase_reason"]
    # the decision sticks (state) even when later evidence is thinner
    log = run(_history([("margin_coverage", 0.01)]), state).log
    assert log["phase"] == "informative"


def test_bandit_follows_measured_gains():
    X, y = _pool(n_per=60)
    labeled = np.arange(0, 360, 24)  # 15 labels, 2.5 per class: the transition
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    probs = _probs(y[cand], labeled)

    def run(history):
        return select("auto", 10, cand, rng=np.random.default_rng(0), vectors=X, probs=probs,
                      classes=np.arange(6), labeled_rows=labeled, labeled_y=y[labeled],
                      history=history)

    def rounds(good, bad):
        h, n, acc = [], 10, 0.3
        for i in range(6):
            arm = good if i % 2 == 0 else bad
            gain = 0.2 if arm == good else 0.0
            h.append({"arm": arm, "n_labels_before": n, "n_labels_after": n + 5,
                      "metric_before": acc, "metric_after": acc + gain})
            n, acc = n + 5, acc + gain
        return h

    assert run(rounds("coverage", "margin_coverage")).log["arm"] == "coverage"
    assert run(rounds("margin_coverage", "coverage")).log["arm"] == "margin_coverage"
    log = run(rounds("coverage", "margin_coverage")).log
    assert log["reward_source"] == "measured"
    assert set(log["arm_stats"]) == {"coverage", "margin_coverage"}


def test_proxy_reward_when_metrics_are_unknown():
    X, y = _pool(n_per=60)
    state: dict = {}
    rng = np.random.default_rng(0)
    labeled = np.arange(0, 360, 12)
    history = []
    for r in range(3):
        cand = np.setdiff1d(np.arange(len(X)), labeled)
        sel = select("auto", 10, cand, rng=rng, vectors=X, probs=_probs(y[cand], labeled, r),
                     classes=np.arange(6), labeled_rows=labeled, labeled_y=y[labeled],
                     history=history, state=state)
        history.append({"arm": sel.log["arm"], "n_labels_before": len(labeled),
                        "n_labels_after": len(labeled) + 10, "metric_before": None,
                        "metric_after": None})
        labeled = np.concatenate([labeled, sel.rows])
    assert sel.log["reward_source"].startswith("proxy")


def test_arm_statistics_discount_old_rounds():
    stats = arm_statistics([("a", 1.0), ("a", 0.0)], discount=0.5)
    assert 0 < stats["a"]["mean"] < 0.5
    assert stats["a"]["plays"] == 2


def test_auto_is_deterministic_per_seed():
    X, y = _pool()
    cand = np.arange(len(X))
    a = select("auto", 5, cand, rng=np.random.default_rng(3), vectors=X, state={})
    b = select("auto", 5, cand, rng=np.random.default_rng(3), vectors=X, state={})
    assert np.array_equal(a.rows, b.rows)


def test_large_pool_builds_every_arms_index_in_the_first_round_only():
    X, y = _pool(n_per=60)
    rng = np.random.default_rng(0)
    state: dict = {}
    labeled = rng.choice(len(X), 60, replace=False)
    built = []
    for _ in range(3):
        cand = np.setdiff1d(np.arange(len(X)), labeled)
        sel = select("auto", 10, cand, rng=rng, vectors=X, probs=_probs(y[cand], labeled),
                     classes=np.arange(6), labeled_rows=labeled, labeled_y=y[labeled],
                     state=state, params={"graph_rows": 100})  # "large": pool > graph sample
        assert sel.log["arm"] in ("cluster_margin", "margin_coverage", "coverage")
        assert sel.log["preferred_arm"] == "cluster_margin"  # leads on large pools
        built.append(sel.log.get("indexes_built", []))
        labeled = np.concatenate([labeled, sel.rows])
    assert "graph" in built[0] and any(b.startswith("pool_") for b in built[0])
    assert built[1:] == [[], []]


def test_plain_margin_is_an_arm_only_from_margin_from_labels_per_class():
    from longtail.strategies.auto import MARGIN_FROM

    X, y = _pool(n_per=60)
    rng = np.random.default_rng(0)
    allowed = {}
    for per_class in (MARGIN_FROM / 2, MARGIN_FROM):
        n_lab = int(per_class * 6)
        labeled = rng.choice(len(X), n_lab, replace=False)
        cand = np.setdiff1d(np.arange(len(X)), labeled)
        sel = select("auto", 10, cand, rng=rng, vectors=X, probs=_probs(y[cand], labeled),
                     classes=np.arange(6), labeled_rows=labeled, labeled_y=y[labeled])
        allowed[per_class] = sel.log["allowed_arms"]
    assert "margin" not in allowed[MARGIN_FROM / 2]
    assert "margin" in allowed[MARGIN_FROM]


def test_an_arm_registered_through_the_interface_is_played_and_rewarded():
    """A helper adds an arm with one register_arm call: auto allows it where its
    predicate says, tries it, and keeps it when its measured reward is best."""
    from longtail.strategies.arms import ARMS, register_arm
    from longtail.strategies.informative import select_random

    X, y = _pool(n_per=60)
    labeled = np.arange(0, 360, 6)  # 60 labels: 10 per class, the informative phase
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    probs = _probs(y[cand], labeled)
    register_arm("test_costly", select_random, family="informative", rank=0,
                 allowed=lambda s: s.has("costs"), doc="test arm")
    try:
        def run(history=None, costs=None):
            return select("auto", 10, cand, rng=np.random.default_rng(0), vectors=X,
                          probs=probs, classes=np.arange(6), labeled_rows=labeled,
                          labeled_y=y[labeled], history=history, costs=costs)

        assert "test_costly" not in run().log["allowed_arms"]  # no costs: not allowed
        costs = np.ones(len(cand))
        log = run(costs=costs).log
        assert log["allowed_arms"][0] == "test_costly" and log["arm"] == "test_costly"
        h, n, acc = [], 60, 0.5
        for i in range(6):
            arm = ("test_costly", "margin_coverage", "margin")[i % 3]
            gain = 0.0 if arm == "test_costly" else 0.1
            h.append({"arm": arm, "n_labels_before": n, "n_labels_after": n + 10,
                      "metric_before": acc, "metric_after": acc + gain})
            n, acc = n + 10, acc + gain
        log = run(history=h, costs=costs).log
        assert log["arm"] != "test_costly" and "test_costly" in log["arm_stats"]
    finally:
        ARMS.pop("test_costly", None)
