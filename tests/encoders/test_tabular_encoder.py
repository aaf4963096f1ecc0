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


def test_auto_one_hot_encodes_text_and_leaves_out_a_mostly_missing_column(pool):
    rows, _ = pool
    rows = [dict(r) for r in rows]
    rows[100]["score"] = 0.5  # present in one row only: not a column of the pool
    enc = get_encoder("tabular")
    enc.fit(_batches(rows, 50))
    assert enc.columns == ["age", "city", "flag", "income"]  # city one-hot: Lima, Oslo
    d = enc.describe()
    assert d["dim"] == 5 and d["one_hot"] == {"city": 2} and d["skipped"] == ["score"]
    assert d["left_out"] == {"score": "missing in 249 of 250 rows"}
    assert enc.dimension_names() == ["age", "city=Lima", "city=Oslo", "flag", "income"]
    assert enc.sds_[2] == 1.0  # constant column: sd 1, so it encodes to 0
    X = enc.encode({"metadata": rows[:5]})
    np.testing.assert_array_equal(X[:, 3], 0)
    np.testing.assert_array_equal(X[:, 1] + X[:, 2], 1)
    assert X[0, 2] == (rows[0]["city"] == "Oslo")
    # the pool's own column order, when the caller knows it (embed: the files' order)
    ordered = get_encoder("tabular", column_order=["income", "city", "age", "flag"])
    ordered.fit(_batches(rows, 50))
    assert ordered.columns == ["income", "city", "age", "flag"]


def test_auto_refuses_a_mostly_numeric_column_with_a_bad_value(pool):
    rows, _ = pool
    rows = [{**r, "mean area": r["income"]} for r in rows]
    rows[107]["mean area"] = "12,5"  # the 108th sample, in the third batch of 50
    with pytest.raises(InputError) as err:
        get_encoder("tabular").fit(_batches(rows, 50))
    message = str(err.value)
    # 1-based like ingest's messages, counted across batches; the way out is named, and
    # can be pasted into a shell as it is.
    assert "'mean area'" in message and "row 108" in message
    assert "--exclude 'mean area'" in message


def test_bool_is_a_category_not_a_number_for_auto_detection():
    rows = [{"x": 1.0, "b": True}, {"x": 2.0, "b": False}]
    enc = get_encoder("tabular")
    enc.fit([{"metadata": rows}])
    assert enc.columns == ["b", "x"] and enc.categories == {"b": ["false", "true"]}


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
    [("12,5", "'12,5'"), (float("inf"), "inf"), ([1, 2], "[1, 2]"), (True, "True")],
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


def test_a_missing_cell_in_encode_takes_the_pools_median(pool):
    rows, raw = pool
    enc = get_encoder("tabular", columns=["age"])
    enc.fit([{"metadata": rows}])
    X = enc.encode({"metadata": [{"age": float(np.median(raw[:, 0]))}, {"other": 1},
                                 {"age": "n/a"}]})
    assert X[1, 0] == X[0, 0] == X[2, 0]
    # a config from before imputation (no fill) still refuses, naming the row
    old = {k: v for k, v in enc.config().items() if k not in ("fill",)}
    with pytest.raises(InputError, match="'age' is missing at row 2"):
        get_encoder("tabular", **old).encode({"metadata": [{"age": 3}, {"other": 1}]})


def test_numeric_strings_accepted_in_named_columns():
    enc = get_encoder("tabular", columns=["x"])
    enc.fit([{"metadata": [{"x": "1"}, {"x": " 3.0"}]}])
    np.testing.assert_allclose(enc.encode({"metadata": [{"x": "2"}]}), [[0.0]])


def test_no_numeric_column_and_unfitted_errors():
    with pytest.raises(InputError, match="no metadata column"):
        get_encoder("tabular").fit([{"metadata": [{"a": "x"}]}])  # one value: nothing to learn
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
    spaced = get_encoder("tabular")
    spaced.fit([{"metadata": [{**r, "true digit": r["digit"]} for r in _digits_like()]}])
    with pytest.raises(InputError, match="--exclude 'true digit'"):
        check_not_features("tabular", spaced.config(), ["true digit"])
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


def _spreadsheet(n=300, seed=4):
    """Rows as a spreadsheet export holds them: gaps, NA markers, text categories."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append({"height": float(rng.normal(170, 10)), "weight": float(rng.normal(70, 8)),
                     "site": str(rng.choice(["north", "south", "east"])),
                     "name": f"patient {i}"})
    for i in (3, 50, 51, 299):
        rows[i]["height"] = None
    rows[7]["height"] = "NA"
    rows[8]["weight"] = ""
    rows[9]["site"] = None
    return rows


def test_missing_values_are_imputed_text_one_hot_and_the_choice_applies_to_new_rows():
    rows = _spreadsheet()
    enc = get_encoder("tabular")
    enc.fit(_batches(rows, 64))
    d = enc.describe()
    assert enc.columns == ["height", "site", "weight"] and d["dim"] == 5
    heights = np.array([r["height"] for r in rows if isinstance(r["height"], float)])
    assert d["imputed"]["height"] == {"count": 5, "how": "median",
                                      "with": float(np.median(heights))}
    assert d["imputed"]["weight"]["count"] == 1
    sites = [r["site"] for r in rows if r["site"]]
    top = max(set(sites), key=sites.count)
    assert d["imputed"]["site"] == {"count": 1, "how": "most frequent", "with": top}
    assert d["left_out"] == {"name": "text with 300 distinct values (one-hot takes at most 20)"}
    X = enc.encode({"metadata": rows})
    assert np.isfinite(X).all() and X.shape == (300, 5)
    # a standardised column has mean 0 over the observed values
    observed = [i for i, r in enumerate(rows) if isinstance(r["height"], float)]
    np.testing.assert_allclose(X[observed, 0].mean(), 0, atol=1e-5)
    # stored and rebuilt (a test file): the same medians, categories and scale
    again = get_encoder("tabular", **json.loads(json.dumps(enc.config())))
    new = [{"height": None, "weight": 70.0, "site": "west"}, {"height": 180.0, "weight": None,
                                                              "site": " south "}]
    Y = again.encode({"metadata": new})
    np.testing.assert_allclose(Y[0, 0], (np.median(heights) - enc.means_[0]) / enc.sds_[0],
                               rtol=1e-5)
    weights = [r["weight"] for r in rows if r["weight"]]
    np.testing.assert_allclose(Y[1, 4], (np.median(weights) - enc.means_[2]) / enc.sds_[2],
                               rtol=1e-5)
    assert Y[0, 1:4].tolist() == [0, 0, 0]  # a site the pool never had
    assert Y[1, 1:4].tolist() == [0, 0, 1]  # east, north, south


def test_the_one_hot_cap_is_a_parameter():
    rows = _spreadsheet()
    enc = get_encoder("tabular", max_categories=2)
    enc.fit([{"metadata": rows}])
    assert "site" not in enc.columns and "3 distinct values" in enc.describe()["left_out"]["site"]
    with pytest.raises(InputError, match="'name' cannot be a feature: text with 300"):
        get_encoder("tabular", features=["height", "name"]).fit([{"metadata": rows}])
