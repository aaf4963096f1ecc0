"""The managed eval set end to end: the leak invariant, versions and re-scoring, the
control-arm lift, forecasts and stopping."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.errors import InputError
from longtail.project import Project
from tests.conftest import make_pool, write_csv, write_pool_csv
from tests.reads import read, write


def _truth(p: Project) -> dict[str, str]:
    return {ext: meta["truth"] for b in read(p.store,
                                             lambda u: list(u.samples.iter())) for _, ext, _, meta in b}


def _answer(p: Project, ids: list[str], tmp_path, name: str) -> None:
    truth = _truth(p)
    p.import_labels(write_csv(tmp_path / name, ["id", "label"], [[i, truth[i]] for i in ids]))


@pytest.fixture
def big(tmp_path) -> Project:
    X, y = make_pool(1500, d=8, classes=4, seed=3)
    p = Project.init(tmp_path / "proj", eval_rate=0.1)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    yield p
    p.close()


def test_eval_rows_are_never_candidates_nor_trained_on(big, tmp_path):
    eval_rows = set(read(big.store, lambda u: u.samples.rows_by_split("eval")).tolist())
    # Try to break it: label every eval row and some pool rows, then ask for the whole pool.
    truth = _truth(big)
    ids = [ext for b in read(big.store,
                             lambda u: list(u.samples.iter())) for r, ext, _, _ in b if r in eval_rows]
    _answer(big, ids + [f"s{i}" for i in range(40) if i not in eval_rows], tmp_path, "a.csv")
    report = big.train()
    assert report.labels == 40 - len([i for i in range(40) if i in eval_rows])
    assert not eval_rows & set(big.candidates().tolist())
    for strategy in ("random", "margin", "auto"):
        q = big.query(500, strategy=strategy)
        assert not eval_rows & set(q.rows)
    assert truth  # the oracle was used


def _first_round(p: Project, tmp_path, k: int = 100, strategy: str = "random"):
    """Before any model the whole batch goes to selection; label it and train."""
    q = p.query(k, strategy=strategy)
    assert q.kinds == ["selected"] * len(q.kinds)
    _answer(p, q.ids, tmp_path, "first.csv")
    p.train()
    return q


def test_query_labels_eval_rows_first_up_to_share_once_a_model_exists(big, tmp_path):
    _first_round(big, tmp_path)
    q = big.query(100, strategy="random")
    # the default eval share: a tenth of the batch (and of every label paid)
    assert q.kinds[:10] == ["eval"] * 10 and "eval" not in q.kinds[10:]
    assert "control" not in q.kinds  # no control slice unless asked for
    assert "no model yet" in read(big.store, lambda u: u.rounds.list())[0]["log"]["split"]["eval"]["reason"]


def test_a_control_slice_when_asked_for(tmp_path):
    X, y = make_pool(1500, d=8, classes=4, seed=3)
    p = Project.init(tmp_path / "p", eval_rate=0.1, control_share=0.1)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    q = p.query(100, strategy="random")
    assert q.kinds.count("control") == 10 and "eval" not in q.kinds
    _answer(p, q.ids, tmp_path, "a.csv")
    p.train()
    q = p.query(100, strategy="random")
    assert q.kinds.count("eval") == 10 and q.kinds.count("control") == 9  # 10% of 90
    p.close()


def test_eval_versions_rescore_old_models_on_the_new_set(big, tmp_path):
    _first_round(big, tmp_path)
    q1 = big.query(100, strategy="random")
    _answer(big, q1.ids, tmp_path, "r1.csv")
    first = big.train()
    v1 = first.eval.eval_set
    q2 = big.query(100, strategy="margin")
    _answer(big, q2.ids, tmp_path, "r2.csv")
    second = big.train()
    v2 = second.eval.eval_set
    assert v1 != v2  # the eval set grew: a new version
    curves = big.curves()
    assert curves.eval_set == v2
    assert [p.model_id for p in curves.current][-2:] == [first.model_id,
                                                              second.model_id]
    assert all(p.eval_set == v2 for p in curves.current)
    assert [p.eval_set for p in curves.as_of][-2:] == [v1, v2]
    # Re-evaluating without a change makes no new version.
    assert big.evaluate().eval_set == v2


def test_relabeling_an_eval_sample_makes_a_new_version(big, tmp_path):
    _first_round(big, tmp_path, k=50)
    q = big.query(50, strategy="random")
    _answer(big, q.ids, tmp_path, "r1.csv")
    v1 = big.train().eval.eval_set
    eval_id = q.ids[q.kinds.index("eval")]
    big.import_labels(write_csv(tmp_path / "fix.csv", ["id", "label"], [[eval_id, "other"]]))
    assert big.evaluate().eval_set != v1


def _verdict_matches_interval(arms: dict) -> None:
    if arms["lo"] > 0:
        assert arms["verdict"].startswith("selection is beating random")
    elif arms["hi"] < 0:
        assert arms["verdict"].startswith("random is beating selection")
    else:
        assert arms["verdict"].startswith("no measurable difference")


def test_lift_verdict_without_control_labels_cross_fits_the_eval_set(big, tmp_path):
    for i in range(4):  # eval labels are a tenth of the paid ones: 16 a round
        q = big.query(160, strategy="margin" if i else "random")
        assert "control" not in q.kinds
        _answer(big, q.ids, tmp_path, f"r{i}.csv")
        report = big.train()
    arms = report.lift["equal_count"]
    assert arms["method"] == "crossfit" and arms["n_labels"] >= 20
    _verdict_matches_interval(arms)
    st = big.status()
    assert st.verdict == arms["verdict"] and "cross-fitted" in st.verdict
    assert f"at {arms['n_labels']} labels each" in st.verdict


@pytest.mark.parametrize("asked", ["ppi", "uniform"])
def test_lift_verdict_uses_the_accuracys_estimator_and_says_which(tmp_path, asked):
    """The equal-count verdict's eval part comes from the project's accuracy estimator
    (PPI++ over the eval split by default, `eval_estimator`) and says which one and on
    how many eval labels."""
    X, y = make_pool(1500, d=8, classes=4, seed=5)
    X = X + np.random.default_rng(5).normal(scale=2.5, size=X.shape).astype(np.float32)
    p = Project.init(tmp_path / "p", eval_rate=0.4, eval_share=0.2)
    if asked == "uniform":
        write(p.store, lambda u: u.settings.set("eval_estimator", "uniform"))
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    for i in range(4):
        q = p.query(200, strategy="margin" if i else "random")
        _answer(p, q.ids, tmp_path, f"r{i}.csv")
        report = p.train()
    arms = report.lift["equal_count"]
    assert arms["estimator"] == asked and arms["eval_labels"] >= 100
    assert f"; {asked} on {arms['eval_labels']} eval labels" in arms["verdict"]
    assert ("PPI++ over" in arms["note"]) == (asked == "ppi")
    _verdict_matches_interval(arms)
    st = p.status()
    assert st.verdict == arms["verdict"]
    # the accuracy beside it, as the dashboard shows it: which estimator, how many eval
    # labels, the interval
    est = st.eval_estimate
    assert est["estimator"] == asked and est["n_labels"] == arms["eval_labels"] == st.labeled_eval
    assert est["lo"] <= est["value"] <= est["hi"] and est["population"] >= est["n_labels"]
    p.close()


def test_lift_with_a_control_slice_measures_each_round(tmp_path):
    X, y = make_pool(1500, d=8, classes=4, seed=3)
    p = Project.init(tmp_path / "p", eval_rate=0.1, control_share=0.2)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    for i in range(3):
        q = p.query(120, strategy="margin" if i else "random")
        _answer(p, q.ids, tmp_path, f"r{i}.csv")
        report = p.train()
    assert report.lift["per_round"]["rounds"] >= 1
    arms = report.lift["equal_count"]
    assert arms["method"] == "control"
    _verdict_matches_interval(arms)
    p.close()


def test_forecast_and_stopping(big, tmp_path):
    with pytest.raises(InputError, match="3 or more label counts"):
        big.forecast(0.9)
    for i in range(4):
        q = big.query(60, strategy="margin")
        _answer(big, q.ids, tmp_path, f"r{i}.csv")
        big.train()
    fc = big.forecast(0.99, next_batch=60)
    assert fc.points == 4 and fc.labels_now > 0
    assert fc.expected_gain["lo"] <= fc.expected_gain["mean"] <= fc.expected_gain["hi"]
    assert fc.more_labels["n"] is None or fc.more_labels["n"] >= 0
    stop = big.stopping(target=0.5, budget=10_000)
    rules = {d["rule"]: d for d in stop.rules}
    assert rules["target_reached"]["stop"] is True  # 4 separable blobs: 0.5 is easy
    assert rules["budget_spent"]["stop"] is False
    assert stop.stop is True


def test_control_share_zero_disables_the_control_arm(tmp_path):
    X, y = make_pool(200)
    p = Project.init(tmp_path / "p", eval_rate=0.0)
    write(p.store, lambda u: u.settings.set("control_share", 0.0))
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    q = p.query(50, strategy="random")
    assert q.kinds == ["selected"] * 50
    np.testing.assert_array_equal(np.sort(q.rows), np.unique(q.rows))
    p.close()


def test_pending_eval_rows_are_labeled_in_random_order_not_file_order(tmp_path):
    # A file sorted by class: eval rows taken in row order would all be of class c0.
    X, y = make_pool(2000, classes=4, seed=5)
    order = np.argsort(y, kind="stable")
    p = Project.init(tmp_path / "p", eval_rate=0.2)
    p.ingest(write_pool_csv(tmp_path / "sorted.csv", X[order], y[order]), id="id",
             vector_prefix="v")
    _first_round(p, tmp_path)
    q = p.query(100, strategy="random")
    truth = _truth(p)
    eval_classes = {truth[i] for i, k in zip(q.ids, q.kinds, strict=True) if k == "eval"}
    assert len(eval_classes) >= 3
    p.close()


def test_eval_split_stratified_by_a_metadata_column(tmp_path):
    X, y = make_pool(1200, classes=4, seed=6)
    p = Project.init(tmp_path / "p", eval_rate=0.1, eval_stratify="truth")
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    truth = {r: meta["truth"] for b in read(p.store, lambda u: list(u.samples.iter())) for r, _, _, meta in b}
    eval_rows = read(p.store, lambda u: u.samples.rows_by_split("eval"))
    for cls in np.unique(y):
        n_cls = int((y == cls).sum())
        n_eval = sum(1 for r in eval_rows if truth[int(r)] == cls)
        assert abs(n_eval - 0.1 * n_cls) <= 1  # each stratum gets its share
    p.close()


def test_stratify_column_missing_is_a_clear_error(tmp_path):
    X, y = make_pool(50)
    p = Project.init(tmp_path / "p", eval_stratify="region")
    with pytest.raises(InputError, match="stratified by column 'region'"):
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", vector_prefix="v")
    assert read(p.store, lambda u: u.samples.count()) == 0
    p.close()


def test_train_reports_stopping_each_round(big, tmp_path):
    _first_round(big, tmp_path, k=50)
    q = big.query(100, strategy="random")
    _answer(big, q.ids, tmp_path, "r.csv")
    report = big.train()
    assert report.stopping.startswith(("continue", "stop"))


def test_no_stop_and_no_zero_width_forecast_on_a_small_eval_set(big, tmp_path):
    # Four rounds: predictions have settled and the eval set (36 labels) reads 1.000,
    # but it is under the size its ±3-point target needs. No rule may say "stop" on
    # it, and a forecast for a target the eval set cannot show reached is not 0 to 0.
    for i in range(4):
        q = big.query(60, strategy="margin")
        _answer(big, q.ids, tmp_path, f"r{i}.csv")
        big.train()
    stop = big.stopping(budget=10_000)
    assert stop.stop is False
    assert stop.reason.startswith("not enough evidence yet")
    ev = stop.evidence
    assert not ev["enough"] and ev["eval_labels_to_resolve"] == ev["eval_wanted"] - ev[
        "eval_labeled"] > 0
    fc = big.forecast(0.99, next_batch=60)
    assert not fc.shown
    more = fc.more_labels
    assert more["hi"] is None or more["hi"] > 0  # never "0 to 0" for a target not shown
    # A target below the eval interval's lower end is shown reached: 0 more labels.
    easy = big.forecast(0.6, next_batch=60)
    assert easy.shown and easy.more_labels == {"n": 0.0, "lo": 0.0, "hi": 0.0}
    assert big.stopping(target=0.6).stop is True  # the interval's lower end shows it
