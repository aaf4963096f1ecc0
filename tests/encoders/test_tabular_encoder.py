import json

import numpy as np
import pytest

from longtail.encoders import get_encoder
from longtail.errors import InputError


def _batches(metadata, size):
    for start in range(0, len(metadata), size):
        rows = metadata[start:start + size]
        yield {"text": [""] * len(rows), "metadata": rows}


@pytest.fixture
def pool():
    rng = np.random.default_rng(0)
    age = rng.integers(18, 90, size=250)
    income = rng.normal(50_000, 12_000, size=250)
    rows = [
        {"age": int(a), "income": float(i), "city": "Oslo" if a % 2 else "Lima", "flag": 3}
        for a, i in zip(age, income, strict=True)
    ]
    return rows, np.column_stack([age, income]).astype(np.float64)


def test_standardises_columns_streamed_over_batches(pool):
    rows, raw = pool
    enc = get_encoder("tabular", columns=["age", "income"])
    assert enc.needs == "metadata"
    enc.fit(_batches(rows, 64))  # uneven batches: 64, 64, 64, 58
    np.testing.assert_allclose(enc.means_, raw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(enc.sds_, raw.std(axis=0), rtol=1e-10)
    X = np.concatenate([enc.encode(b) for b in _batches(rows, 100)])
    assert X.dtype == np.float32 and X.shape == (250, 2) and enc.dim == 2
    np.testing.assert_allclose(X, (raw - raw.mean(0)) / raw.std(0), atol=1e-5)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-5)


def test_auto_picks_numeric_columns_only(pool):
    rows, _ = pool
    rows = [dict(r) for r in rows]
    rows[100]["score"] = 0.5  # present in one row only: not a column of the pool
    rows[7]["income"] = float("nan")  # a NaN disqualifies the column
    enc = get_encoder("tabular")
    enc.fit(_batches(rows, 50))
    assert enc.columns == ["age", "flag"]  # sorted; city is text, income has a NaN
    assert enc.sds_[1] == 1.0  # constant column: sd 1, so it encodes to 0
    X = enc.encode({"metadata": rows[:5]})
    np.testing.assert_array_equal(X[:, 1], 0)


def test_bool_is_not_numeric_for_auto_detection():
    rows = [{"x": 1.0, "b": True}, {"x": 2.0, "b": False}]
    enc = get_encoder("tabular")
    enc.fit([{"metadata": rows}])
    assert enc.columns == ["x"]


def test_config_round_trip_encodes_identically(pool):
    rows, _ = pool
    enc = get_encoder("tabular")
    enc.fit(_batches(rows, 80))
    config = json.loads(json.dumps(enc.config()))
    again = get_encoder("tabular", **config)
    assert again.dim == enc.dim
    batch = {"metadata": rows[:30]}
    np.testing.assert_array_equal(again.encode(batch), enc.encode(batch))
    # A rebuilt encoder is fitted: another fit must not move the scale.
    again.fit(_batches(rows[:10], 10))
    np.testing.assert_array_equal(again.encode(batch), enc.encode(batch))


@pytest.mark.parametrize(
    ("bad", "shown"),
    [("n/a", "'n/a'"), (None, "missing"), (float("inf"), "inf"), ([1, 2], "[1, 2]")],
)
def test_bad_value_names_column_and_value(pool, bad, shown):
    rows, _ = pool
    rows = [dict(r) for r in rows]
    rows[130]["income"] = bad
    enc = get_encoder("tabular", columns=["age", "income"])
    with pytest.raises(InputError) as err:
        enc.fit(_batches(rows, 64))
    message = str(err.value)
    assert "'income'" in message and shown in message and "row 130" in message


def test_missing_key_in_encode_is_an_error(pool):
    rows, _ = pool
    enc = get_encoder("tabular", columns=["age"])
    enc.fit([{"metadata": rows}])
    with pytest.raises(InputError, match="'age' is missing at row 1"):
        enc.encode({"metadata": [{"age": 3}, {"other": 1}]})


def test_numeric_strings_accepted_in_named_columns():
    enc = get_encoder("tabular", columns=["x"])
    enc.fit([{"metadata": [{"x": "1"}, {"x": " 3.0"}]}])
    np.testing.assert_allclose(enc.encode({"metadata": [{"x": "2"}]}), [[0.0]])


def test_no_numeric_column_and_unfitted_errors():
    with pytest.raises(InputError, match="no metadata column"):
        get_encoder("tabular").fit([{"metadata": [{"a": "x"}]}])
    with pytest.raises(InputError, match="no rows"):
        get_encoder("tabular").fit([])
    with pytest.raises(InputError, match="not fitted"):
        get_encoder("tabular", columns=["a"]).encode({"metadata": [{"a": 1}]})
    with pytest.raises(InputError, match="fit"):
        get_encoder("tabular").dim  # noqa: B018
    with pytest.raises(InputError):
        get_encoder("tabular", columns=["a"], means=[0.0], sds=[0.0])
