"""Consensus policies over append-only label events, and agreement between annotators."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine.consensus import krippendorff_alpha
from longtail.errors import InputError
from longtail.evaluation.stopping import coded_kappa
from longtail.store.repos_versions import resolve_labels
from tests.conftest import snapshot, write_csv
from tests.reads import read

runner = CliRunner()


def test_policies_resolve_the_same_events_differently():
    # (id, row, label, annotator): row 0 two votes for a, one (latest) for b;
    # row 1: alice relabels herself (one vote), bob and carol split: a tie, latest wins.
    events = [(1, 0, "a", "alice"), (2, 0, "a", "bob"), (3, 0, "b", "carol"),
              (4, 1, "x", "alice"), (5, 1, "y", "alice"), (6, 1, "x", "bob"),
              (7, 1, "z", "carol"), (8, 2, "q", None)]
    assert resolve_labels(events, {"policy": "latest"}) == {0: "b", 1: "z", 2: "q"}
    # row 1: y, x, z one vote each; z is the most recent vote
    assert resolve_labels(events, {"policy": "majority"}) == {0: "a", 1: "z", 2: "q"}
    trusted = {"policy": "trusted", "annotators": ["carol", "alice"]}
    assert resolve_labels(events, trusted) == {0: "b", 1: "z", 2: "q"}
    trusted = {"policy": "trusted", "annotators": ["alice"]}
    assert resolve_labels(events, trusted) == {0: "a", 1: "y", 2: "q"}


@pytest.fixture
def voted(loaded, tmp_path):
    """alice and bob agree on 12 samples; carol, imported last, differs on 4."""
    rows = [f"s{r}" for r in loaded.candidates()[:12]]
    truth = {b[1]: b[3]["truth"] for chunk in read(loaded.store,
                                                   lambda u: list(u.samples.iter())) for b in chunk}
    for who in ("alice", "bob", "carol"):
        lab = {i: truth[i] if who != "carol" or k >= 4 else "odd" for k, i in enumerate(rows)}
        f = write_csv(tmp_path / f"{who}.csv", ["id", "label", "who", "secs"],
                      [[i, lab[i], who, 2.0 + k] for k, i in enumerate(rows)])
        loaded.import_labels(f, annotator="who", seconds="secs")
    return loaded, rows, truth, tmp_path


def test_each_annotators_agreeing_label_is_kept_and_reimport_changes_nothing(voted):
    p, rows, truth, tmp_path = voted
    assert read(p.store, lambda u: u.labels.count()) == 36
    again = p.import_labels(tmp_path / "bob.csv", annotator="who", seconds="secs")
    assert again["new_labels"] == 0 and read(p.store, lambda u: u.labels.count()) == 36


def test_changing_the_policy_is_a_new_version_not_a_rewrite(voted):
    p, rows, truth, tmp_path = voted
    p.query(5, strategy="random")
    v_latest = p.versions()[-1].id
    odd = {f"s{r}" for r, lab in read(p.store, lambda u: u.labels.current()).items() if lab == "odd"}
    assert odd == set(rows[:4])
    events_before = read(p.store, lambda u: u.labels.count())
    r = p.set_consensus("majority")
    assert r.changed and r.relabeled == 4 and p.versions()[-1].reason == "policy"
    assert read(p.store, lambda u: u.labels.count()) == events_before
    current = read(p.store, lambda u: u.labels.current())
    assert "odd" not in current.values()
    _, y = p.labeled("pool")
    assert "odd" not in set(y.tolist())  # training follows the policy
    old = p.version_labels(v_latest)
    assert sum(lab == "odd" for lab in old.values()) == 4  # the earlier version is intact
    d = p.diff(v_latest, r.version)
    assert d.counts == {"added": 0, "removed": 0, "changed": 4}
    same = p.set_consensus("majority")
    assert not same.changed and same.version == r.version
    t = p.set_consensus("trusted", ["carol"])
    assert t.relabeled == 4 and p.consensus().to_dict() == {"policy": "trusted", "annotators": ["carol"]}


def test_bad_policies_are_refused_and_write_nothing(voted):
    p, *_ = voted
    before = snapshot(p)
    for args, msg in [(("loudest",), "not one of latest, majority, trusted"),
                      (("trusted",), "needs annotators"),
                      (("majority", ["alice"]), "takes no annotators"),
                      (("trusted", ["a", "a"]), "given twice")]:
        with pytest.raises(InputError, match=msg):
            p.set_consensus(*args)
    assert snapshot(p) == before


def test_kappa_matches_scikit_learn():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 4, 200))
    assert coded_kappa(a, b, 4) == pytest.approx(cohen_kappa_score(a, b))
    assert coded_kappa(np.zeros(5, int), np.zeros(5, int), 1) is None


def test_alpha_on_krippendorffs_worked_example():
    # Krippendorff, "Computing Krippendorff's alpha-reliability" (2011): 4 coders,
    # 12 units, nominal alpha 0.743. Rows: coders; 0: no value.
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, 0, 0, 0],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, 0, 3],
                     [0, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 0],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, 0]])
    V = np.stack([np.bincount(col[col > 0], minlength=6)[1:] for col in data.T]).astype(float)
    V = V[V.sum(axis=1) >= 2]
    assert krippendorff_alpha(V) == pytest.approx(0.743, abs=5e-4)


def test_annotator_report(voted):
    p, rows, truth, tmp_path = voted
    r = p.annotators(bootstrap=200)
    people = r.annotators
    assert set(people) == {"alice", "bob", "carol"}
    assert people["alice"]["labels"] == 12 and people["alice"]["samples"] == 12
    assert people["alice"]["seconds_total"] == pytest.approx(sum(2.0 + k for k in range(12)))
    assert people["carol"]["agreement_with_consensus"] == 1.0  # latest: carol's own labels
    pairs = {(x["a"], x["b"]): x for x in r.pairs}
    assert pairs[("alice", "bob")]["kappa"] == pytest.approx(1.0)
    ac = pairs[("alice", "carol")]
    assert ac["agreement"] == pytest.approx(8 / 12)
    assert ac["lo"] <= ac["kappa"] <= ac["hi"] and ac["kappa"] < 1
    k = r.krippendorff
    assert k["samples"] == 12 and k["annotators"] == 3 and k["lo"] <= k["alpha"] <= k["hi"]
    assert r.per_class["odd"]["agreement"] == 0.0
    p.set_consensus("majority")
    assert p.annotators(bootstrap=0).annotators["carol"]["agreement_with_consensus"] == \
        pytest.approx(8 / 12)


def test_cli_consensus_and_annotators(voted):
    p, *_ = voted
    proj = str(p.path)
    r = runner.invoke(app, ["consensus", "majority", "-p", proj, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["relabeled"] == 4
    r = runner.invoke(app, ["consensus", "trusted", "-p", proj])
    assert r.exit_code == 2 and "needs annotators" in r.output
    r = runner.invoke(app, ["annotators", "-p", proj, "--bootstrap", "50", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["pairs"]) == 3
    r = runner.invoke(app, ["annotators", "-p", proj, "--bootstrap", "50"])
    assert r.exit_code == 0 and "Krippendorff" in r.stdout
