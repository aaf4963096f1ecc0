"""`auto` plays the `rare` arm only where the pool is long-tailed: on a balanced pool a
class is often under its share of the labels too (selection shapes the labeled set),
and there the arm's forced try cost labels (Banking77)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from longtail.strategies._base import Context
from longtail.strategies.arms import ARMS, Situation
from longtail.strategies.tail import TAIL_IMBALANCE, class_imbalance, rare_classes

C, D = 10, 16


def _pool(ratio: float, seed: int = 0, n: int = 3000):
    """10 Gaussian classes whose sizes fall ``ratio``-fold (1: balanced)."""
    rng = np.random.default_rng(seed)
    w = np.geomspace(1.0, 1.0 / ratio, C)
    y = rng.choice(C, size=n, p=w / w.sum())
    centres = rng.normal(size=(C, D)) * 2.5
    X = (centres[y] + rng.normal(size=(n, D))).astype(np.float32)
    return X, np.array([f"c{i}" for i in range(C)])[y]


def _context(X, y, seed: int = 0) -> Context:
    """A model trained on a labeled set where class c9 has one label: under its share
    whether or not the pool is long-tailed."""
    rng = np.random.default_rng(seed)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 1 if c == "c9" else 8,
                                         replace=False) for c in np.unique(y)])
    cand = np.setdiff1d(np.arange(len(y)), labeled)
    model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
    return Context(k=20, candidates=cand, rng=rng, vectors=X,
                   probs=model.predict_proba(X[cand]), classes=model.classes_,
                   labeled_rows=labeled, labeled_y=y[labeled])


def _allowed(ctx: Context) -> bool:
    s = Situation(phase="informative", labels_per_class=ctx.n_labeled / C, large=False,
                  ctx=ctx)
    return ARMS["rare"].allowed(s)


def test_rare_arm_is_allowed_on_a_long_tailed_pool_and_not_on_a_balanced_one():
    for seed in range(3):
        balanced = _context(*_pool(1.0, seed), seed)
        tail = _context(*_pool(50.0, seed), seed)
        # the labeled set alone cannot tell them apart: c9 is under its share in both
        assert [c for c, _ in rare_classes(balanced)] == ["c9"]
        assert [c for c, _ in rare_classes(tail)] == ["c9"]
        assert class_imbalance(balanced.probs) < TAIL_IMBALANCE <= class_imbalance(tail.probs)
        assert not _allowed(balanced)
        assert _allowed(tail)


def test_class_imbalance_reads_the_predicted_class_mass():
    flat = np.full((100, 10), 0.1)
    assert class_imbalance(flat) == 1.0
    skew = np.tile(np.geomspace(1.0, 0.02, 10), (50, 1))
    skew /= skew.sum(axis=1, keepdims=True)
    assert class_imbalance(skew) > 20
    assert class_imbalance(None) is None and class_imbalance(np.ones((5, 1))) is None
    # a pool of millions is read on a stride, with the same answer on an even pool
    big = np.tile(skew[:1], (250_000, 1))
    assert abs(class_imbalance(big) - class_imbalance(skew)) < 1e-9


def test_the_threshold_can_be_set_per_call():
    ctx = _context(*_pool(1.0))
    ctx.params = {"tail_imbalance": 1.0}
    assert _allowed(ctx)


def test_auto_leaves_the_representative_arms_at_once_on_a_long_tailed_pool():
    from longtail.strategies import select

    for ratio, phase in ((50.0, "informative"), (1.0, "transition")):
        ctx = _context(*_pool(ratio))
        sel = select("auto", 20, ctx.candidates, rng=np.random.default_rng(0),
                     vectors=ctx.vectors, probs=ctx.probs, classes=ctx.classes,
                     labeled_rows=ctx.labeled_rows, labeled_y=ctx.labeled_y)
        assert sel.log["phase"] == phase
        assert ("long-tailed" in (sel.log["phase_reason"] or "")) == (ratio > 1)
        assert "coverage" not in sel.log["allowed_arms"] or ratio == 1.0
