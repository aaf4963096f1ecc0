"""Slice 3: the admin routes: status, start a round, rounds and history, export of the
open round's tasks, annotators."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from longtail.cli import app as cli_app
from longtail.engine import data, users
from longtail.engine.settings import Settings
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import Store
from tests.conftest import make_pool, write_pool_csv


@pytest.fixture
def loaded(tmp_path):
    """A project of 200 samples with precomputed vectors, and its users' headers."""
    st = Store.create(tmp_path / "p", {"seed": 0, "eval_rate": 0.1, "hashing": 2})
    X, y = make_pool(200)
    data.ingest(st, Settings.load(st), write_pool_csv(tmp_path / "pool.csv", X, y), id="id",
                text="text", vector_prefix="v")
    heads = {n: {"Authorization": f"Bearer {users.add_user(st, n, r)[1]}"}
             for n, r in (("ann", "annotator"), ("bob", "annotator"), ("root", "admin"))}
    yield st, heads
    st.close()


def test_start_a_round_then_its_tasks_are_leased_exported_and_counted(loaded):
    st, h = loaded
    c = TestClient(create_app(st.root, ServerSettings(max_page=50)))
    r = c.post("/admin/rounds", headers=h["root"], json={"budget": 12, "strategy": "random"})
    assert r.status_code == 200, r.text
    rnd = r.json()
    assert rnd["size"] == 12 and sum(rnd["kinds"].values()) == 12 and rnd["round_id"] == 1
    ex = c.get("/admin/export", headers=h["root"]).json()
    assert ex["round_id"] == 1 and ex["total"] == 12 and [t["position"] for t in ex["tasks"]] == \
        list(range(12))
    first = ex["tasks"][0]
    t = c.post("/tasks/lease", headers=h["ann"]).json()["task"]
    assert (t["id"], t["sample_id"]) == (first["id"], first["sample_id"])
    c.post(f"/tasks/{t['id']}/label", headers=h["ann"], json={"label": "c1", "seconds": 2})
    t2 = c.post("/tasks/lease", headers=h["ann"]).json()["task"]
    c.post(f"/tasks/{t2['id']}/label", headers=h["ann"], json={"kind": "skip", "seconds": 1})
    c.post("/tasks/lease", headers=h["bob"])
    page = c.get("/admin/export?offset=0&limit=3", headers=h["root"]).json()["tasks"]
    assert [(x["done"], x["leased"], x["holders"]) for x in page] == \
        [(1, 0, []), (0, 1, ["bob"]), (0, 0, [])]
    assert {x["kind"] for x in ex["tasks"]} <= {"selected", "control", "eval"}
    ann = {a["annotator"]: a for a in c.get("/admin/annotators", headers=h["root"]).json()}
    assert (ann["ann"]["label"], ann["ann"]["skip"], ann["ann"]["seconds"]) == (1, 1, 3.0)
    assert ann["ann"]["seconds_per_answer"] == 1.5 and ann["bob"]["label"] == 0
    status = c.get("/admin/status", headers=h["root"]).json()
    assert status["annotations"] == 2 and status["open_rounds"] == 1 and status["samples"] == 200
    rounds = c.get("/admin/rounds", headers=h["root"]).json()
    assert [(x["id"], x["status"], x["size"], x["labeled"]) for x in rounds] == [(1, "open", 12, 1)]
    # The route answers what `longtail history --json` prints: the run history, per round.
    hist = c.get("/admin/history", headers=h["root"]).json()
    assert [(x["round"], x["status"], x["size"]) for x in hist] == [(1, "open", 12)]
    cli = CliRunner().invoke(cli_app, ["history", "-p", str(st.root), "--json"])
    assert cli.exit_code == 0 and json.loads(cli.stdout) == hist
    curves = c.get("/admin/curves", headers=h["root"]).json()
    assert curves["current"] == [] and "no lift" in curves["verdict"]


def test_admin_bad_input(loaded):
    st, h = loaded
    c = TestClient(create_app(st.root, ServerSettings(max_page=50)))
    r = c.get("/admin/export", headers=h["root"])
    assert r.status_code == 404 and "no open round" in r.json()["detail"]
    assert c.post("/admin/rounds", headers=h["root"], json={"budget": 0}).status_code == 422
    r = c.post("/admin/rounds", headers=h["root"], json={"budget": 5, "strategy": "nope"})
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    c.post("/admin/rounds", headers=h["root"], json={"budget": 5, "strategy": "random"})
    r = c.get("/admin/export?limit=51", headers=h["root"])
    assert r.status_code == 422 and "page size limit 50" in r.json()["detail"]
    assert c.get("/admin/export?round=9", headers=h["root"]).status_code == 404
