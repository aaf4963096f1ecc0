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
    enc = get_encoder("tabular")
    enc.fit(_batches(rows, 50))
    assert enc.columns == ["age", "flag", "income"]  # city is text
    assert enc.describe() == {"columns": ["age", "flag", "income"], "dim": 3,
                              "excluded": [], "skipped": ["city", "score"]}
    assert enc.sds_[1] == 1.0  # constant column: sd 1, so it encodes to 0
    X = enc.encode({"metadata": rows[:5]})
    np.testing.assert_array_equal(X[:, 1], 0)


def test_auto_refuses_a_mostly_numeric_column_with_a_bad_value(pool):
    rows, _ = pool
    rows = [dict(r) for r in rows]
    rows[107]["income"] = float("nan")  # the 108th sample, in the third batch of 50
    with pytest.raises(InputError) as err:
        get_encoder("tabular").fit(_batches(rows, 50))
    message = str(err.value)
    # 1-based like ingest's messages, counted across batches; the way out is named.
    assert "'income'" in message and "row 108" in message and "--exclude income" in message


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
    [("n/a", "'n/a'"), (None, "missing"), (float("inf"), "inf"), ([1, 2], "[1, 2]"),
     (True, "True")],
)
def test_bad_value_names_column_and_value(pool, bad, shown):
    rows, _ = pool
    rows = [dict(r) for r in rows]
    rows[130]["income"] = bad
    enc = get_encoder("tabular", columns=["age", "income"])
    with pytest.raises(InputError) as err:
        enc.fit(_batches(rows, 64))
    message = str(err.value)
    assert "'income'" in message and shown in message and "row 131" in message


def test_missing_key_in_encode_is_an_error(pool):
    rows, _ = pool
    enc = get_encoder("tabular", columns=["age"])
    enc.fit([{"metadata": rows}])
    with pytest.raises(InputError, match="'age' is missing at row 2"):
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


def _digits_like(n=40, d=12, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row = {f"f{j}": float(rng.normal()) for j in range(d)}
        row["digit"] = int(rng.integers(0, 10))
        row["label"] = int(row["digit"])
        row["true_class"] = int(row["digit"])
        rows.append(row)
    return rows


def test_auto_columns_in_natural_order_without_answer_columns():
    enc = get_encoder("tabular", label_columns=["digit"])
    enc.fit(_batches(_digits_like(), 16))
    assert enc.columns == [f"f{j}" for j in range(12)]  # f2 before f10, not f1, f10, f11, f2
    described = enc.describe()
    assert described["dim"] == 12 and described["columns"] == enc.columns
    assert described["excluded"] == ["digit", "label", "true_class"]
    # The choice is part of the stored config and survives a rebuild.
    config = json.loads(json.dumps(enc.config()))
    assert config["columns"] == enc.columns and config["dim"] == 12
    assert get_encoder("tabular", **config).describe() == described


def test_without_the_truth_column_named_a_numeric_truth_would_be_a_feature():
    enc = get_encoder("tabular")
    enc.fit([{"metadata": _digits_like()}])
    assert "digit" in enc.columns and "label" not in enc.columns


def test_features_and_exclude_accept_names_and_patterns():
    rows = _digits_like()
    enc = get_encoder("tabular", features="f1*,f0", exclude=["f11"])
    enc.fit([{"metadata": rows}])
    assert enc.columns == ["f1", "f10", "f0"]  # pattern matches in natural order, then f0
    X = enc.encode({"metadata": rows})
    raw = np.array([[r["f1"], r["f10"], r["f0"]] for r in rows])
    np.testing.assert_allclose(X, (raw - raw.mean(0)) / raw.std(0), atol=1e-5)
    auto = get_encoder("tabular", exclude="f3,f1?", label_columns=["digit"])
    auto.fit([{"metadata": rows}])
    assert auto.columns == ["f0", "f1", "f2", *[f"f{j}" for j in range(4, 10)]]


@pytest.mark.parametrize(("params", "match"), [
    ({"features": ["f99"]}, "'f99' is not a metadata column"),
    ({"features": ["g*"]}, "pattern 'g\\*' matches no metadata column"),
    ({"exclude": ["f99"]}, "--exclude 'f99' matches no metadata column"),
    ({"features": ["f1", "digit"], "label_columns": ["digit"]}, "'digit' is a label or truth"),
    ({"features": ["f1"], "exclude": ["f1"]}, "both in --features and in --exclude"),
])
def test_feature_choice_mistakes_are_input_errors(params, match):
    with pytest.raises(InputError, match=match):
        get_encoder("tabular", **params).fit([{"metadata": _digits_like()}])


def test_errors_name_the_pool_row_and_id_when_the_batch_carries_them():
    from longtail.encoders import samples_batch

    samples = [(r, f"s{r}", None, {"a": float(r)}) for r in range(10)]
    samples[7] = (7, "s7", None, {"a": "abc"})
    enc = get_encoder("tabular", columns=["a"])
    with pytest.raises(InputError, match=r"at row 8 \(id 's7'\)"):
        enc.fit([samples_batch(samples[:5]), samples_batch(samples[5:])])


def test_check_not_features_refuses_a_truth_column_used_as_feature():
    from longtail.encoders import check_not_features

    enc = get_encoder("tabular")
    enc.fit([{"metadata": _digits_like()}])
    with pytest.raises(InputError, match="--exclude digit"):
        check_not_features("tabular", enc.config(), ["digit"], role="truth")
    check_not_features("tabular", enc.config(), ["label", None])  # not a feature: fine
    check_not_features("minilm", {}, ["digit"])


def test_tabular_params_merge_cli_options_and_known_label_columns():
    from longtail.encoders import tabular_params

    params = tabular_params("f0,f1", None, label_columns=["digit", None, "digit"])
    assert params == {"features": ["f0", "f1"], "label_columns": ["digit"]}
    enc = get_encoder("tabular", **tabular_params(label_columns=["digit"]))
    enc.fit([{"metadata": _digits_like()}])
    assert "digit" not in enc.columns


def test_needs_refit_when_the_column_choice_changes():
    from longtail.encoders import needs_refit, tabular_params

    enc = get_encoder("tabular")
    enc.fit([{"metadata": _digits_like()}])
    stored = json.loads(json.dumps(enc.config()))
    assert "digit" in stored["columns"]
    assert not needs_refit(stored, tabular_params())  # a plain resume
    assert needs_refit(stored, tabular_params(exclude="digit"))
    assert needs_refit(stored, tabular_params(label_columns=["digit"]))
    assert needs_refit(stored, tabular_params(features="f*"))
    assert not needs_refit(stored, tabular_params(label_columns=["label"]))
