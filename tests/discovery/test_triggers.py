"""Standing triggers: the rule language (fuzzed: it never fails except with an
InputError, and it means what a reference evaluator says), and triggers firing on
ingest and round into the queue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from longtail.cli import app
from longtail.discovery.triggers import parse
from longtail.errors import InputError
from tests.reads import read

from .conftest import make_tail_pool, write_tail_csv

TOKENS = ["meta.country", "confidence", "predicted", "novelty", "text", "and", "or", "not",
          "(", ")", "==", "!=", "<", "<=", ">", ">=", "in", "[", "]", ",", "contains",
          '"DE"', "'x'", "0.5", "-3", "1e3", "true", "false", "similar(", '"s1"', ".", "meta",
          "\\", '"', "'", "eval(", "__import__", "#", "\n", "é"]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_an_input_error(text):
    try:
        parse(text)
    except InputError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_any_token_soup_parses_or_is_an_input_error(tokens):
    try:
        rule = parse(" ".join(tokens))
    except InputError:
        return
    n = 3
    frame = {"__n__": n, "confidence": np.array([0.1, 0.6, np.nan]),
             "novelty": np.array([0.9, 0.2, np.nan]),
             "predicted": np.array(["a", None, "b"], object),
             "text": np.array(["x DE", "", None], object),
             "meta.country": np.array(["DE", 3, None], object),
             "meta.meta": np.array([None, None, None], object)}
    for k in rule.fields:
        frame.setdefault(k, np.full(n, np.nan))
    out = rule(frame)
    assert out.dtype == bool and out.shape == (n,)


# A generator of valid rules and the reference meaning of each, row by row.
NUM_FIELDS = ["confidence", "novelty"]
OPS = ["==", "!=", "<", "<=", ">", ">="]


def _num_cmp(draw_op, field, value):
    import operator

    fn = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}[draw_op]
    return (f"{field} {draw_op} {value!r}",
            lambda row: row[field] is not None and fn(row[field], value))


atoms = st.one_of(
    st.builds(_num_cmp, st.sampled_from(OPS), st.sampled_from(NUM_FIELDS),
              st.sampled_from([0.0, 0.25, 0.5, 1.0])),
    st.sampled_from([
        ('meta.country == "DE"', lambda r: r["meta.country"] == "DE"),
        ('meta.country != "DE"', lambda r: r["meta.country"] not in (None, "DE")),
        ('predicted in ["a", "c"]', lambda r: r["predicted"] in ("a", "c")),
        ('text contains "card"', lambda r: r["text"] is not None and "card" in r["text"].lower()),
    ]))


def _combine(children):
    return st.one_of(
        st.builds(lambda a, b: (f"({a[0]}) and ({b[0]})", lambda r: a[1](r) and b[1](r)),
                  children, children),
        st.builds(lambda a, b: (f"({a[0]}) or ({b[0]})", lambda r: a[1](r) or b[1](r)),
                  children, children),
        st.builds(lambda a: (f"not ({a[0]})", lambda r: not a[1](r)), children))


rules = st.recursive(atoms, _combine, max_leaves=8)
rows = st.lists(st.fixed_dictionaries({
    "confidence": st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.4, 0.5, 0.9, 1.0])),
    "novelty": st.one_of(st.none(), st.floats(0, 1)),
    "meta.country": st.sampled_from([None, "DE", "FR"]),
    "predicted": st.sampled_from([None, "a", "b", "c"]),
    "text": st.sampled_from([None, "", "my Card", "refund"]),
}), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules, rows)
def test_rules_mean_what_the_reference_says(rule, data):
    text, ref = rule
    parsed = parse(text)
    frame = {"__n__": len(data)}
    for k in data[0]:
        vals = [r[k] for r in data]
        frame[k] = (np.array([np.nan if v is None else v for v in vals], float)
                    if k in NUM_FIELDS else np.array(vals, dtype=object))
    got = parsed(frame)
    assert got.tolist() == [bool(ref(r)) for r in data], text


@pytest.mark.parametrize("rule, message", [
    ("confidence < 'x'", "number compared with text"),
    ("colour == 'red'", "unknown field"),
    ("predicted > 'a'", "== or !="),
    ("confidence", "syntax error"),
    ("((confidence < 1)", "syntax error"),
    ("__import__('os')", "syntax error"),
    ("not " * 300 + "confidence < 1", "nested deeper"),
])
def test_bad_rules_say_what_is_wrong(rule, message):
    with pytest.raises(InputError, match=message):
        parse(rule)


def test_deep_parentheses_are_fine():
    rule = parse("(" * 300 + "confidence < 1" + ")" * 300)
    assert rule({"__n__": 2, "confidence": np.array([0.5, 2.0])}).tolist() == [True, False]


# --------------------------------------------------------------------------- the engine


def test_a_trigger_queues_matching_rows_of_each_ingest_and_the_next_round_takes_them(
        tail_project, tmp_path):
    p, (X, y, source) = tail_project
    p.add_trigger("mobile", 'meta.source == "mobile"', priority=3)
    p.add_trigger("unsure", 'predicted == "a" and confidence < 0.5')
    X2, y2, s2 = make_tail_pool(n=100, seed=7)
    report = p.ingest(write_tail_csv(tmp_path / "new.csv", X2, y2, s2, start=1000),
                      text="text", vector_prefix="v", metadata=["source"])
    new_pool = set(read(p.store, lambda u: u.samples.rows_by_split("pool")).tolist()) & set(range(400, 500))
    want = sum(1 for r in new_pool if s2[r - 400] == "mobile")
    assert want > 0 and report.triggers["mobile"] == want
    queue = p.queue()
    assert sum(1 for q in queue if q["source"] == "trigger:mobile") == want
    st = p.status()
    t = {x["name"]: x for x in st.triggers}
    assert t["mobile"]["hits"] == want and t["mobile"]["last"]["on"] == "ingest new.csv"
    assert st.queued == len(queue)
    q = p.query(want + 5, strategy="random")
    taken = [r for r, k in zip(q.rows, q.kinds, strict=True) if k == "queued"]
    assert len(taken) >= want and all(s2[r - 400] == "mobile" for r in taken[:want])
    # the round ran the triggers again: mobile rows of the first file are queued now
    assert any(x["on"].startswith("round") for x in p.triggers()[0]["runs"])
    assert report.drift is not None and report.drift["drifted"] is False


def test_similar_to_an_exemplar_and_drift_of_a_new_region(tail_project, tmp_path):
    p, (X, y, source) = tail_project
    d = [i for i in range(len(y)) if y[i] == "d"]
    r = p.test_trigger(f'similar("s{d[0]}") >= 0.8', examples=3)
    assert r["hits"] > 0 and all(y[e["row"]] == "d" for e in r["examples"])
    far = np.random.default_rng(5).normal(size=(60, X.shape[1])).astype(np.float32) + 40
    rep = p.ingest(write_tail_csv(tmp_path / "far.csv", far, np.array(["a"] * 60),
                                  np.array(["web"] * 60), start=5000),
                   text="text", vector_prefix="v", metadata=["source"])
    assert rep.drift["drifted"] and rep.drift["beyond_p95"] > 0.9


def test_bad_triggers_change_nothing(tail_project):
    p, _ = tail_project
    p.add_trigger("ok", "confidence < 0.2")
    for args, message in [(("ok", "confidence < 0.3"), "exists"),
                          (("bad name!", "confidence < 0.3"), "trigger name"),
                          (("x", "confidence <"), "syntax"),
                          (("x", 'similar("nope") > 0.5'), "unknown sample")]:
        with pytest.raises(InputError, match=message):
            p.add_trigger(*args)
    with pytest.raises(InputError, match="no trigger"):
        p.remove_trigger("missing")
    assert [t["name"] for t in p.triggers()] == ["ok"]


def test_triggers_cli(tail_project):
    p, _ = tail_project
    root = str(p.path)
    run = CliRunner().invoke
    res = run(app, ["triggers", "add", "low", "confidence < 0.99", "-p", root])
    assert res.exit_code == 0, res.output
    res = run(app, ["triggers", "test", "low", "-p", root, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["hits"] > 0
    res = run(app, ["triggers", "add", "bad", "confidence <", "-p", root])
    assert res.exit_code == 2 and "syntax" in res.output
    res = run(app, ["triggers", "list", "-p", root, "--json"])
    assert [t["name"] for t in json.loads(res.output)] == ["low"]
    res = run(app, ["status", "-p", root])
    assert "trigger low" in res.output
    res = run(app, ["triggers", "remove", "low", "-p", root])
    assert res.exit_code == 0 and p.triggers() == []
