import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import longtail.hashing as H
from longtail.hashing import hash_strings, hash_vectors, to_hex, uniform_from_hashes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=30))
def test_a_string_hashes_the_same_wherever_it_sits(values):
    whole = hash_strings(values)
    for i, v in enumerate(values):
        assert hash_strings([v])[0] == whole[i]
    arr = pa.array(["pad"] + values, pa.string()).slice(1)  # non-zero array offset
    assert (hash_strings(arr) == whole).all()
    assert (hash_strings(pa.array(values, pa.large_string())) == whole).all()


def test_small_slices_give_the_same_hashes(monkeypatch):
    values = ["abc", "", None, "x" * 50, "é" * 7, "abc"]
    expected = hash_strings(values)
    monkeypatch.setattr(H, "_SLICE_BYTES", 4)
    assert (hash_strings(values) == expected).all()


def test_different_strings_seeds_and_none_differ():
    words = [f"row-{i:08d}" for i in range(20_000)] + ["", "ab", "ba", "a", "aa"]
    h = hash_strings(words)
    assert len(np.unique(h)) == len(words)
    assert hash_strings([None])[0] != hash_strings([""])[0]
    assert hash_strings(["x"], seed=1)[0] != hash_strings(["x"], seed=2)[0]


def test_uniforms_look_uniform_and_hex_round_trips():
    u = uniform_from_hashes(hash_strings([str(i) for i in range(50_000)], seed=3))
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
    assert abs((u < 0.05).mean() - 0.05) < 0.005
    h = hash_strings(["a", "b"])
    assert [int(x, 16) for x in to_hex(h)] == h.tolist()


def test_vector_digest_sees_a_single_changed_value():
    v = np.random.default_rng(0).standard_normal((100, 7)).astype(np.float32)
    w = v.copy()
    w[42, 3] += 1e-3
    a, b = hash_vectors(v), hash_vectors(w)
    assert (a != b).sum() == 1 and a[42] != b[42]


def test_vector_digest_is_the_documented_sum_modulo_2_64():
    # Projects store these digests: any faster implementation must give the same values.
    v = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    words = v.view(np.uint64)
    mix = [int(m) for m in H._MIX[:3]]
    expected = [sum(int(w) * m for w, m in zip(row, mix, strict=True)) % 2**64 for row in words]
    assert hash_vectors(v).tolist() == expected
