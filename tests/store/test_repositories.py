"""Each repository's behaviour, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from longtail.errors import InputError, ProjectError
from longtail.store import Store, UnitOfWork, repos
from longtail.store import schema as s
from tests.reads import read


def _samples(uow: UnitOfWork, n: int, *, eval_rows=(), prefix: str = "s") -> int:
    batch = uow.samples.add_batch("f.csv", "", {"id": "id"})
    start = uow.samples.next_row()
    uow.samples.insert(batch, [
        (start + i, f"{prefix}{start + i}", f"{start + i:032x}", f"text {start + i}",
         json.dumps({"k": start + i})) for i in range(n)], eval_rows)
    return batch


def test_settings_get_all_set(store: Store):
    with store.unit_of_work() as uow:
        assert uow.settings.get("missing", 5) == 5
        uow.settings.set("params", {"b": [1, 2], "a": None, "nan": math.nan})
        uow.settings.set("params", {"b": [3]})  # replaces
        assert uow.settings.get("params") == {"b": [3]}
        uow.settings.set("ratio", 0.25)
        every = uow.settings.all()
    assert every["ratio"] == 0.25 and every["params"] == {"b": [3]}
    assert every["schema_version"] == s.SCHEMA_VERSION and every["seed"] == 0


def test_label_set_open_then_fixed(store: Store):
    with store.unit_of_work() as uow:
        assert uow.label_set.get() is None and uow.label_set.allows("anything")
        assert uow.label_set.add(["cat", "dog"]) == ["cat", "dog"]
        assert uow.label_set.add(["dog", "bird"]) == ["cat", "dog", "bird"]  # order kept
        assert not uow.label_set.allows("Cat")
        with pytest.raises(InputError, match="given twice"):
            uow.label_set.set(["a", "a"])
        with pytest.raises(InputError, match="not a label"):
            uow.label_set.add(["ok", ""])
        with pytest.raises(InputError, match="not the string"):
            uow.label_set.set("a,b")
    assert read(store,
                lambda u: u.label_set.get()) == ["cat", "dog", "bird"]  # the failed calls wrote nothing
    with store.unit_of_work() as uow:
        uow.label_set.set(None)
    assert read(store, lambda u: u.label_set.get()) is None


@pytest.mark.parametrize("insert_rows,in_chunk", [(500, 20_000), (7, 3)])
def test_samples_insert_lookup_iter(store: Store, monkeypatch, insert_rows, in_chunk):
    # Small chunk sizes exercise the multi-row INSERT's full statements plus its tail,
    # and IN lists split across several queries.
    monkeypatch.setattr(repos, "INSERT_ROWS", insert_rows)
    monkeypatch.setattr(repos, "IN_CHUNK", in_chunk)
    with store.unit_of_work() as uow:
        _samples(uow, 23, eval_rows=[3, 9])
        assert uow.samples.next_row() == 23
        found = uow.samples.lookup_ids(["s0", "s22", "nope", "s9"])
        assert found == {"s0": (0, f"{0:032x}"), "s22": (22, f"{22:032x}"), "s9": (9, f"{9:032x}")}
        assert uow.samples.ids_to_rows([f"s{i}" for i in range(23)]) == {f"s{i}": i for i in range(23)}
    assert read(store, lambda u: u.samples.split_counts()) == {"pool": 21, "eval": 2}
    np.testing.assert_array_equal(read(store, lambda u: u.samples.rows_by_split("eval")), [3, 9])
    assert read(store, lambda u: u.samples.rows_by_split("pool")).dtype == np.int64
    flat = [t for chunk in read(store, lambda u: list(u.samples.iter(batch_rows=5))) for t in chunk]
    assert [t[0] for t in flat] == list(range(23))
    assert flat[4] == (4, "s4", "text 4", {"k": 4})
    picked = [t for chunk in read(store, lambda u: list(u.samples.iter(np.array([20, 2, 11]),
                                                                       batch_rows=2)))
              for t in chunk]
    assert [t[0] for t in picked] == [20, 2, 11]  # the order asked for
    assert [t[0] for c in read(store, lambda u: list(u.samples.iter(start=20))) for t in c] == [20, 21, 22]


def test_samples_update_and_missing_row(store: Store):
    with store.unit_of_work() as uow:
        batch = _samples(uow, 3)
        uow.samples.update([{"row": 1, "content_hash": "f" * 32, "text": "new", "meta": None,
                             "batch_id": batch}])
        assert uow.samples.lookup_ids(["s1"]) == {"s1": (1, "f" * 32)}
        assert next(uow.samples.iter(np.array([1])))[0] == (1, "s1", "new", {})
        with pytest.raises(ProjectError, match="no sample at row 7"):
            list(uow.samples.iter(np.array([0, 7])))


def test_current_label_is_the_latest_label_event(store: Store):
    with store.unit_of_work() as uow:
        _samples(uow, 4)
        uow.labels.add([
            {"row": 0, "label": "a", "source": "human"},
            {"row": 1, "label": "a", "source": "import"},
            {"row": 0, "label": "b", "source": "human"},            # relabel: b wins
            {"row": 1, "kind": "skip", "source": "human"},           # skip: a stays
            {"row": 2, "kind": "unsure", "label": "c", "source": "human"},  # not a class
            {"row": 3, "kind": "skip", "source": "human"},
        ])
        assert uow.labels.current() == {0: "b", 1: "a"}
        assert list(uow.labels.current()) == [0, 1]  # ordered by row on every dialect
        assert uow.labels.count() == 6 and uow.labels.count("label") == 3
        assert uow.labels.count("skip") == 2
        first = uow.labels.first_times()
        history = uow.labels.events()
        assert uow.labels.max_id() == history[-1]["id"]
    assert set(first) == {0, 1}  # skip/unsure never make a row labeled
    assert first[0] == history[0]["id"] and first[1] == history[1]["id"]
    assert [(e["row"], e["kind"], e["label"]) for e in history] == [
        (0, "label", "a"), (1, "label", "a"), (0, "label", "b"), (1, "skip", ""),
        (2, "unsure", "c"), (3, "skip", "")]
    assert [e["kind"] for e in read(store, lambda u: u.labels.events([1]))] == ["label", "skip"]
    assert read(store, lambda u: u.labels.current()) == {0: "b", 1: "a"}


def test_label_events_are_checked(store: Store):
    with store.unit_of_work() as uow:
        _samples(uow, 1)
    with pytest.raises(InputError, match="'maybe' is not one of label, skip, unsure"):
        with store.unit_of_work() as uow:
            uow.labels.add([{"row": 0, "label": "a", "source": "human"},
                            {"row": 0, "kind": "maybe", "source": "human"}])
    with pytest.raises(InputError, match="needs a label"):
        with store.unit_of_work() as uow:
            uow.labels.add([{"row": 0, "label": "", "source": "human"}])
    assert read(store, lambda u: u.labels.count()) == 0


def test_rounds_cancel_returns_rows_to_candidates(store: Store):
    with store.unit_of_work() as uow:
        _samples(uow, 6)
        r1 = uow.rounds.add("margin", {"budget": 2}, 0, {"x": 1}, [(4, 0, "selected"),
                                                                     (1, 1, "control")], None)
        r2 = uow.rounds.add("random", {}, 0, {}, [(2, 0, "selected")], None)
        np.testing.assert_array_equal(uow.rounds.open_rows(), [4, 1, 2])
        uow.rounds.cancel(r1)
        np.testing.assert_array_equal(uow.rounds.open_rows(), [2])
        with pytest.raises(ProjectError, match="is cancelled, not open"):
            uow.rounds.cancel(r1)
        with pytest.raises(ProjectError, match=f"no round 99 \\(open rounds: {r2}\\)"):
            uow.rounds.cancel(99)
    rounds = read(store, lambda u: u.rounds.list())
    assert [(r["id"], r["status"], r["size"]) for r in rounds] == [(r1, "cancelled", 2),
                                                                   (r2, "open", 1)]
    assert rounds[0]["params"] == {"budget": 2} and rounds[0]["strategy"] == "margin"
    assert read(store, lambda u: u.rounds.items(r1)) == [(4, 0, "selected"), (1, 1, "control")]


def test_close_done_closes_rounds_whose_items_are_all_answered(store: Store):
    with store.unit_of_work() as uow:
        _samples(uow, 6)
        a = uow.rounds.add("margin", {}, 0, {}, [(0, 0, "selected"), (1, 1, "selected")], None)
        b = uow.rounds.add("margin", {}, 0, {}, [(2, 0, "selected"), (3, 1, "selected")], None)
        uow.labels.add([{"row": 0, "label": "x", "source": "human"},
                        {"row": 1, "kind": "skip", "source": "human"},  # answered: a skip
                        {"row": 2, "label": "y", "source": "human"}])
        assert uow.rounds.close_done() == [a]
        assert uow.rounds.close_done() == []  # b still waits for row 3
        uow.labels.add([{"row": 3, "label": "y", "source": "human"}])
        assert uow.rounds.close_done() == [b]
    assert [r["status"] for r in read(store, lambda u: u.rounds.list())] == ["closed", "closed"]
    assert len(read(store, lambda u: u.rounds.open_rows())) == 0


def test_round_log_round_trips_non_finite_numbers(store: Store):
    # PostgreSQL's json type refuses NaN; the catalog keeps JSON as text on every dialect.
    with store.unit_of_work() as uow:
        rid = uow.rounds.add("auto", {}, 0, {"gain": math.nan}, [], None)
        uow.rounds.update_log(rid, {"gain": math.inf, "arms": {"margin": [0.5, -1.0]}})
    log = read(store, lambda u: u.rounds.list())[0]["log"]
    assert log["gain"] == math.inf and log["arms"] == {"margin": [0.5, -1.0]}


def test_model_arrays_and_meta_round_trip(store: Store):
    arrays = {"coef": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32),
              "intercept": np.array([1, -2, 3], dtype=np.int64),
              "classes": np.array(["a", "bé", "c"])}
    with store.unit_of_work() as uow:
        m1 = uow.models.add("linear", "minilm", 10, ["a", "bé", "c"], arrays, 0.5)
        m2 = uow.models.add("sklearn.ensemble.RandomForestClassifier", "minilm", 12, [1, 2],
                            {"w": np.zeros(2)}, 1.5, meta={"format": "skops", "params": {"n": 3}})
        assert uow.models.latest()["id"] == m2
    listed = read(store, lambda u: u.models.list())
    assert [m["id"] for m in listed] == [m1, m2]
    assert listed[0]["classes"] == ["a", "bé", "c"] and listed[1]["classes"] == ["1", "2"]
    # The store adds the file's SHA-256 to every model's meta (`longtail check` uses it).
    assert set(listed[0]["meta"]) == {"sha256"}
    assert {k: v for k, v in listed[1]["meta"].items() if k != "sha256"} == {
        "format": "skops", "params": {"n": 3}}
    with store.reading() as uow:
        got = uow.models.arrays(listed[0])
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
    with pytest.raises(ProjectError, match="without pickle"), store.unit_of_work() as uow:
        uow.models.add("x", "minilm", 1, ["a"], {"o": np.array([{}], dtype=object)}, 0.1)
    assert len(read(store, lambda u: u.models.list())) == 2


def test_metrics_and_eval_versions(store: Store):
    with store.unit_of_work() as uow:
        mid = uow.models.add("linear", "e", 1, ["a"], {"w": np.ones(1)}, 0.0)
        uow.metrics.add(mid, "managed:v1", 5, {"accuracy": (0.8, 0.7, 0.9), "macro_f1": (0.6, None, None)})
        uow.metrics.add(None, "file:abc", 5, {"accuracy": (0.75, None, None)})
        v1, created = uow.eval_versions.get_or_create("f" * 64, 10)
        assert created
        assert uow.eval_versions.get_or_create("f" * 64, 11) == (v1, False)
        v2, created = uow.eval_versions.get_or_create("e" * 64, 12)
        assert created and v2 != v1
    acc = read(store, lambda u: u.metrics.list("accuracy"))
    assert [(m["eval_set"], m["value"], m["lo"]) for m in acc] == [("managed:v1", 0.8, 0.7),
                                                                  ("file:abc", 0.75, None)]
    assert len(read(store, lambda u: u.metrics.list())) == 3
    assert [(v["id"], v["n_labeled"]) for v in read(store,
                                                    lambda u: u.eval_versions.list())] == [(v1, 10), (v2, 12)]


def test_vector_sets(store: Store):
    with store.unit_of_work() as uow:
        info = uow.vectors.ensure("minilm", 384, "float16", {"model": "m"})
        assert info["n_rows"] == 0
        assert uow.vectors.ensure("minilm", 999, "float32", {}) ["dim"] == 384  # kept
        uow.vectors.ensure("precomputed", 8, "float32", {})
        uow.vectors.set_rows("minilm", 50)
        uow.vectors.set_rows("precomputed", 3, config={"cols": ["v0"]})
    assert read(store, lambda u: u.vectors.names()) == ["minilm", "precomputed"]
    assert read(store,
                lambda u: u.vectors.info("minilm")) == {"name": "minilm", "dim": 384, "dtype": "float16",
                                               "n_rows": 50, "config": {"model": "m"}}
    assert read(store, lambda u: u.vectors.info("precomputed"))["config"] == {"cols": ["v0"]}
    assert read(store, lambda u: u.vectors.info("nope")) is None
