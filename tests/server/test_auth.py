"""Slice 1: users and tokens, bearer auth, roles, the CLI, OpenAPI."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from longtail.cli import app as cli_app
from longtail.engine import users
from longtail.errors import InputError
from longtail.server.app import create_app
from longtail.store import Store
from longtail.store import schema as s
from tests.reads import read, write

from .conftest import make_store


def _client(store: Store, clock=None) -> TestClient:
    kwargs = {"clock": clock} if clock else {}
    return TestClient(create_app(store.root, **kwargs))


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_stored_only_as_hashes_and_authenticate(store, people):
    user, token = people["ann"]
    with store.engine.connect() as conn:
        stored = conn.execute(select(s.users.c.token_sha256).where(s.users.c.name == "ann")).scalar()
        every = " ".join(str(v) for r in conn.execute(select(s.users)).all() for v in r)
    assert token not in every and stored == users.token_hash(token)
    assert users.authenticate(store, token) == user
    assert users.authenticate(store, token + "x") is None
    assert users.authenticate(store, "") is None
    # Two users never share a token.
    assert len({t for _, t in people.values()}) == len(people)


def test_bad_names_roles_and_duplicates_are_input_errors(store, people):
    with pytest.raises(InputError, match="role 'boss'"):
        users.add_user(store, "zed", "boss")
    with pytest.raises(InputError, match="user name"):
        users.add_user(store, "has space")
    with pytest.raises(InputError, match="exists already"):
        users.add_user(store, "ann")
    assert [u.name for u in users.list_users(store)] == ["ann", "bob", "cat", "root"]


def test_new_token_replaces_the_old_one_and_remove_revokes(store, people):
    _, old = people["bob"]
    new = users.new_token(store, "bob")
    assert users.authenticate(store, old) is None and users.authenticate(store, new).name == "bob"
    users.remove_user(store, "bob")
    assert users.authenticate(store, new) is None
    with pytest.raises(InputError, match="no user 'bob'"):
        users.remove_user(store, "bob")


def test_missing_or_invalid_token_is_401_and_annotator_on_admin_route_is_403(store, people):
    c = _client(store)
    assert c.post("/tasks/lease").status_code == 401
    r = c.post("/tasks/lease", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.post("/tasks/lease", headers={"Authorization": people["ann"][1]}).status_code == 401
    assert c.get("/admin/status").status_code == 401
    ann = _h(people["ann"][1])
    for path in ("/admin/status", "/admin/rounds", "/admin/history", "/admin/export",
                 "/admin/annotators", "/admin/users", "/admin/curves"):
        assert c.get(path, headers=ann).status_code == 403, path
    assert c.post("/admin/rounds", json={"budget": 5}, headers=ann).status_code == 403
    assert c.get("/api/me", headers=ann).json() == {"name": "ann", "role": "annotator"}
    root = _h(people["root"][1])
    assert c.get("/admin/users", headers=root).status_code == 200
    assert c.get("/api/me", headers=root).json()["role"] == "admin"


def test_openapi_lists_typed_models_for_every_route(store, people):
    c = _client(store)
    spec = c.get("/openapi.json").json()
    assert c.get("/docs").status_code == 200
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path == "/admin/export/labels":  # a file download: its media types listed
                assert {"text/csv", "application/x-ndjson", "application/vnd.apache.parquet",
                        "application/json"} <= set(op["responses"]["200"]["content"])
                continue
            if path == "/media/{row}":  # an image, through a signed URL
                assert "image/jpeg" in op["responses"]["200"]["content"]
                continue
            if path == "/admin/report":  # the report, one self-contained HTML page
                assert "text/html" in op["responses"]["200"]["content"]
                continue
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok.get("$ref") or ok.get("items", {}).get("$ref"), (method, path)
    body = spec["paths"]["/tasks/{task_id}/label"]["post"]["requestBody"]
    # A label (a non-blank string), or a skip / unsure with no label: what the route
    # accepts, so `{"label": ""}` is invalid by the schema as by the route.
    refs = [x["$ref"] for x in body["content"]["application/json"]["schema"]["anyOf"]]
    assert [r.rsplit("/", 1)[1] for r in refs] == ["LabelAnswer", "OtherAnswer"]
    label = spec["components"]["schemas"]["LabelAnswer"]["properties"]["label"]
    assert (label["minLength"], label["pattern"]) == (1, r"\S")
    upload = spec["paths"]["/admin/import"]["post"]["requestBody"]["content"]
    assert upload["application/octet-stream"]["schema"]["format"] == "binary"


def test_cli_users_add_prints_the_token_once_and_it_authenticates(tmp_path):
    make_store(tmp_path / "p").close()
    run = CliRunner().invoke(cli_app, ["users", "add", "alice", "--role", "admin", "-p",
                                       str(tmp_path / "p"), "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    store = Store.open(tmp_path / "p")
    try:
        assert users.authenticate(store, out["token"]).role == "admin"
    finally:
        store.close()
    listed = CliRunner().invoke(cli_app, ["users", "list", "-p", str(tmp_path / "p")])
    assert "alice" in listed.output and out["token"] not in listed.output
    bad = CliRunner().invoke(cli_app, ["users", "add", "bob", "--role", "boss", "-p",
                                       str(tmp_path / "p")])
    assert bad.exit_code == 2 and "role 'boss'" in bad.output


def test_no_token_in_any_log_line(store, people, caplog):
    c = _client(store)
    token = people["ann"][1]
    admin = people["root"][1]
    with caplog.at_level(logging.DEBUG):
        c.post("/tasks/lease", headers=_h(token))
        c.post("/tasks/lease", headers=_h(token + "bad"))
        c.get(f"/admin/status?token={admin}", headers=_h(admin))
        c.post("/tasks/0/label", headers=_h(token), content=f'{{"label": "{admin}", "x": 1}}')
        c.post("/tasks/0/label", headers=_h(token), content=b"{not json")
    # Every server-side record (the test client's own httpx lines are the client's).
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    # An unknown query parameter is refused (422), its value logged nowhere either.
    assert "POST /tasks/lease 200" in text and "GET /admin/status 422" in text
    assert token not in text and admin not in text and "Bearer" not in text
    # Nor is a token pasted into a body echoed back in the 422.
    r = c.post("/tasks/0/label", headers=_h(token), content=f'{{"label": 5, "kind": "{admin}"}}')
    assert r.status_code == 422 and admin not in r.text


def test_older_catalog_gets_the_service_tables_by_migration(tmp_path):
    store = make_store(tmp_path / "p")
    with store.engine.begin() as conn:
        s.task_leases.drop(conn)
        s.users.drop(conn)
    write(store, lambda u: u.settings.set("schema_version", 2))
    store.close()
    store = Store.open(tmp_path / "p")
    try:
        assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION >= 3
        user, token = users.add_user(store, "ann")
        assert users.authenticate(store, token) == user
    finally:
        store.close()


def test_the_service_reads_every_token_at_once_not_one_per_token(store, people, monkeypatch):
    """Issue 27, finding 15: the token cache reads the users' token hashes in one query
    per TTL; ten annotators' first requests cost no lookup each. A token made after
    that read still works (looked up alone), and a removed user's stops once the TTL
    has passed."""
    from longtail.server import deps

    many = [users.add_user(store, f"x{i}")[1] for i in range(10)]
    single, tables = [], []
    real_single, real_table = users.authenticate_hash, users.token_table
    monkeypatch.setattr(users, "authenticate_hash",
                        lambda st, h: single.append(h) or real_single(st, h))
    monkeypatch.setattr(users, "token_table", lambda st: tables.append(1) or real_table(st))
    now = [1000.0]
    # deps' clock alone (not the time module's, which the event loop reads too)
    monkeypatch.setattr(deps, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0]),
                                                         "time": staticmethod(lambda: now[0])}))
    c = TestClient(create_app(store.root))
    for token in many:
        assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert (len(tables), single) == (1, [])
    late = users.add_user(store, "late")[1]  # after the read: looked up on its own
    assert c.get("/api/me", headers={"Authorization": f"Bearer {late}"}).status_code == 200
    assert len(single) == 1
    users.remove_user(store, "x0")
    assert c.get("/api/me", headers={"Authorization": f"Bearer {many[0]}"}).status_code == 200
    now[0] += deps.AUTH_TTL + 0.1  # the table is read again
    assert c.get("/api/me", headers={"Authorization": f"Bearer {many[0]}"}).status_code == 401
    assert c.get("/api/me", headers={"Authorization": f"Bearer {many[1]}"}).status_code == 200
    assert len(tables) == 2
