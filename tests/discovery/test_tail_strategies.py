"""`rare` mines around the few labeled rows of a rare class; `novelty` finds what is
unlike anything labeled; `rare` is an arm of `auto` when a class is under its share."""

from __future__ import annotations

import numpy as np

from longtail.strategies import select
from longtail.strategies.arms import ARMS, Situation
from longtail.strategies.tail import rare_classes

from .conftest import make_tail_pool


def _setup(seed: int = 0):
    X, y, _ = make_tail_pool(n=1200, seed=seed)
    rng = np.random.default_rng(seed)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 30, replace=False)
                              for c in "abc"] + [np.flatnonzero(y == "d")[:2]])
    cand = np.setdiff1d(np.arange(len(y)), labeled)
    # a model that knows d a little: probability of d rises along d's axis
    classes = np.array(["a", "b", "c", "d"])
    logits = X[:, :4] * 0.8
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    return X, y, labeled, cand, classes, P


def test_rare_picks_the_rare_class_far_above_its_pool_share():
    X, y, labeled, cand, classes, P = _setup()
    sel = select("rare", 20, cand, rng=np.random.default_rng(0), vectors=X, probs=P[cand],
                 classes=classes, labeled_rows=labeled, labeled_y=y[labeled])
    got = y[sel.rows]
    assert len(sel.rows) == 20 and len(set(sel.rows.tolist())) == 20
    assert np.mean(got == "d") >= 0.8  # the pool has ~8% d
    assert sel.log["rare_classes"][0]["class"] == "d"
    margin = select("margin", 20, cand, rng=np.random.default_rng(0), vectors=X, probs=P[cand],
                    classes=classes, labeled_rows=labeled, labeled_y=y[labeled])
    assert np.mean(got == "d") > 2 * np.mean(y[margin.rows] == "d")


def test_rare_is_an_auto_arm_only_while_a_class_is_under_its_share():
    X, y, labeled, cand, classes, P = _setup()
    from longtail.strategies._base import Context

    # the pool's long-tail guard is tested in tests/strategies/test_rare_guard.py; this
    # 4-class pool (d at 8%) is taken as long-tailed here
    ctx = Context(k=10, candidates=cand, rng=np.random.default_rng(0), vectors=None,
                  probs=P[cand], classes=classes, labeled_rows=labeled, labeled_y=y[labeled],
                  params={"tail_imbalance": 1.0})
    assert [c for c, _ in rare_classes(ctx)] == ["d"]
    s = Situation(phase="informative", labels_per_class=23, large=False, ctx=ctx)
    assert not ARMS["rare"].allowed(s)  # no vectors passed
    ctx.vectors = X
    assert ARMS["rare"].allowed(s)
    even = np.concatenate([labeled[:90], np.flatnonzero(y == "d")[:30]])
    ctx.labeled_rows, ctx.labeled_y = even, y[even]
    assert rare_classes(ctx) == [] and not ARMS["rare"].allowed(s)


def test_novelty_finds_the_unlabeled_class():
    X, y, labeled, cand, classes, P = _setup()
    no_d = labeled[y[labeled] != "d"]
    sel = select("novelty", 30, cand, rng=np.random.default_rng(0), vectors=X,
                 labeled_rows=no_d, labeled_y=y[no_d])
    assert np.mean(y[sel.rows] == "d") >= 0.8
