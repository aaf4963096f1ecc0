"""Strategy state that survives: arrays without pickle, the pool check, the index log."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.strategies import select
from longtail.strategies._pool import Clusters, Graph
from longtail.strategies.state import from_arrays, set_pool, to_arrays

from ._data import blobs

CENTERS = np.random.default_rng(1).normal(0, 10, size=(6, 8))
CLASSES = np.array([f"c{i}" for i in range(6)], dtype=object)  # object, as pandas gives


def _pool(n_per=100):
    X, y = blobs(n_per, CENTERS, 1.0, 0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, y


def _probs(rows, seed):
    return np.random.default_rng([seed, len(rows)]).dirichlet(np.ones(6), size=len(rows))


def _through_npz(state: dict) -> dict:
    """What a later process sees: np.savez, then np.load without pickle."""
    buf = io.BytesIO()
    np.savez(buf, **to_arrays(state))
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        return from_arrays(npz)


def _round(name, X, y, labeled, seed, state, history=None, **params):
    cand = np.setdiff1d(np.arange(len(X)), labeled)
    return select(name, 20, cand, rng=np.random.default_rng(seed), vectors=X,
                  probs=_probs(cand, seed), classes=CLASSES, labeled_rows=labeled,
                  labeled_y=CLASSES[y[labeled]], state=state, history=history,
                  params=params)


def test_graph_clusters_and_auto_statistics_round_trip_through_npz():
    X, y = _pool()
    state: dict = {}
    set_pool(state, "minilm", fingerprint="v1")
    labeled = np.arange(0, len(X), 10)
    history: list[dict] = []
    for r in range(2):  # the second round stores a proxy reward from the first
        sel = _round("auto", X, y, labeled, r, state, history, graph_rows=300)
        history.append({"arm": sel.log["arm"]})
        labeled = np.concatenate([labeled, sel.rows])
    cache, mem = state["longtail.strategies"], state["longtail.auto"]
    assert isinstance(cache["graph"], Graph)
    assert any(isinstance(v, Clusters) for v in cache.values())
    assert mem["proxy_rewards"] and mem["pred_class"].dtype == object
    back = _through_npz(state)
    assert back.keys() == state.keys() and back["longtail.pool"] == state["longtail.pool"]
    g, g2 = cache["graph"], back["longtail.strategies"]["graph"]
    assert isinstance(g2, Graph) and g2.sigma2 == g.sigma2
    for f in ("rows", "nbr", "d2", "seen"):
        a, b = getattr(g, f), getattr(g2, f)
        assert a.dtype == b.dtype and np.array_equal(a, b), f
    for name, cl in cache.items():
        if isinstance(cl, Clusters):
            cl2 = back["longtail.strategies"][name]
            assert isinstance(cl2, Clusters)
            for f in ("centroids", "rows", "labels", "d2"):
                assert np.array_equal(getattr(cl, f), getattr(cl2, f)), (name, f)
    mem2 = back["longtail.auto"]
    assert mem2["proxy_rewards"] == mem["proxy_rewards"]
    assert all(isinstance(p, tuple) for p in mem2["proxy_rewards"])
    assert mem2["pred_class"].dtype == object
    assert mem2["pred_class"].tolist() == mem["pred_class"].tolist()
    assert mem2["n_labeled"] == mem["n_labeled"]


def test_plain_values_keep_their_types():
    state = {"a": np.arange(3, dtype=np.int32), "f": np.float32(2.5), "s": "x", "n": None,
             "l": [1, 2.5, None, True, "y"], "t": (1, "b"), 3: {"deep": {"k": [np.ones(2)]}},
             "e": np.zeros((0, 4)), "u": np.array(["p", "q"])}
    back = _through_npz(state)
    assert list(back) == list(state)
    assert back["a"].dtype == np.int32 and back["a"].tolist() == [0, 1, 2]
    assert isinstance(back["f"], np.float32) and back["f"] == 2.5
    assert back["l"] == [1, 2.5, None, True, "y"] and back["t"] == (1, "b")
    assert np.array_equal(back[3]["deep"]["k"][0], np.ones(2))
    assert back["e"].shape == (0, 4) and back["u"].tolist() == ["p", "q"]
    assert back["s"] == "x" and back["n"] is None


@pytest.mark.parametrize("bad, where", [({"m": {"x": object()}}, "['m']['x']"),
                                        ({"o": np.array([1, "a"], dtype=object)}, "['o']")])
def test_values_that_cannot_be_arrays_are_refused_by_path(bad, where):
    with pytest.raises(InputError, match=f"at {where}".replace("[", r"\[").replace("]", r"\]")):
        to_arrays(bad)


def test_first_serialiser_files_are_still_read():
    legacy = {"__json__": np.array(json.dumps(
        {"longtail.auto": {"pred_rows": {"__array__": "longtail.auto/pred_rows"}, "n_labeled": 4},
         "longtail.strategies": {"dim": 8, "n_rows": 600}})),
        "longtail.auto/pred_rows": np.arange(5)}
    back = from_arrays(legacy)
    assert back["longtail.auto"]["n_labeled"] == 4
    assert back["longtail.auto"]["pred_rows"].tolist() == list(range(5))
    with pytest.raises(InputError, match="not a saved strategy state"):
        from_arrays({"x": np.zeros(1)})


@pytest.mark.parametrize("name, params", [
    ("auto", {"graph_rows": 300}),  # "large": auto builds the graph and the pool clusters
    ("cluster_margin", {}),
    ("coverage", {}),
    ("probcover", {}),
])
def test_next_round_from_a_loaded_state_builds_nothing_and_selects_the_same(name, params):
    X, y = _pool()
    labeled = np.arange(0, len(X), 10)  # 60 labels over 6 classes: auto is informative
    state: dict = {}
    set_pool(state, "minilm", fingerprint="v1")
    first = _round(name, X, y, labeled, 0, state, **params)
    built = first.log["indexes_built"]
    assert built and all(first.log["indexes"][i]["seconds"] > 0 for i in built)
    if name == "auto":
        assert "graph" in built and any(b.startswith("pool_") for b in built)
    labeled = np.concatenate([labeled, first.rows])
    history = [{"arm": first.log.get("arm", name)}]

    loaded = _through_npz(state)  # what the next process reads
    in_process = _round(name, X, y, labeled, 1, state, history, **params)
    from_file = _round(name, X, y, labeled, 1, loaded, history, **params)

    assert np.array_equal(from_file.rows, in_process.rows)
    assert from_file.log["indexes_built"] == [] and in_process.log["indexes_built"] == []
    assert from_file.log["indexes"]
    for rec in from_file.log["indexes"].values():
        assert rec["action"] == "loaded" and rec["seconds"] == 0.0 and rec["load_seconds"] >= 0
    assert from_file.log["pool_check"]["verdict"] == "reuse"
    assert {r["action"] for r in in_process.log["indexes"].values()} == {"reused"}
    json.dumps(from_file.log)


def _saved_coverage_state(X, y):
    state: dict = {}
    set_pool(state, "minilm", fingerprint="v1")
    select("coverage", 10, np.arange(len(X)), rng=np.random.default_rng(0), vectors=X,
           state=state)
    return _through_npz(state)


def _coverage_log(X, state, cand=None):
    cand = np.arange(len(X)) if cand is None else cand
    return select("coverage", 10, cand, rng=np.random.default_rng(1), vectors=X,
                  state=state).log


def test_appended_rows_update_the_loaded_graph_incrementally():
    X, y = _pool()
    state = _saved_coverage_state(X, y)
    extra, _ = blobs(5, CENTERS, 1.0, 9)
    X2 = np.concatenate([X, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    log = _coverage_log(X2, state)
    assert log["pool_check"]["verdict"] == "update"
    assert "30 rows appended" in log["pool_check"]["reason"]
    rec = log["indexes"]["graph"]
    assert rec["action"] == "updated" and "30 new rows" in rec["reason"]
    assert "load_seconds" in rec and log["indexes_built"] == []
    assert len(state["longtail.strategies"]["graph"].rows) == len(X2)


@pytest.mark.parametrize("change, reason", [
    ("replace", "rows replaced"),
    ("remove", "rows removed"),
    ("dim", "dimension changed"),
    ("fingerprint", "pool fingerprint changed ('v1' -> 'v2')"),
    ("name", "vector set changed ('minilm' -> 'e5')"),
])
def test_a_changed_pool_rebuilds_and_says_why(change, reason):
    X, y = _pool()
    state = _saved_coverage_state(X, y)
    if change == "replace":
        X = X.copy()
        X[0] = -X[0]  # row 0 is always among the sampled rows
    elif change == "remove":
        X = X[:-50]
    elif change == "dim":
        X = np.concatenate([X, np.zeros((len(X), 1), dtype=X.dtype)], axis=1)
    elif change == "fingerprint":
        set_pool(state, "minilm", fingerprint="v2")
    else:
        set_pool(state, "e5", fingerprint="v1")
    log = _coverage_log(X, state)
    assert log["pool_check"]["verdict"] == "rebuild"
    assert reason in log["pool_check"]["reason"]
    rec = log["indexes"]["graph"]
    assert rec["action"] == "built" and rec["reason"].startswith("rebuilt: ")
    assert log["indexes_built"] == ["graph"]
    # the record now describes the new pool: the next call reuses
    again = _coverage_log(X, state)
    assert again["pool_check"]["verdict"] == "reuse" and again["indexes_built"] == []


def test_without_state_every_call_builds_and_says_so():
    X, _ = _pool(n_per=20)
    log = _coverage_log(X, None)
    assert log["indexes"]["graph"]["action"] == "built"
    assert "state=None" in log["indexes"]["graph"]["reason"]
    assert "pool_check" not in log


def test_rows_held_by_an_open_round_do_not_cost_a_new_pool_clustering():
    X, y = _pool()
    labeled = np.arange(0, len(X), 10)
    state: dict = {}
    first = _round("cluster_margin", X, y, labeled, 0, state)
    (name,) = first.log["indexes_built"]
    # the first round stays open: its rows are neither candidates nor labeled now
    held = np.concatenate([labeled, first.rows])
    cand = np.setdiff1d(np.arange(len(X)), held)
    sel = select("cluster_margin", 20, cand, rng=np.random.default_rng(1), vectors=X,
                 probs=_probs(cand, 1), classes=CLASSES, labeled_rows=labeled,
                 labeled_y=CLASSES[y[labeled]], state=state)
    assert sel.log["indexes_built"] == [] and list(sel.log["indexes"]) == [name]
    assert not np.isin(sel.rows, first.rows).any()
