"""The engine's use cases, called the way Project, the CLI and the service call them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from longtail.errors import InputError, ProjectError
from tests.conftest import snapshot, write_csv
from tests.reads import read


def _label_file(tmp_path, loaded, n=30, name="labels.csv", label_of=None, rows=None):
    ids = [f"s{i}" for i in (rows if rows is not None else loaded.candidates()[:n])]
    truth = {b[1]: b[3]["truth"] for chunk in read(loaded.store,
                                                   lambda u: list(u.samples.iter())) for b in chunk}
    label_of = label_of or (lambda i: truth[i])
    return write_csv(tmp_path / name, ["id", "label"], [[i, label_of(i)] for i in ids])


def test_cancelled_round_returns_its_rows_to_the_candidates(loaded):
    before = set(loaded.candidates().tolist())
    q = loaded.query(20, strategy="random")
    assert not set(q.rows) & set(loaded.candidates().tolist())
    loaded.cancel_round(q.round_id)
    assert set(q.rows) - set(read(loaded.store, lambda u: u.samples.rows_by_split("eval")).tolist()) <= set(
        loaded.candidates().tolist())
    assert before == set(loaded.candidates().tolist())
    assert [r.status for r in loaded.rounds()] == ["cancelled"]
    with pytest.raises(ProjectError):
        loaded.cancel_round(q.round_id)
    with pytest.raises(InputError, match="no round 99"):
        loaded.cancel_round(99)


def test_second_open_round_warns_and_out_is_not_overwritten(loaded, tmp_path):
    out = tmp_path / "batch.csv"
    first = loaded.query(10, strategy="random", out=out)
    assert first.warnings == []
    second = loaded.query(10, strategy="random")
    assert any("still open" in w for w in second.warnings)
    before = snapshot(loaded)
    with pytest.raises(InputError, match="already exists"):
        loaded.query(10, strategy="random", out=out)
    assert snapshot(loaded) == before
    loaded.query(10, strategy="random", out=out, overwrite=True)


def test_closed_label_set_rejects_unknown_labels_and_writes_nothing(loaded, tmp_path):
    loaded.set_labels(["c0", "c1", "c2"])
    bad = _label_file(tmp_path, loaded, n=5, label_of=lambda i: "cat")
    before = snapshot(loaded)
    with pytest.raises(InputError, match="allowed: c0, c1, c2"):
        loaded.import_labels(bad)
    assert snapshot(loaded) == before
    assert loaded.label_set() == ["c0", "c1", "c2"]


def test_open_schema_reports_new_classes_and_relabels_as_changes(loaded, tmp_path):
    rows = loaded.candidates()[:10]
    first = loaded.import_labels(_label_file(tmp_path, loaded, rows=rows))
    assert first["new_labels"] == 10 and first["changed"] == 0
    typo = loaded.import_labels(_label_file(tmp_path, loaded, rows=rows[:2], name="t.csv",
                                            label_of=lambda i: "C0"))
    assert typo["new_classes"] == ["C0"]
    assert typo["changed"] == 2 and typo["new_labels"] == 0
    assert any("typo" in w for w in typo["warnings"])


def test_train_with_nothing_new_adds_no_model_unless_forced(loaded, tmp_path):
    loaded.import_labels(_label_file(tmp_path, loaded, n=40))
    first = loaded.train()
    again = loaded.train()
    assert again.skipped and f"model {first.model_id}" in again.reason
    assert len(read(loaded.store, lambda u: u.models.list())) == 1
    forced = loaded.train(force=True)
    assert forced.model_id != first.model_id


@pytest.mark.parametrize("learner, params", [
    ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 20, "random_state": 0}),
    ("sklearn.neighbors.KNeighborsClassifier", {"n_neighbors": 3}),
    ("pipeline", {"steps": ["sklearn.preprocessing.StandardScaler",
                            "sklearn.linear_model.LogisticRegression"]}),
])
def test_any_learner_trains_saves_loads_and_queries(loaded, tmp_path, learner, params):
    from longtail.project import Project

    loaded.import_labels(_label_file(tmp_path, loaded, n=40))
    report = loaded.train(learner=learner, learner_params=params)
    X = loaded.vectors().read(np.arange(20))
    expected = loaded.model().predict_proba(X)
    path = loaded.path
    loaded.close()
    with Project(path) as again:  # a later command
        np.testing.assert_allclose(again.model(report.model_id).predict_proba(X), expected)
        q = again.query(10, strategy="margin")
        assert len(q.rows) == 10


def test_unknown_truth_column_is_an_error_not_a_fallback(loaded, tmp_path):
    loaded.import_labels(_label_file(tmp_path, loaded, n=20))
    with pytest.raises(InputError, match="nosuchcol"):
        loaded.simulate("nosuchcol", batch=10, budget=20)
    for kwargs in ({"batch": 0}, {"seeds": 0}, {"budget": 0}, {"budget": -10}):
        with pytest.raises(InputError):
            loaded.simulate("truth", **kwargs)


def test_status_reads_the_catalog_without_loading_models_or_scipy(loaded, tmp_path):
    loaded.import_labels(_label_file(tmp_path, loaded, n=40))
    loaded.train()
    code = ("import sys; from longtail.project import Project; "
            f"s = Project({str(loaded.path)!r}).status(); "
            "heavy = [m for m in ('scipy', 'sklearn', 'faiss', 'torch') if m in sys.modules]; "
            "print(s.models, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1 []"


def test_query_leaves_out_rows_without_vectors_with_a_note(project, tmp_path, pool_data):
    from tests.conftest import write_pool_csv

    X, y = pool_data
    project.ingest(write_pool_csv(tmp_path / "a.csv", X[:200], y[:200]), id="id", text="text",
                   vector_prefix="v")
    # Rows that arrive as text only have no precomputed vectors yet.
    write_csv(tmp_path / "b.csv", ["id", "text"], [[f"n{i}", f"new {i}"] for i in range(5)])
    project.ingest(tmp_path / "b.csv", id="id", text="text")
    q = project.query(10, strategy="random")
    assert len(q.rows) == 10 and max(q.rows) < 200
    assert any("no 'precomputed' vectors" in w for w in q.warnings)


def test_simulate_refuses_a_truth_column_that_is_a_tabular_feature(project, tmp_path):
    rows = [[f"r{i}", i % 3, float(i % 7), float(i % 5)] for i in range(60)]
    project.ingest(write_csv(tmp_path / "t.csv", ["id", "digit", "f0", "f1"], rows), id="id")
    # `digit` is numeric: without --exclude it becomes a feature, and the answer leaks.
    project.embed("tabular", features=["digit", "f0", "f1"])
    with pytest.raises(InputError, match="'digit' is a feature"):
        project.simulate("digit", batch=10, budget=20)


def test_recording_a_label_reads_only_the_rows_it_touches(loaded, tmp_path):
    """A label request must not read every label of the project (the service records
    one label per request): the touched rows' current labels are what it compares."""
    first = loaded.import_labels(_label_file(tmp_path, loaded, n=60))
    assert first["new_labels"] == 60
    row = int(loaded.candidates()[0])
    again = loaded.record_labels([
        __import__("longtail.engine.labels", fromlist=["LabelEvent"]).LabelEvent(
            id=f"s{row}", label="c1", annotator="ann")])
    assert again["new_labels"] == 1 and again["rows"] == 1
    with loaded.store.unit_of_work() as uow:
        assert uow.labels.current([row]) == {row: "c1"}
        assert set(uow.labels.current([row, 10_000])) == {row}
        assert uow.labels.classes() >= {"c1"}
