"""A test file goes through the same fitted transform as the pool (issue 19, item 3)."""

from __future__ import annotations

import numpy as np
import pytest

import longtail.ingest.labeled_file as labeled_file
from longtail.errors import InputError
from longtail.ingest.labeled_file import read_labeled_file
from longtail.project import Project
from longtail.store.files import ArrayCache
from tests.conftest import write_csv
from tests.reads import read

FEATURES = [f"f{j}" for j in range(12)]


@pytest.fixture
def tabular(tmp_path):
    rng = np.random.default_rng(5)
    # Far from mean 0 / sd 1, so raw values and scaled ones differ by a lot.
    raw = rng.normal(loc=50.0, scale=7.0, size=(60, 12)).round(4)
    digit = rng.integers(0, 3, 60)
    pool = write_csv(tmp_path / "pool.csv", ["id", *FEATURES, "digit"],
                     [[f"s{i}", *raw[i].tolist(), int(digit[i])] for i in range(60)])
    p = Project.init(tmp_path / "p")
    p.ingest(pool, id="id")
    p.embed("tabular", label_columns=["digit"])
    info = read(p.store, lambda u: u.vectors.info("tabular"))
    test = write_csv(tmp_path / "test.csv", ["id", *FEATURES, "digit"],
                     [[f"t{i}", *raw[i].tolist(), int(digit[i])] for i in range(10)])
    yield p, info, test, raw, digit
    p.close()


def _read(info, test, **kw):
    return read_labeled_file(test, encoder_name="tabular", encoder_config=info["config"],
                             dim=info["dim"], label="digit", **kw)


def test_test_rows_get_the_pool_vectors_of_the_same_values(tabular):
    p, info, test, _, digit = tabular
    X, y = _read(info, test)
    pool_vectors = read(p.store, lambda u: u.vector_set("tabular")).read(np.arange(10))
    np.testing.assert_allclose(X, pool_vectors, atol=1e-6)
    assert list(y) == [str(d) for d in digit[:10]]
    # --vector-prefix f names the same raw features: the same, scaled, vectors.
    X_prefix, _ = _read(info, test, vector_prefix="f")
    np.testing.assert_array_equal(X_prefix, X)


def test_other_vectors_on_a_tabular_project_are_refused(tabular, tmp_path):
    _, info, test, raw, _ = tabular
    with pytest.raises(InputError, match="must number exactly the pool's feature columns"):
        _read(info, test, vector_prefix="v")
    with pytest.raises(InputError, match="--vector is not accepted"):
        _read(info, test, vector="f0")
    short = write_csv(tmp_path / "short.csv", ["id", *FEATURES[:10], "digit"],
                      [["t0", *raw[0, :10].tolist(), 1]])
    with pytest.raises(InputError, match=r"lacks 2 of the pool's feature column\(s\): f10, f11"):
        _read(info, short)
    bad_rows = [[f"t{i}", *raw[i].tolist(), 1] for i in range(3)]
    bad_rows[2][4] = "abc"
    bad = write_csv(tmp_path / "bad.csv", ["id", *FEATURES, "digit"], bad_rows)
    with pytest.raises(InputError, match=r"bad\.csv: .*column 'f3' has non-numeric value "
                                         r"'abc' at row 3"):
        _read(info, bad)


def test_a_missing_cell_in_a_test_file_takes_the_pools_median(tabular, tmp_path):
    _, info, _, raw, _ = tabular
    rows = [[f"t{i}", *raw[i].tolist(), 1] for i in range(3)]
    rows[1][4] = ""  # f3 of the second row
    gap = write_csv(tmp_path / "gap.csv", ["id", *FEATURES, "digit"], rows)
    X, _ = _read(info, gap)
    cfg = info["config"]
    want = (np.median(raw[:, 3]) - cfg["means"][3]) / cfg["sds"][3]
    np.testing.assert_allclose(X[1, 3], want, rtol=1e-5)


def test_cached_embedding_is_reused_until_the_file_changes(tabular, tmp_path, monkeypatch):
    _, info, test, raw, _ = tabular
    cache = tmp_path / "cache"
    X, y = _read(info, test, cache=ArrayCache(cache))
    assert len(list(cache.iterdir())) == 1

    def no_encoder(*args, **kwargs):
        raise AssertionError("the cached file was embedded again")

    monkeypatch.setattr(labeled_file, "get_encoder", no_encoder)
    X2, y2 = _read(info, test, cache=ArrayCache(cache))
    np.testing.assert_array_equal(X2, X)
    assert list(y2) == list(y)
    monkeypatch.undo()
    changed = write_csv(tmp_path / "test.csv", ["id", *FEATURES, "digit"],
                        [["t0", *(raw[0] + 1).tolist(), 0]])
    X3, _ = _read(info, changed, cache=ArrayCache(cache))
    assert X3.shape == (1, 12) and len(list(cache.iterdir())) == 2


def test_precomputed_and_text_projects_keep_their_rules(tmp_path):
    f = write_csv(tmp_path / "t.csv", ["id", "text", "label"], [["a", "hi", "x"]])
    with pytest.raises(InputError, match="precomputed; the test file needs its vectors"):
        read_labeled_file(f, encoder_name="precomputed", encoder_config={}, dim=4)
    with pytest.raises(InputError, match="give --text"):
        read_labeled_file(f, encoder_name="minilm", encoder_config={}, dim=384, text=None)
    v = write_csv(tmp_path / "v.csv", ["v0", "v1", "label"], [[1.0, 2.0, "x"], [3.0, 4.0, "y"]])
    X, y = read_labeled_file(v, encoder_name="precomputed", encoder_config={}, dim=2,
                             vector_prefix="v")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    with pytest.raises(InputError, match="have 3"):
        read_labeled_file(v, encoder_name="precomputed", encoder_config={}, dim=3,
                          vector_prefix="v")


def test_blank_text_in_a_test_file_is_an_error_not_a_vector(tmp_path):
    pytest.importorskip("sentence_transformers")
    blank = write_csv(tmp_path / "b.csv", ["text", "label"], [["hi", "x"], ["  ", "y"]])
    with pytest.raises(InputError, match=r"row 2, column 'text': empty text"):
        read_labeled_file(blank, encoder_name="minilm", encoder_config={}, dim=384)
