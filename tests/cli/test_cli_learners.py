"""Three learner families through the CLI: each trains, is saved without pickle, loads
back in a later command and drives `query`."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli_engine import _labeled_project, ok


@pytest.mark.parametrize("learner, params", [
    ("sklearn.ensemble.RandomForestClassifier", ["n_estimators=20", "random_state=0"]),
    ("sklearn.neighbors.KNeighborsClassifier", ["n_neighbors=5", "weights=\"distance\""]),
    ("pipeline", ['steps=["sklearn.preprocessing.StandardScaler", '
                  '"sklearn.linear_model.LogisticRegression"]']),
])
def test_a_learner_family_trains_saves_loads_and_queries_from_the_cli(tmp_path, learner,
                                                                      params):
    proj = _labeled_project(tmp_path)
    args = ["train", "-p", proj, "--learner", learner, "--json"]
    for p in params:
        args += ["--learner-param", p]
    trained = json.loads(ok(args).stdout)
    assert trained["learner"] == learner and trained["model_id"] >= 2
    # A later command loads it (from its file, no pickle) to score the pool.
    q = json.loads(ok(["query", "-p", proj, "-n", "15", "--strategy", "margin",
                       "--json"]).stdout)
    assert len(q["rows"]) == 15
    rounds = json.loads(ok(["rounds", "-p", proj, "--json"]).stdout)
    last = rounds[-1] if isinstance(rounds, list) else rounds["rounds"][-1]
    assert last["status"] == "open"
    evaluated = json.loads(ok(["evaluate", "-p", proj, "--json"]).stdout)
    assert evaluated["model_id"] == trained["model_id"]
