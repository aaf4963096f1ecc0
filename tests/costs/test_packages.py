"""Work packages: every item in exactly one package (two with overlap), the packages'
predicted time balanced."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.costs.packages import split_packages
from longtail.errors import InputError


@settings(max_examples=200, deadline=None)
@given(seconds=st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1,
                        max_size=120),
       k=st.integers(1, 8), overlap=st.sampled_from([0.0, 0.1, 0.5]))
def test_every_item_once_and_balanced(seconds, k, overlap):
    s = np.array(seconds)
    if k > len(s) or (overlap and k < 2):
        with pytest.raises(InputError):
            split_packages(s, k, overlap=overlap)
        return
    packages = split_packages(s, k, overlap=overlap)
    counts = np.bincount(np.concatenate(packages), minlength=len(s))
    extra = int(round(overlap * len(s)))
    assert (counts[:extra] == 2).all() and (counts[extra:] == 1).all()
    assert all(len(set(p.tolist())) == len(p) for p in packages)  # nobody labels twice
    if not overlap:
        loads = [s[p].sum() for p in packages]
        # LPT: the busiest package is within the longest item of the least busy one.
        assert max(loads) - min(loads) <= s.max() + 1e-9


def test_a_day_of_work_is_split_evenly():
    rng = np.random.default_rng(0)
    s = rng.lognormal(3, 0.6, 1000)
    loads = [s[p].sum() for p in split_packages(s, 10)]
    assert max(loads) / min(loads) < 1.01
