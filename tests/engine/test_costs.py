"""Money use cases on both catalogs: pools price every answer, the compute ledger keeps
every command, and `costs` adds up to exactly the events and the commands' records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.costs import observed
from longtail.engine.labels import LabelEvent
from longtail.errors import InputError
from tests.conftest import make_pool, snapshot, write_pool_csv
from tests.reads import read, write


@pytest.fixture
def labeled(project, tmp_path: Path):
    X, y = make_pool(n=200, classes=3)
    project.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), id="id", text="text",
                   vector_prefix="v", metadata=["truth", "source"])
    # these tests were sized for eval rows a fifth of each batch (the default was 0.2)
    write(project.store, lambda u: u.settings.set("eval_share", 0.2))
    return project, y


def _answer(project, result, y, who=None, seconds=None, **extra):
    events = [LabelEvent(id=i, label=str(y[int(i[1:])]), annotator=who,
                         seconds=seconds(k) if seconds else None)
              for k, i in enumerate(result.ids)]
    return project.record_labels(events, **extra)


def test_every_answer_is_priced_by_its_pool_and_idle_time_is_trimmed(labeled):
    project, y = labeled
    project.add_pool("crowd", "20/h", members=["ann"])
    project.add_pool("expert", "80/h", where=["label=c2"])
    first = project.query(20, strategy="random", seed=1)
    # ann answers every item in 30 s, except one lease left open for an hour.
    _answer(project, first, y, who="ann", seconds=lambda k: 3600.0 if k == 0 else 30.0)
    second = project.query(10, strategy="random", seed=2)
    _answer(project, second, y, seconds=lambda k: 60.0)  # a vendor file: no annotator
    report = project.costs()
    cap = max(60.0, 5 * 30.0)
    assert report["cap_seconds"] == cap
    truth2 = [str(y[int(i[1:])]) for i in second.ids]
    n_exp = sum(t == "c2" for t in truth2)
    # ann's answers are crowd's (her pool), whatever their class; the vendor's answers
    # are priced by the pool the class needs, else the default pool (crowd, made first).
    want = (19 * 30 + cap) / 3600 * 20 + n_exp * 60 / 3600 * 80 + (10 - n_exp) * 60 / 3600 * 20
    assert report["total"]["label_money"] == pytest.approx(want, rel=1e-6)
    assert report["by_pool"]["expert"]["events"] == n_exp
    by_round = {r["round"]: r for r in report["rounds"]}
    assert by_round[first.round_id]["events"] == 20 and by_round[second.round_id]["events"] == 10


def test_relabels_and_overlap_are_spend_too(labeled):
    project, y = labeled
    project.add_pool("crowd", "36/h", default=True)
    r = project.query(5, strategy="random", seed=1)
    _answer(project, r, y, who="ann", seconds=lambda k: 10.0)
    # A second annotator answers the same rows (overlap on import: no round id) and a
    # third changes one label later: both are paid for.
    _answer(project, r, y, who="bob", seconds=lambda k: 10.0)
    project.record_labels([LabelEvent(id=r.ids[0], label="c0" if y[int(r.ids[0][1:])] != "c0"
                                      else "c1", annotator="cy", seconds=10.0)])
    t = project.costs()["total"]
    assert t["events"] == 11 and t["first"] == 5 and t["overlap"] + t["relabel"] == 6
    assert t["label_money"] == pytest.approx(11 * 10 / 3600 * 36)


def test_ledger_sums_equal_the_events_and_the_commands_records(labeled):
    project, y = labeled
    project.add_pool("crowd", "20/h", default=True)
    project.set_compute_rates(cpu="3600/h")  # a dollar a CPU-second: compute shows
    rng = np.random.default_rng(0)
    for k in range(3):
        r = project.query(15, seed=k)
        _answer(project, r, y, who="ann", seconds=lambda _: float(rng.uniform(5, 40)))
        project.train()
    report = project.costs()
    with project.store.unit_of_work() as uow:
        runs = uow.compute.list()
        events = uow.labels.events()
    commands = [x["command"] for x in runs]
    assert commands.count("query") == 3 and commands.count("train") == 3
    assert commands.count("record-labels") == 3 and commands[0] == "ingest"
    train = next(x for x in runs if x["command"] == "train")
    assert {"train", "evaluate"} <= set(train["phases"])
    assert abs(sum(p["cpu_seconds"] for p in train["phases"].values())
               - train["cpu_seconds"]) < 1e-3
    query = next(x for x in runs if x["command"] == "query")
    assert "select" in query["phases"] and query["round_id"] is not None
    cpu = sum(x["cpu_seconds"] for x in runs)
    total = report["total"]
    assert total["cpu_seconds"] == pytest.approx(cpu, abs=1e-4)
    assert total["compute_money"] == pytest.approx(cpu, rel=1e-6)  # 3600 per CPU-hour
    assert sum(r["cpu_seconds"] for r in report["rounds"]) == pytest.approx(cpu, abs=1e-4)
    secs = observed.trim(np.array([e["seconds"] for e in events], float), report["cap_seconds"])
    assert total["label_money"] == pytest.approx(secs.sum() / 3600 * 20, abs=1e-5)
    assert sum(r["label_money"] for r in report["rounds"]) == pytest.approx(
        total["label_money"], abs=1e-4)
    status = project.status().spend
    assert status["compute_money"] == pytest.approx(total["compute_money"], abs=1e-5)
    assert status["label_money"] == pytest.approx(total["label_money"], abs=1e-3)
    hist = project.history()
    assert sum(h.spend["label_money"] for h in hist) == pytest.approx(
        total["label_money"], abs=1e-3)


def test_bad_pool_input_changes_nothing(labeled):
    project, _ = labeled
    project.add_pool("crowd", "20/h")
    before = snapshot(project)
    for call in (lambda: project.add_pool("expert"),  # a new pool needs a rate
                 lambda: project.add_pool("expert", "lots"),
                 lambda: project.add_pool("bad name!", "3/h"),
                 lambda: project.add_pool("expert", "80/h", where=["fraud"]),
                 lambda: project.remove_pool("nobody"),
                 lambda: project.set_compute_rates(cpu="-1")):
        with pytest.raises(InputError):
            call()
    assert snapshot(project) == before


def test_a_member_belongs_to_one_pool(labeled):
    project, _ = labeled
    project.add_pool("crowd", "20/h", members=["ann", "bob"])
    project.add_pool("expert", "80/h", members=["bob"])
    pools = {p["name"]: p for p in project.pools()}
    assert pools["crowd"]["members"] == ["ann"] and pools["expert"]["members"] == ["bob"]
    assert pools["crowd"]["default"] and not pools["expert"]["default"]
    project.add_pool("expert", default=True)
    pools = {p["name"]: p for p in project.pools()}
    assert pools["expert"]["default"] and not pools["crowd"]["default"]


def test_train_gives_status_a_money_verdict(labeled):
    project, y = labeled
    project.add_pool("crowd", "20/h", default=True)
    assert project.status().roi is None  # nothing trained yet: no verdict, says why
    assert "no money verdict yet" in project.status().money_verdict
    for k in range(5):  # the eval set holds at most a tenth of the labels paid
        r = project.query(30, seed=k)
        _answer(project, r, y, who="ann", seconds=lambda _: 20.0)
        project.train()
    st = project.status()
    roi = st.roi
    assert roi is not None and roi["unit"] == "money" and roi["n_eval"] >= 10
    assert roi["lo"] <= roi["saving"] <= roi["hi"]
    assert len(roi["active_curve"]) == 5 and 0 < roi["random_sizes"][-1] < roi["n_eval"]
    assert st.money_verdict == roi["verdict"]
    # The random arm is cached per eval version: a second train refits nothing of it.
    cached = read(project.store, lambda u: u.settings.get("roi_random_arm"))
    project.train(force=True)
    assert read(project.store, lambda u: u.settings.get("roi_random_arm")) == cached


def test_query_never_exceeds_the_money_budget_at_predicted_cost(labeled):
    project, y = labeled
    before = snapshot(project)
    with pytest.raises(InputError, match="prices"):
        project.query(budget_money=5.0)  # no pool: nothing to price with
    assert snapshot(project) == before
    project.add_pool("crowd", "36/h", default=True)
    r = project.query(20, strategy="random", seed=1)
    # Long texts' rows take longer: row parity stands for it here.
    _answer(project, r, y, who="ann", seconds=lambda k: 5.0 + 40.0 * (int(r.ids[k][1:]) % 2))
    q = project.query(budget_money=3.0, strategy="margin")
    money = q.log["money"]
    assert 0 < money["predicted"] <= 3.0 and money["kept"] == len(q.rows)
    from longtail.engine.costs import predicted_money

    assert predicted_money(project.store, project._settings(), np.array(q.rows)).sum() <= 3.0
    before = snapshot(project)
    for bad in (-1.0, float("nan"), 1e-9):
        with pytest.raises(InputError, match="budget-money"):
            project.query(budget_money=bad)
    assert snapshot(project) == before


def test_work_packages_split_the_batch_and_export_each(labeled, tmp_path: Path):
    import csv

    project, y = labeled
    project.add_pool("crowd", "20/h", members=["ann", "bob", "cy"])
    r = project.query(20, strategy="random", seed=1)
    _answer(project, r, y, who="ann", seconds=lambda k: 5.0 + 40.0 * (int(r.ids[k][1:]) % 2))
    q = project.query(30, strategy="random", seed=2, pool="crowd", overlap=0.2,
                      out_dir=tmp_path / "pk")
    packages = q.log["packages"]
    assert [p["package"] for p in packages] == ["ann", "bob", "cy"]
    files = {p["package"]: [row["id"] for row in csv.DictReader(
        open(tmp_path / "pk" / f"package-{p['package']}.csv"))] for p in packages}
    ids = [i for got in files.values() for i in got]
    assert set(ids) == set(q.ids) and len(ids) == 30 + 6  # 20% labeled twice
    assert all(len(set(got)) == len(got) for got in files.values())
    loads = [p["predicted_seconds"] for p in packages]
    assert max(loads) - min(loads) <= 0.5 * max(loads)
    before = snapshot(project)
    for bad in (dict(annotators=0), dict(pool="experts"), dict(out_dir=tmp_path / "x"),
                dict(annotators=2, overlap=1.5), dict(annotators=500)):
        with pytest.raises(InputError):
            project.query(10, **bad)
    assert snapshot(project) == before


def test_cost_aware_query_picks_by_return_on_investment(labeled):
    project, y = labeled
    project.add_pool("crowd", "36/h", default=True)
    project.configure("cost_tradeoff", 1.0)  # Haertel et al.'s ROI: cost weighs fully
    X, _ = make_pool(n=200, classes=3)
    slow = X[:, 0] > np.median(X[:, 0])  # a cost the vectors tell (long texts, say)
    r = project.query(60, strategy="random", seed=1)
    _answer(project, r, y, who="ann", seconds=lambda k: 5.0 + 60.0 * slow[int(r.ids[k][1:])])
    project.train()
    blind = project.query(20, strategy="margin", seed=3)
    project.cancel_round(blind.round_id)
    q = project.query(20, strategy="margin", seed=3, cost_aware=True)
    info = q.log["cost_aware"]
    assert info["applied"], info  # never measured: cost-aware is tried first
    assert len(q.rows) == len(blind.rows) and info["kept"] == q.kinds.count("selected")
    assert info["shortlist"] > info["kept"]
    # Cheap rows are preferred among the strategy's shortlist.
    assert info["cost_mean_kept"] < info["cost_mean_shortlist"]
    picked = [slow[int(i[1:])] for i, k in zip(q.ids, q.kinds, strict=True) if k == "selected"]
    shown = [slow[int(i[1:])] for i, k in zip(blind.ids, blind.kinds, strict=True)
             if k == "selected"]
    assert np.mean(picked) < np.mean(shown)


def test_cost_aware_choice_measures_the_latest_round_once_a_model_was_trained_on_it(labeled):
    project, y = labeled
    project.add_pool("crowd", "36/h", default=True)
    X, _ = make_pool(n=200, classes=3)
    slow = X[:, 0] > np.median(X[:, 0])

    def seconds_of(result):
        return lambda k: 5.0 + 60.0 * slow[int(result.ids[k][1:])]

    r = project.query(60, strategy="random", seed=1)
    _answer(project, r, y, who="ann", seconds=seconds_of(r))
    project.train()
    logs = []
    for _ in range(3):
        q = project.query(20, strategy="margin", seed=3, cost_aware=True)
        logs.append(q.log["cost_aware"])
        _answer(project, q, y, who="ann", seconds=seconds_of(q))
        project.train()
    # Once a model was trained on the cost-aware round's labels, that round counts (not
    # only when a later round exists): the next round tries cost-blind, and the third
    # decides on both measurements.
    assert [x["applied"] for x in logs[:2]] == [True, False], logs
    assert logs[1]["plays"] == {"aware": 1, "blind": 0}
    assert logs[1]["why"].startswith("cost-blind not measured yet")
    assert logs[2]["plays"] == {"aware": 1, "blind": 1}


def test_with_pools_at_different_rates_cost_aware_weighs_the_pool_not_the_time(labeled):
    # c0 needs the expert pool (4x the crowd's rate); time varies with the vectors on
    # every class. What selection weighs is the predicted rate: c0's rows cost more,
    # slow and fast crowd rows alike (weighing time too bought the shortest items,
    # which teach least: bench/_cost_tune.py on digits).
    from longtail.engine.costs import predicted_money, selection_cost

    project, y = labeled
    project.add_pool("crowd", "20/h", default=True)
    project.add_pool("expert", "80/h", where=["label=c0"])
    X, _ = make_pool(n=200, classes=3)
    slow = X[:, 0] > np.median(X[:, 0])
    r = project.query(120, strategy="random", seed=1)
    _answer(project, r, y, who="ann", seconds=lambda k: 5.0 + 60.0 * slow[int(r.ids[k][1:])])
    rows = np.arange(200)
    settings = project._settings()
    cost = selection_cost(project.store, settings, rows)
    expert, crowd = cost[y == "c0"], cost[y != "c0"]
    assert np.median(expert) > 2 * np.median(crowd)
    crowd_slow = np.median(cost[(y != "c0") & slow])
    crowd_fast = np.median(cost[(y != "c0") & ~slow])
    assert 0.5 < crowd_slow / crowd_fast < 2
    money = predicted_money(project.store, settings, rows)  # the whole money: time counts
    assert np.median(money[(y != "c0") & slow]) > 2 * np.median(money[(y != "c0") & ~slow])
