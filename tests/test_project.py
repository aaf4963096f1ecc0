"""The Project facade end to end on a small synthetic pool."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from longtail.errors import InputError, ProjectError
from longtail.project import Project
from tests.conftest import snapshot, write_csv
from tests.reads import read


def _label_file(tmp_path, loaded, n=40, name="labels.csv", extra=None):
    ids, rows = [], []
    for row, ext, _, meta in next(iter(read(loaded.store,
                                            lambda u: list(u.samples.iter(batch_rows=10_000))))):
        if len(rows) < n:
            rows.append([ext, meta["truth"], "ann1", 3.5])
            ids.append(row)
    rows += extra or []
    return write_csv(tmp_path / name, ["id", "label", "who", "secs"], rows), ids


def test_open_missing_project_is_a_clear_error(tmp_path):
    with pytest.raises(ProjectError, match="no longtail project"):
        Project(tmp_path / "nothing")


def test_import_labels_idempotent_and_history(loaded, tmp_path):
    f, _ = _label_file(tmp_path, loaded)
    r1 = loaded.import_labels(f, annotator="who", seconds="secs")
    r2 = loaded.import_labels(f, annotator="who", seconds="secs")
    assert r1["new_labels"] == 40 and r2["new_labels"] == 0
    # A correction is a new event; the latest one wins, and history is kept.
    first = next(iter(read(loaded.store, lambda u: list(u.samples.iter()))))[0]
    fix = write_csv(tmp_path / "fix.csv", ["id", "label"], [[first[1], "c9"]])
    loaded.import_labels(fix)
    assert read(loaded.store, lambda u: u.labels.current())[first[0]] == "c9"
    assert read(loaded.store, lambda u: u.labels.count()) == 41


def test_import_labels_unknown_ids_listed_and_nothing_written(loaded, tmp_path):
    f, _ = _label_file(tmp_path, loaded, extra=[["ghost-1", "c0", "a", 1], ["ghost-2", "c1", "a", 1]])
    before = snapshot(loaded)
    with pytest.raises(InputError, match=r"2 unknown id\(s\): 'ghost-1', 'ghost-2'"):
        loaded.import_labels(f)
    assert snapshot(loaded) == before


def test_import_labels_bad_seconds(loaded, tmp_path):
    f, _ = _label_file(tmp_path, loaded, extra=[["s1", "c0", "a", "slow"]])
    before = snapshot(loaded)
    with pytest.raises(InputError, match=r"row 41, column 'secs': 'slow' is not a number"):
        loaded.import_labels(f, seconds="secs")
    assert snapshot(loaded) == before


def test_import_labels_missing_column(loaded, tmp_path):
    f = write_csv(tmp_path / "l.csv", ["id", "category"], [["s1", "c0"]])
    with pytest.raises(InputError, match=r"label column 'label' not found"):
        loaded.import_labels(f)


def test_train_then_query_excludes_labeled_queued_and_eval(loaded, tmp_path):
    f, labeled_rows = _label_file(tmp_path, loaded)
    loaded.import_labels(f)
    report = loaded.train()
    assert report.labels == len(set(labeled_rows) - set(read(loaded.store,
                                                             lambda u: u.samples.rows_by_split("eval"))))
    eval_rows = set(read(loaded.store, lambda u: u.samples.rows_by_split("eval")).tolist())
    q1 = loaded.query(30, strategy="margin", out=tmp_path / "b1.csv")
    q2 = loaded.query(30, strategy="entropy", out=tmp_path / "b2.jsonl")
    for q in (q1, q2):
        picked = [r for r, k in zip(q.rows, q.kinds, strict=True) if k != "eval"]
        assert not set(picked) & set(labeled_rows)
        assert not set(picked) & eval_rows
        assert all((r in eval_rows) == (k == "eval") for r, k in zip(q.rows, q.kinds, strict=True))
    assert not set(q1.rows) & set(q2.rows)
    assert "selected" in q1.kinds
    # a model exists: eval rows are asked for, unless the eval set already holds its
    # share of the labels paid (the imported file labeled 7 eval rows of 40), and the
    # round log says which
    reason = read(loaded.store, lambda u: u.rounds.list())[0]["log"]["split"]["eval"]["reason"]
    assert "eval" in q1.kinds or "capped at 10% of the 70 labels paid" in reason
    with open(tmp_path / "b1.csv") as fh:
        exported = list(csv.DictReader(fh))
    assert [e["id"] for e in exported] == q1.ids
    assert len((tmp_path / "b2.jsonl").read_text().splitlines()) == 30


def test_labeling_a_batch_closes_its_round_and_trains_with_eval_metrics(loaded, tmp_path):
    truth = {ext: meta["truth"] for b in read(loaded.store,
                                              lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
    for name in ("first.csv", "answers.csv"):  # the first batch has no eval rows: no model yet
        q = loaded.query(40, strategy="random")
        f = write_csv(tmp_path / name, ["id", "label"], [[i, truth[i]] for i in q.ids])
        result = loaded.import_labels(f)
        assert result["closed_rounds"] == [q.round_id]
        report = loaded.train()
    assert report.eval is not None and report.eval.n == q.kinds.count("eval") > 0
    acc = report.eval.accuracy
    assert acc["lo"] <= acc["value"] <= acc["hi"]
    st = loaded.status()
    assert st.open_rounds == 0 and "accuracy" in st.metrics


def test_train_without_labels_is_a_clear_error(loaded):
    with pytest.raises(ProjectError, match="no labeled pool samples"):
        loaded.train()


def test_query_bad_export_suffix_writes_nothing(loaded, tmp_path):
    before = snapshot(loaded)
    with pytest.raises(InputError, match="export as .csv or .jsonl"):
        loaded.query(10, strategy="random", out=tmp_path / "b.xlsx")
    assert snapshot(loaded) == before


def test_query_unknown_strategy(loaded):
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        loaded.query(10, strategy="nope")


def test_evaluate_on_external_test_file(loaded, tmp_path, pool_data):
    f, _ = _label_file(tmp_path, loaded, n=120)
    loaded.import_labels(f)
    loaded.train()
    X, y = pool_data
    test = write_csv(tmp_path / "test.csv", ["id", "label", *[f"v{j}" for j in range(8)]],
                     [[f"t{i}", y[i], *X[i].tolist()] for i in range(100)])
    result = loaded.evaluate(test, vector_prefix="v")
    assert result.n == 100 and result.accuracy["value"] > 0.8
    assert result.eval_set.startswith("file:")


def test_simulate_learning_curve(loaded):
    result = loaded.simulate("truth", strategy="margin", batch=20, budget=60, seeds=2)
    for run in result.runs:
        assert run["labels_paid"] == [20, 40, 60]
        # Eval labels come out of the batch, as in `query`: training labels are the rest.
        assert [n + e for n, e in zip(run["n_labels"], run["eval_labels"], strict=True)] == \
            [20, 40, 60]
    json.dumps(result.to_dict())
    assert all(v is None or 0 <= v <= 1 for run in result.runs for v in run["eval_accuracy"])
    run = result.runs[0]
    # Scored on the rows the run never labeled, n beside each figure.
    assert run["heldout_accuracy"][-1] > 0.8
    assert run["heldout_n"][-1] == result.pool + result.eval - 60


def test_simulate_splits_each_batch_as_query_does(loaded, tmp_path):
    # The same state, the same split: no eval labels before a model, then the same count.
    sim = loaded.simulate("truth", strategy="random", batch=50, budget=100).runs[0]
    truth = {ext: meta["truth"] for b in read(loaded.store,
                                              lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
    first = loaded.query(50, strategy="random")
    write_csv(tmp_path / "a.csv", ["id", "label"], [[i, truth[i]] for i in first.ids])
    loaded.import_labels(tmp_path / "a.csv")
    loaded.train()
    second = loaded.query(50, strategy="random")
    assert first.kinds.count("eval") == sim["eval_labels"][0] == 0
    assert second.kinds.count("eval") == sim["eval_labels"][1] > 0


def test_simulate_reads_truth_from_a_label_file(loaded, tmp_path):
    truth = {ext: meta["truth"] for b in read(loaded.store,
                                              lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
    f = write_csv(tmp_path / "truth.csv", ["id", "label"], [[k, v] for k, v in truth.items()])
    from_file = loaded.simulate(str(f), strategy="random", batch=20, budget=40)
    from_column = loaded.simulate("truth", strategy="random", batch=20, budget=40)
    assert from_file.runs[0]["heldout_accuracy"] == from_column.runs[0]["heldout_accuracy"]
    write_csv(tmp_path / "bad.csv", ["id", "label"], [["nope", "c1"]])
    with pytest.raises(InputError, match="not in the project"):
        loaded.simulate(str(tmp_path / "bad.csv"), batch=20, budget=40)


def test_tabular_embed_resumes(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"r{i}", float(rng.normal()), float(rng.normal() * 10), "x"] for i in range(50)]
    f = write_csv(tmp_path / "t.csv", ["id", "a", "b", "tag"], rows)
    p = Project.init(tmp_path / "p")
    p.ingest(f, id="id", metadata=["a", "b"])
    out = p.embed("tabular", columns=["a", "b"], batch_rows=16)
    assert out.embedded == 50
    again = p.embed("tabular", batch_rows=16)
    assert again.embedded == 0
    X = read(p.store, lambda u: u.vector_set("tabular")).read(np.arange(50))
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-5)
    p.close()


def test_new_catalog_uses_wal_and_16k_pages(tmp_path):
    from longtail.project import Project

    p = Project.init(tmp_path / "p")
    with p.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    p.close()


def test_status_reads_one_snapshot_each_read_once(loaded, tmp_path):
    """Issue 27's CLI audit: `status` reads in one read transaction, and what its parts
    share (the eval split's rows, the split counts, the current labels) is read once,
    not once per part (it was 3 transactions and the eval rows 4 times)."""
    from sqlalchemy import event

    loaded.import_labels(_label_file(tmp_path, loaded, n=200)[0])
    loaded.train()
    seen: list[str] = []
    event.listen(loaded.store.engine, "before_cursor_execute",
                 lambda c, cur, st, p, ctx, many: seen.append(" ".join(st.split())))
    report = loaded.status()
    assert report.samples > 0 and report.models == 1

    def count(fragment: str) -> int:
        return sum(fragment in st for st in seen)

    assert count("FROM samples WHERE samples.split =") == 1
    assert count("GROUP BY samples.split") == 1
    assert count("max(annotations.id)") == 1  # every row's current label, once
    assert count("BEGIN") <= 3  # the settings, the snapshot, the triggers (their own)


def test_status_after_train_reads_the_cached_estimate_without_the_estimators(loaded, tmp_path):
    """The CLI audit: `status` shows the estimate `train` cached; the estimators (and
    what they import) load only when an estimate is computed."""
    import subprocess
    import sys

    loaded.import_labels(_label_file(tmp_path, loaded, n=200)[0])
    loaded.train()
    code = ("import sys; from longtail.project import Project; "
            f"Project({str(loaded.store.root)!r}).status(); "
            "print('longtail.evaluation.estimators' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
