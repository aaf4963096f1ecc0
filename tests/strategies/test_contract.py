"""The contract others code against: select(), Selection, STRATEGIES, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longtail.errors import EmptyPoolError, InputError
from longtail.strategies import (
    STRATEGIES,
    ArrayVectors,
    Selection,
    entropy,
    least_confidence,
    margin,
    select,
)
from longtail.strategies._base import Context
from longtail.strategies.cold import cold_start


def test_scores_rank_the_ambiguous_rows_highest():
    probs = np.array([[0.98, 0.01, 0.01], [0.5, 0.49, 0.01], [0.34, 0.33, 0.33], [0.7, 0.2, 0.1]])
    assert np.argmax(margin(probs)) in (1, 2)
    assert margin(probs)[1] > margin(probs)[3] > margin(probs)[0]
    assert np.argmax(entropy(probs)) == 2
    assert np.argmax(least_confidence(probs)) == 2
    assert np.argmin(margin(probs)) == 0
    assert margin(probs).shape == (4,)


def test_margin_selects_the_ambiguous_rows():
    rng = np.random.default_rng(0)
    n = 200
    probs = np.tile([0.95, 0.05], (n, 1))
    ambiguous = rng.choice(n, 10, replace=False)
    probs[ambiguous] = [0.52, 0.48]
    cand = np.arange(n, dtype=np.int64) + 1000
    sel = select("margin", 10, cand, rng=rng, probs=probs)
    assert isinstance(sel, Selection)
    assert set(sel.rows.tolist()) == set((cand[ambiguous]).tolist())
    assert sel.rows.dtype == np.int64
    assert sel.scores is not None and len(sel.scores) == 10
    json.dumps(sel.log)


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence"])
def test_costs_turn_scores_into_value_per_unit_cost(name):
    probs = np.array([[0.5, 0.5]] * 2 + [[0.9, 0.1]] * 2)
    costs = np.array([100.0, 100.0, 1.0, 1.0])
    sel = select(name, 2, np.arange(4), rng=np.random.default_rng(0), probs=probs, costs=costs)
    assert set(sel.rows.tolist()) == {2, 3}


def test_errors_people_can_act_on():
    rng = np.random.default_rng(0)
    with pytest.raises(EmptyPoolError):
        select("margin", 3, np.array([], dtype=np.int64), rng=rng, probs=np.zeros((0, 2)))
    with pytest.raises(InputError):
        select("margin", 0, np.arange(3), rng=rng, probs=np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="margin"):
        select("no-such-thing", 3, np.arange(3), rng=rng)
    with pytest.raises(InputError, match="shape"):
        select("margin", 1, np.arange(3), rng=rng, probs=np.full((4, 2), 0.5))


def test_registry_entries_say_what_they_need():
    for name, entry in STRATEGIES.items():
        assert entry.needs <= {"probs", "vectors", "committee", "costs"}, name
        assert isinstance(entry.doc, str) and entry.doc and "\n" not in entry.doc, name
    assert STRATEGIES["random"].needs == frozenset()
    assert "probs" in STRATEGIES["margin"].needs
    assert "auto" in STRATEGIES


def test_array_vectors_implements_the_reader_protocol():
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    r = ArrayVectors(X)
    assert (r.n_rows, r.dim) == (10, 2)
    got = r.read(np.array([7, 2]))
    assert got.dtype == np.float32 and np.allclose(got, X[[7, 2]])
    chunks = list(r.iter_chunks(chunk_rows=4))
    assert [len(rows) for rows, _ in chunks] == [4, 4, 2]
    sub = list(r.iter_chunks(np.array([9, 1, 5]), chunk_rows=2))
    assert np.array_equal(np.concatenate([rows for rows, _ in sub]), [9, 1, 5])
    assert np.allclose(np.concatenate([v for _, v in sub]), X[[9, 1, 5]])


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence", "bald",
                                  "cluster_margin", "badge", "margin_coverage", "density",
                                  "combine"])
def test_no_model_yet_falls_back_to_cold_start(name):
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    sel = select(name, 5, np.arange(50), rng=np.random.default_rng(1), vectors=X, probs=None)
    cold = cold_start(Context(k=5, candidates=np.arange(50), rng=np.random.default_rng(1),
                              vectors=ArrayVectors(X)))
    assert sel.rows.tolist() == cold.rows.tolist()  # the cold start's pick, not a draw
    assert sel.log["strategy"] == name and sel.log["cold_start"] == "coverage"
    assert "no probs" in sel.log["fallback"]


def test_auto_is_the_default_and_logs_its_arm():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=30)
    X = rng.standard_normal((30, 4)).astype(np.float32)
    sel = select(k=5, candidates=np.arange(30), rng=rng, probs=probs, vectors=X)
    assert isinstance(sel.log["arm"], str)
    json.dumps(sel.log)
