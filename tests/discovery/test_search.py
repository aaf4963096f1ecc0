"""Similarity search: by ids, by vector, with filters; exact and through the IVF index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.discovery.search import Index, exact_search, recall_at_k
from longtail.engine import search as search_mod
from longtail.errors import InputError
from longtail.project import Project
from longtail.strategies import ArrayVectors

from .conftest import make_tail_pool, write_tail_csv


def test_search_by_id_finds_its_class_and_filters_hold(tail_project):
    p, (X, y, source) = tail_project
    d_rows = [i for i in range(len(y)) if y[i] == "d"]
    r = p.search(ids=[f"s{d_rows[0]}"], k=10)
    assert len(r["hits"]) == 10 and r["index"]["kind"] == "exact"
    assert all(y[int(h["id"][1:])] == "d" for h in r["hits"])
    assert f"s{d_rows[0]}" not in [h["id"] for h in r["hits"]]  # the query is left out
    sims = [h["similarity"] for h in r["hits"]]
    assert sims == sorted(sims, reverse=True)
    r = p.search(ids=["s0"], k=15, state="unlabeled", where=["source=web"])
    assert all(h["label"] is None and h["metadata"]["source"] == "web" for h in r["hits"])
    assert len(r["hits"]) == 15
    r = p.search(ids=["s0"], k=5, split="eval")
    assert all(h["split"] == "eval" for h in r["hits"])


def test_search_by_vector_and_enqueue_puts_unlabeled_hits_first_in_the_next_round(tail_project):
    p, (X, y, source) = tail_project
    centre = np.eye(4, X.shape[1])[3] * 6  # the rare class's centre
    r = p.search(vector=centre, k=8, enqueue=True, priority=5.0)
    assert r["enqueued"]["queued"] == len([h for h in r["hits"] if h["split"] == "pool"
                                           and h["label"] is None]) > 0
    q = p.query(10, strategy="random")
    picked = [row for row, kind in zip(q.rows, q.kinds, strict=True) if kind == "queued"]
    assert picked and all(y[row] == "d" for row in picked)


@pytest.mark.parametrize("kwargs, message", [
    ({"ids": ["nope"]}, "no sample with id"),
    ({"vector": [1.0, 2.0]}, "16"),
    ({"ids": ["s0"], "vector": [0.0] * 16}, "exactly one"),
    ({}, "exactly one"),
    ({"ids": ["s0"], "split": "train"}, "--split"),
    ({"ids": ["s0"], "where": ["nocolon"]}, "COLUMN=VALUE"),
    ({"text": "hello"}, "not made from text"),
])
def test_bad_searches_are_input_errors(tail_project, kwargs, message):
    p, _ = tail_project
    with pytest.raises(InputError, match=message):
        p.search(**kwargs)
    assert p.queue() == []


def test_ivf_recall_against_exact_on_clustered_vectors():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(60, 8)) * 3
    lab = rng.integers(0, 60, 6000)
    A = rng.normal(size=(8, 48))
    X = ((centres[lab] + rng.normal(size=(6000, 8))) @ A + 0.3 * rng.normal(size=(6000, 48)))
    reader = ArrayVectors(X.astype(np.float32))
    index = Index.build(reader, 6000, seed=0)
    Q = (centres[rng.integers(0, 60, 50)] + rng.normal(size=(50, 8))) @ A
    ex, _ = exact_search(reader, Q, 10)
    ap, _ = index.search(reader, Q, 10)
    assert recall_at_k(ap, ex) >= 0.95
    # the index without its packed copy reads every row from the reader: same answers
    unpacked = Index.from_arrays(index.to_arrays())
    assert unpacked.n_packed == 0
    assert np.array_equal(unpacked.search(reader, Q, 10)[0], ap)
    index.pack(reader)
    assert index.n_packed == 6000
    assert np.array_equal(index.search(reader, Q, 10)[0], ap)
    again = Index.from_arrays(index.to_arrays(), packed=index.packed)
    assert again.n_packed == 6000 and np.array_equal(again.search(reader, Q, 10)[0], ap)


def test_the_index_is_built_saved_and_extended_with_new_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(search_mod, "EXACT_MAX", 100)
    X, y, source = make_tail_pool(n=600, seed=1)
    p = Project.init(tmp_path / "p", eval_rate=0.0)
    p.ingest(write_tail_csv(tmp_path / "a.csv", X[:500], y[:500], source[:500]), text="text",
             vector_prefix="v", metadata=["source"])
    r = p.search(ids=["s3"], k=5)
    assert r["index"]["kind"] == "ivf" and "built" in r["index"] and r["index"]["packed"] == 500
    assert (p.path / "state" / "precomputed.search-index.npz").exists()
    packs = sorted((p.path / "state").glob("precomputed.search-index.*.npy"))
    assert len(packs) == 1
    again = p.search(ids=["s3"], k=5)  # loaded as saved: nothing built or packed
    assert "built" not in again["index"] and again["hits"] == r["hits"]
    exact = p.search(ids=["s3"], k=5, exact=True)
    assert [h["id"] for h in r["hits"]][:3] == [h["id"] for h in exact["hits"]][:3]
    p.ingest(write_tail_csv(tmp_path / "b.csv", X[500:], y[500:], source[500:], start=500),
             text="text", vector_prefix="v", metadata=["source"])
    r = p.search(ids=["s550"], k=5)
    assert r["index"].get("added") == 100 and "built" not in r["index"]
    assert all(y[int(h["id"][1:])] == y[550] for h in r["hits"])
    # 100 new rows are over a tenth of the 500 packed: packed again, the old copy removed
    assert r["index"]["packed"] == 600
    now = sorted((p.path / "state").glob("precomputed.search-index.*.npy"))
    assert len(now) == 1 and now != packs
    # a lost copy is not an error: the rows are read from the vector set, then packed
    now[0].unlink()
    search_mod._CACHE.clear()
    lost = p.search(ids=["s550"], k=5)
    assert lost["hits"] == r["hits"] and lost["index"]["packed"] == 600
    p.close()


def test_search_cli(tail_project):
    p, _ = tail_project
    res = CliRunner().invoke(app, ["search", "-p", str(p.path), "--id", "s1", "-k", "3",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["hits"]) == 3
    res = CliRunner().invoke(app, ["search", "-p", str(p.path), "--vector", "1,2,x"])
    assert res.exit_code == 2 and "numbers" in res.output
    res = CliRunner().invoke(app, ["search", "-p", str(p.path), "--id", "s1", "--enqueue",
                                   "--state", "unlabeled", "-k", "4"])
    assert res.exit_code == 0 and "queued 4" in res.output
