import numpy as np
import pytest

from longtail.errors import InputError
from longtail.evaluation import assign_eval, eval_fill

IDS = [f"sample-{i}" for i in range(100_000)]


def test_rate_on_many_ids():
    mask = assign_eval(IDS, rate=0.05, seed=0)
    assert mask.dtype == bool and mask.shape == (100_000,)
    # binomial sd at n=100k, p=0.05 is 0.0007
    assert abs(mask.mean() - 0.05) < 0.003


def test_deterministic_and_order_free():
    first = assign_eval(IDS[:5000], seed=3)
    again = assign_eval(IDS[:5000], seed=3)
    np.testing.assert_array_equal(first, again)
    order = np.random.default_rng(0).permutation(5000)
    shuffled = assign_eval([IDS[i] for i in order], seed=3)
    np.testing.assert_array_equal(shuffled, first[order])
    # each id decides alone: a batch split in two gives the same answer
    halves = np.concatenate([assign_eval(IDS[:2500], seed=3), assign_eval(IDS[2500:5000], seed=3)])
    np.testing.assert_array_equal(halves, first)


def test_seed_changes_the_draw():
    a = assign_eval(IDS[:20000], seed=0)
    b = assign_eval(IDS[:20000], seed=1)
    assert (a != b).any()
    assert abs(a.mean() - b.mean()) < 0.01


def test_cap_respected():
    mask = assign_eval(IDS[:10000], rate=0.05, current_eval=480, cap=500)
    assert mask.sum() == 20
    # the kept ones are a subset of the uncapped draw
    assert not (mask & ~assign_eval(IDS[:10000], rate=0.05)).any()
    assert assign_eval(IDS[:1000], cap=100, current_eval=100).sum() == 0
    assert assign_eval(IDS[:1000], cap=100, current_eval=150).sum() == 0


def test_stratified_shares():
    rng = np.random.default_rng(0)
    strata = rng.choice(["big", "mid", "rare"], size=20000, p=[0.8, 0.19, 0.01])
    mask = assign_eval(IDS[:20000], rate=0.05, strata=strata)
    for s in ["big", "mid", "rare"]:
        members = strata == s
        assert abs(mask[members].sum() - 0.05 * members.sum()) <= 1
    # with a cap, each stratum keeps its share of the room
    capped = assign_eval(IDS[:20000], rate=0.05, strata=strata, cap=100)
    assert capped.sum() == 100
    assert abs(capped[strata == "big"].sum() - 80) <= 2
    assert capped[strata == "rare"].sum() >= 0


def test_small_strata_get_their_share_on_average():
    # Batches of 10 samples per stratum at rate 0.05: expected 0.5 per batch.
    total = 0
    for b in range(400):
        ids = [f"b{b}-{i}" for i in range(10)]
        total += assign_eval(ids, rate=0.05, strata=["x"] * 10).sum()
    assert 150 <= total <= 250


def test_bad_inputs():
    with pytest.raises(InputError):
        assign_eval(IDS[:10], rate=1.5)
    with pytest.raises(InputError):
        assign_eval(IDS[:10], strata=["a"] * 9)


def test_eval_fill():
    assert eval_fill(500, 100) == 20
    assert eval_fill(7, 100) == 7
    assert eval_fill(0, 100) == 0
    assert eval_fill(["r1", "r2", "r3"], 100, share=0.5) == 3
    assert eval_fill(50, 3) == 1  # small batches still label eval rows
    assert eval_fill(50, 100, share=0.0) == 0
    assert eval_fill(50, 0) == 0
