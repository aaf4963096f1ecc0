"""The long-tailed benchmark sets (BENCHMARKS.md §8, issue 28) come from one seeded rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _datasets():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import datasets

    return datasets


def test_sizes_fall_exponentially_in_a_seeded_class_order_capped_by_the_rows_a_class_has():
    ds = _datasets()
    counts = np.full(77, 200)
    counts[5] = 7  # a class with fewer rows than its rank asks for
    sizes = ds.long_tail_sizes(counts, top=150, ratio=40)
    order = np.random.default_rng(8).permutation(77)
    for r, c in enumerate(order):
        assert sizes[c] == min(round(150 * 40 ** (-r / 76)), counts[c])
    assert sizes[order[0]] == 150 and sizes[order[-1]] == round(150 / 40)
    assert sizes[5] <= 7


def test_rows_are_the_first_of_each_class_in_a_seeded_permutation():
    ds = _datasets()
    y = np.repeat(np.arange(4), 50)
    sizes = np.array([30, 10, 5, 50])
    rows = ds.long_tail_rows(y, sizes)
    assert np.all(np.diff(rows) > 0)  # the pool keeps its file order
    assert np.array_equal(np.bincount(y[rows], minlength=4), sizes)
    perm = np.random.default_rng(8).permutation(len(y))
    first_of_1 = perm[y[perm] == 1][:10]
    assert set(first_of_1) == set(rows[y[rows] == 1])


def test_digits_lt_largest_class_is_50_times_the_smallest_and_the_test_set_is_kept():
    ds = _datasets()
    (X, y, Xt, yt, names), src = ds.digits_lt("full")
    (_, y_full, _, yt_full, _), _ = ds.digits("full")
    sizes = np.bincount(y, minlength=10)
    first = np.random.default_rng(8).permutation(10)[0]
    assert sizes.max() == sizes[first] == np.bincount(y_full)[first]  # keeps all its rows
    assert sizes.min() == round(sizes.max() / 50)
    assert np.array_equal(yt, yt_full) and "long-tailed" in src
    # the class order is default_rng(8)'s
    assert np.argmax(sizes) == np.random.default_rng(8).permutation(10)[0]
    assert ds.LOADERS["digits_lt"] is ds.digits_lt


def test_fashion_mnist_lt_standin_at_smoke_size_is_long_tailed(tmp_path):
    ds = _datasets()
    (X, y, Xt, yt, names), src = ds.fashion_mnist_lt("smoke")
    sizes = np.bincount(y, minlength=10)
    assert sizes.max() >= 40 * sizes.min() and len(X) == len(y) and len(Xt) == len(yt)


def test_banking77_lt_is_2995_rows_from_the_shared_embeddings():
    ds = _datasets()
    if not (ds.SHARED_DATA / "banking77" / "minilm.npz").exists():
        pytest.skip("shared Banking77 embeddings absent")
    (X, y, Xt, yt, names), src = ds.banking77_lt("full", encoder=object())
    assert len(X) == 2_995 and len(Xt) == 3_080 and len(names) == 77
    sizes = np.bincount(y, minlength=77)
    order = np.random.default_rng(8).permutation(77)
    assert sizes[order[-1]] == 4 and sizes.max() <= 150
    assert np.all(sizes[order[-10:]] <= 6)  # the tail is the shuffle's end
