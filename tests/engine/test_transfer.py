"""`longtail transfer`: selection's labeled set used by another model family, against an
equal-size random set, checked where the truth is known."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from longtail.project import Project
from tests.conftest import make_pool, snapshot, write_csv, write_pool_csv


def _project(tmp_path, *, drop_class: str | None):
    """A pool whose managed eval set is fully labeled, and one round of 90 queried rows
    of which the labels of `drop_class` never come back: a "selection" that misses a
    class, which any learner trained on it pays for."""
    X, y = make_pool(400, d=8, classes=3, seed=11)
    p = Project.init(tmp_path / "proj", eval_rate=0.25, seed=3)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
             vector_prefix="v")
    truth = {f"s{i}": y[i] for i in range(len(y))}
    with p.store.reading() as uow:
        eval_ids = [f"s{r}" for r in uow.samples.rows_by_split("eval").tolist()]
    q = p.query(budget=90, strategy="random")
    answered = [i for i in q.ids if i not in eval_ids and truth[i] != drop_class]
    rows = [[i, truth[i]] for i in eval_ids + answered]
    p.import_labels(write_csv(tmp_path / "labels.csv", ["id", "label"], rows))
    p.train()
    return p


def test_a_set_missing_a_class_loses_for_another_learner_and_is_recorded(tmp_path):
    p = _project(tmp_path, drop_class="c2")
    r = p.transfer("sklearn.neighbors.KNeighborsClassifier", learner_params={"n_neighbors": 3})
    assert r.selected_with == "linear" and r.method == "crossfit"
    # The random half of the eval set has c2; the selected set has none: about a third
    # of the eval samples are lost, and the interval says so.
    assert r.hi < 0 and r.gain < -0.2
    assert r.acc_random > r.acc_selected
    shown = p.status().transfer
    assert [t["learner"] for t in shown] == ["sklearn.neighbors.KNeighborsClassifier"]
    assert shown[0]["gain"] == r.gain


def test_a_learner_that_learns_nothing_shows_no_gain(tmp_path):
    p = _project(tmp_path, drop_class=None)
    r = p.transfer("sklearn.dummy.DummyClassifier", learner_params={"strategy": "uniform"})
    assert r.lo <= 0 <= r.hi and r.gain == 0


def test_transfer_from_the_cli_and_bad_learner_changes_nothing(tmp_path):
    p = _project(tmp_path, drop_class=None)
    proj = str(p.store.root)
    before = snapshot(p, ledger=False)
    bad = subprocess.run([sys.executable, "-m", "longtail.cli", "transfer", "-p", proj,
                          "--learner", "sklearn.nope.Missing"], capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot import module" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    assert snapshot(p, ledger=False) == before
    ok = subprocess.run([sys.executable, "-m", "longtail.cli", "transfer", "-p", proj,
                         "--learner", "sklearn.naive_bayes.GaussianNB", "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["learner"] == "sklearn.naive_bayes.GaussianNB"
    assert out["lo"] <= out["gain"] <= out["hi"] and np.isfinite(out["gain"])
    text = subprocess.run([sys.executable, "-m", "longtail.cli", "status", "-p", proj],
                          capture_output=True, text=True).stdout
    assert "transfer sklearn.naive_bayes.GaussianNB" in text


def test_the_report_shows_the_recorded_transfer(tmp_path):
    from longtail.engine.report import report_data
    from longtail.report.html import render

    p = _project(tmp_path, drop_class="c2")
    assert "transfer" not in report_data(p.store, p._settings()).sections
    r = p.transfer("sklearn.neighbors.KNeighborsClassifier", learner_params={"n_neighbors": 3})
    data = report_data(p.store, p._settings())
    assert data.sections["transfer"]["results"][0]["gain"] == r.gain
    html = render(data.to_dict())
    assert "Does the selection carry over?" in html
    assert f"{100 * r.gain:+.1f} points" in html and "KNeighborsClassifier" in html
