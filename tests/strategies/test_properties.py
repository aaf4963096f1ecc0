"""Property tests that hold for every registered strategy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longtail.errors import EmptyPoolError
from longtail.strategies import STRATEGIES, select

NAMES = sorted(STRATEGIES)


def _inputs(seed: int, n_pool: int, n_cand: int, n_classes: int, n_labeled: int, dim: int = 5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_pool, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    perm = rng.permutation(n_pool)
    labeled = perm[:n_labeled]
    cand = np.sort(perm[n_labeled : n_labeled + n_cand]).astype(np.int64)
    probs = rng.dirichlet(np.ones(n_classes), size=len(cand))
    committee = rng.dirichlet(np.ones(n_classes), size=(3, len(cand)))
    labeled_y = rng.integers(0, n_classes, size=len(labeled))
    return X, cand, labeled, labeled_y, probs, committee


def _call(name, k, seed, X, cand, labeled, labeled_y, probs, committee, state=None):
    return select(
        name,
        k,
        cand,
        rng=np.random.default_rng(seed),
        vectors=X,
        probs=probs,
        classes=np.arange(probs.shape[1]) if probs is not None else None,
        labeled_rows=labeled,
        labeled_y=labeled_y,
        committee_probs=committee,
        state=state,
    )


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    n_cand=st.integers(1, 40),
    n_classes=st.integers(1, 4),
    n_labeled=st.integers(0, 10),
    k=st.integers(1, 50),
    with_model=st.booleans(),
)
def test_selection_is_a_unique_subset_of_candidates_of_the_right_size(
    name, seed, n_cand, n_classes, n_labeled, k, with_model
):
    X, cand, labeled, labeled_y, probs, committee = _inputs(
        seed, n_cand + n_labeled + 5, n_cand, n_classes, n_labeled
    )
    if not with_model:
        probs, committee = None, None
    sel = _call(name, k, seed, X, cand, labeled, labeled_y, probs, committee)
    rows = sel.rows
    assert rows.dtype == np.int64
    assert len(rows) == min(k, len(cand))
    assert len(np.unique(rows)) == len(rows)
    assert np.isin(rows, cand).all()
    assert not np.isin(rows, labeled).any()
    if sel.scores is not None:
        assert len(sel.scores) == len(rows)
    json.dumps(sel.log)
    again = _call(name, k, seed, X, cand, labeled, labeled_y, probs, committee)
    assert np.array_equal(rows, again.rows), "same seed, same selection"


@pytest.mark.parametrize("name", NAMES)
def test_empty_candidates_raise_empty_pool(name):
    X, cand, labeled, labeled_y, probs, committee = _inputs(0, 20, 10, 3, 2)
    with pytest.raises(EmptyPoolError):
        _call(
            name, 3, 0, X, np.array([], dtype=np.int64), labeled, labeled_y,
            probs[:0], committee[:, :0],
        )
