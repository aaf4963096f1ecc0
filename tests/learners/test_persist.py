import json
import threading

import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from longtail.errors import InputError
from longtail.learners import LinearHead, make_learner, parse_learner_params, persist

# Three families, each by its spec as a user would give it to `train --learner`.
FAMILIES = {
    "tree ensemble": ("sklearn.ensemble.RandomForestClassifier",
                      {"n_estimators": 15, "max_depth": 6, "random_state": 0}),
    "boosted trees": ("sklearn.ensemble.HistGradientBoostingClassifier",
                      {"max_iter": 20, "random_state": 0}),
    "neighbours": ("sklearn.neighbors.KNeighborsClassifier",
                   {"n_neighbors": 7, "weights": "distance"}),
    "pipeline": ("pipeline", {"steps": ["sklearn.preprocessing.StandardScaler",
                                        "sklearn.linear_model.LogisticRegression"],
                              "logisticregression__C": 0.5}),
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=400, n_features=8, n_informative=5, n_classes=3,
                               random_state=3)
    names = np.array(["cat", "dog", "eel"])
    rng = np.random.default_rng(5)
    X_new = rng.normal(size=(150, 8)) * 2.0  # unseen points, some far outside the data
    return X, names[y], X_new


def _save_and_reload(arrays, tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, **arrays)
    with np.load(path, allow_pickle=False) as saved:
        return persist.load(dict(saved))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_through_npz_predicts_identically(family, data, tmp_path):
    name, params = FAMILIES[family]
    X, y, X_new = data
    model = make_learner(name, **params).fit(X, y)
    arrays = persist.dump(model, {"name": name, "params": params})
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    loaded = _save_and_reload(arrays, tmp_path)
    assert type(loaded) is type(model) and loaded is not model
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X_new), model.predict_proba(X_new))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fresh_like_rebuilds_an_untrained_learner_from_the_saved_spec(family, data):
    name, params = FAMILIES[family]
    X, y, X_new = data
    model = make_learner(name, **params).fit(X, y)
    meta = persist.read_meta(persist.dump(model, {"name": name, "params": params}))
    assert meta["learner"] == {"name": name, "params": params}
    assert not persist.warm_starts(model)  # scikit-learn learners retrain from scratch
    for fresh in (persist.fresh_like(meta), persist.fresh_like(model)):
        assert type(fresh) is type(model) and not hasattr(fresh, "classes_")
        # Same kind and parameters: trained on the same data it is the same model.
        np.testing.assert_allclose(fresh.fit(X, y).predict_proba(X_new),
                                   model.predict_proba(X_new), rtol=1e-12, atol=1e-12)


def test_a_make_pipeline_estimator_built_in_code_saves_and_loads(data, tmp_path):
    X, y, X_new = data
    model = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X, y)
    arrays = persist.dump(model)  # no spec: its steps are objects, not JSON
    assert persist.read_meta(arrays)["learner"] is None
    loaded = _save_and_reload(arrays, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X_new), model.predict_proba(X_new))
    assert persist.fresh_like(loaded).get_params()["logisticregression__C"] == 2.0
    with pytest.raises(InputError, match="pass the loaded model"):
        persist.fresh_like(persist.read_meta(arrays))


def test_linear_head_is_saved_as_its_own_arrays_and_keeps_warm_starting(data, tmp_path):
    X, y, X_new = data
    head = LinearHead(C=3.0).fit(X, y)
    arrays = persist.dump(head)
    assert set(arrays) == {"coef", "intercept", persist.META_KEY}  # no skops payload
    loaded = _save_and_reload(arrays, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X_new), head.predict_proba(X_new))
    assert persist.warm_starts(loaded) and not persist.warm_starts(LinearHead(warm_start=False))
    fresh = persist.fresh_like(loaded)
    assert isinstance(fresh, LinearHead) and fresh.C == 3.0 and not hasattr(fresh, "coef_")
    assert persist.fresh_like(persist.read_meta(arrays)).C == 3.0


def test_models_saved_before_persist_existed_still_load(data, tmp_path):
    X, y, X_new = data
    head = LinearHead().fit(X, y)
    state = head.state_dict()  # the layout Project saved: state arrays + JSON meta
    legacy = {**state["arrays"], "__meta__": np.array(json.dumps(state["meta"]))}
    loaded = _save_and_reload(legacy, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X_new), head.predict_proba(X_new))


# -- what must not be saved or loaded ---------------------------------------------------

LOADED_EVIL = []


class HomeMade:
    """A learner from a module skops does not trust (this test module)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))

    def __setstate__(self, state):  # would run if a payload naming it were loaded
        LOADED_EVIL.append(state)
        self.__dict__.update(state)


def test_a_class_from_another_module_is_refused_at_save_time(data):
    X, y, _ = data
    with pytest.raises(InputError, match=r"cannot be saved safely.*HomeMade"):
        persist.dump(HomeMade().fit(X, y))


def test_a_lambda_inside_a_pipeline_is_refused_at_save_time(data):
    X, y, _ = data
    model = make_pipeline(FunctionTransformer(lambda z: z * 2), LogisticRegression()).fit(X, y)
    with pytest.raises(InputError, match=r"cannot be saved safely.*<lambda>"):
        persist.dump(model)


def test_what_skops_cannot_serialise_is_refused_at_save_time(data):
    X, y, _ = data
    model = make_learner("sklearn.neighbors.KNeighborsClassifier").fit(X, y)
    model.stream_ = (row for row in X)  # a generator: skops cannot write it at all
    with pytest.raises(InputError, match="cannot be saved safely: skops refused it"):
        persist.dump(model)
    del model.stream_
    model.lock_ = threading.Lock()  # skops writes it, as a type nobody should trust
    with pytest.raises(InputError, match=r"cannot be saved safely.*_thread\.lock"):
        persist.dump(model)


def test_an_untrained_learner_is_refused(data):
    with pytest.raises(InputError, match="not trained"):
        persist.dump(make_learner("sklearn.neighbors.KNeighborsClassifier"))
    with pytest.raises(InputError, match="not a learner"):
        persist.dump(StandardScaler())


@pytest.fixture
def saved_forest(data):
    X, y, _ = data
    name, params = FAMILIES["tree ensemble"]
    return persist.dump(make_learner(name, **params).fit(X, y))


def test_a_payload_naming_an_untrusted_type_is_refused_and_nothing_runs(data, saved_forest):
    X, y, _ = data
    tampered = dict(saved_forest)
    tampered[persist.SKOPS_KEY] = np.frombuffer(sio.dumps(HomeMade().fit(X, y)), np.uint8)
    LOADED_EVIL.clear()
    with pytest.raises(InputError, match=r"refused.*test_persist\.HomeMade"):
        persist.load(tampered)
    assert LOADED_EVIL == []


def test_corrupt_or_mismatched_payloads_are_refused(saved_forest):
    truncated = {**saved_forest, "skops": saved_forest["skops"][: len(saved_forest["skops"]) // 2]}
    with pytest.raises(InputError, match="corrupt"):
        persist.load(truncated)
    with pytest.raises(InputError, match="1-d uint8"):
        persist.load({**saved_forest, "skops": saved_forest["skops"].astype(np.int16)})
    meta = persist.read_meta(saved_forest)
    relabeled = {**meta, "classes": ["cat", "dog", "fox"]}
    with pytest.raises(InputError, match="inconsistent"):
        persist.load({**saved_forest, "__meta__": np.array(json.dumps(relabeled))})
    unknown = {**meta, "format": "longtail.pickle/1"}
    with pytest.raises(InputError, match="unknown format 'longtail.pickle/1'"):
        persist.load({**saved_forest, "__meta__": np.array(json.dumps(unknown))})
    with pytest.raises(InputError, match="no '__meta__'"):
        persist.load({"skops": saved_forest["skops"]})
    with pytest.raises(InputError, match="no 'skops' array"):
        persist.load({"__meta__": saved_forest["__meta__"]})


# -- parameters and specs ---------------------------------------------------------------


def test_parse_learner_params_reads_json_and_keeps_bare_words():
    params = parse_learner_params([
        "n_estimators=200", "max_features=sqrt", "C=0.5", "svc__probability=true",
        "max_depth=null", 'steps=["a.B", "c.D"]', "name=\"42\"", "note=a=b", "empty=",
    ])
    assert params == {"n_estimators": 200, "max_features": "sqrt", "C": 0.5,
                      "svc__probability": True, "max_depth": None, "steps": ["a.B", "c.D"],
                      "name": "42", "note": "a=b", "empty": ""}
    assert parse_learner_params([]) == {}


@pytest.mark.parametrize("item", ["n_estimators", "=5", "two words=1", "1x=2"])
def test_parse_learner_params_names_a_malformed_item(item):
    with pytest.raises(InputError, match=f"--learner-param '{item}'"):
        parse_learner_params(["C=1", item])


def test_parse_learner_params_refuses_a_key_given_twice():
    with pytest.raises(InputError, match="'C' is given twice"):
        parse_learner_params(["C=1", "C=2"])


def test_cli_style_params_build_a_pipeline(data):
    X, y, _ = data
    params = parse_learner_params([
        'steps=["sklearn.preprocessing.StandardScaler", "sklearn.neighbors.KNeighborsClassifier"]',
        "kneighborsclassifier__n_neighbors=3",
    ])
    pipe = make_learner("pipeline", **params)
    assert [name for name, _ in pipe.steps] == ["standardscaler", "kneighborsclassifier"]
    assert pipe.get_params()["kneighborsclassifier__n_neighbors"] == 3
    assert pipe.fit(X, y).predict_proba(X).shape == (len(X), 3)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "steps must be a non-empty list"),
        ({"steps": "sklearn.svm.SVC"}, "steps must be a non-empty list"),
        ({"steps": ["sklearn.linear_model.LogisticRegression",
                    "sklearn.linear_model.LogisticRegression"]}, "has no fit/transform"),
        ({"steps": ["sklearn.preprocessing.StandardScaler"]}, "predict_proba"),
        ({"steps": ["sklearn.preprocessing.StandardScaler", "nosuch.Model"]}, "cannot import"),
        ({"steps": ["sklearn.preprocessing.StandardScaler",
                    "sklearn.linear_model.LogisticRegression"], "svc__C": 1.0},
         "step names: standardscaler, logisticregression"),
    ],
)
def test_pipeline_spec_errors(params, match):
    with pytest.raises(InputError, match=match):
        make_learner("pipeline", **params)


def test_a_pipeline_ending_in_the_linear_head_saves_through_skops(data, tmp_path):
    X, y, X_new = data
    model = make_pipeline(StandardScaler(), LinearHead(C=2.0)).fit(X, y)
    loaded = _save_and_reload(persist.dump(model), tmp_path)  # longtail's own types: trusted
    np.testing.assert_array_equal(loaded.predict_proba(X_new), model.predict_proba(X_new))


def test_a_package_only_named_like_a_trusted_one_is_refused(data):
    X, y, _ = data
    lookalike = type("Forest", (HomeMade,), {"__module__": "sklearn_extra_evil.models"})
    with pytest.raises(InputError, match=r"sklearn_extra_evil\.models\.Forest"):
        persist.dump(lookalike().fit(X, y))


def test_a_linear_head_loaded_to_predict_only_scores_identically_without_sklearn(tmp_path):
    import subprocess
    import sys

    from longtail.learners import make_learner
    from longtail.learners.persist import dump, load

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 200)]
    head = make_learner("linear").fit(X, y)
    np.savez(tmp_path / "m.npz", **dump(head))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        scorer = load(dict(data), predict_only=True)
    np.testing.assert_array_equal(scorer.classes_, head.classes_)
    np.testing.assert_allclose(scorer.predict_proba(X), head.predict_proba(X), rtol=1e-6)
    code = ("import sys, numpy as np; from longtail.learners.persist import load; "
            f"d = dict(np.load({str(tmp_path / 'm.npz')!r}, allow_pickle=False)); "
            "m = load(d, predict_only=True); m.predict_proba(np.zeros((2, 6), np.float32)); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
