"""Every route validates ranges and encodings at the edge (issue 27, finding 12): 422
naming the problem, never a 500, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from longtail.cli import app as cli
from longtail.engine import users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings

BIG = [2**31, 2**63, 2**64]  # past PostgreSQL's integer, SQLite's, and any 64-bit column


def _h(people, name):
    return {"Authorization": f"Bearer {people[name][1]}"}


def _client(store, **kw):
    return TestClient(create_app(store.root, ServerSettings(**kw)), raise_server_exceptions=False)


def test_integers_past_the_column_type_are_422(store, people):
    c = _client(store)
    ann, root = _h(people, "ann"), _h(people, "root")
    for n in BIG:
        for r in (c.post(f"/tasks/{n}/label", headers=ann, json={"label": "card"}),
                  c.post(f"/tasks/{n}/release", headers=ann),
                  c.get(f"/admin/export?round={n}", headers=root),
                  c.get(f"/admin/export?offset={n}", headers=root),
                  c.get(f"/admin/label-studio/tasks?round={n}", headers=root),
                  c.get(f"/admin/label-studio/tasks?offset={n}", headers=root),
                  c.get(f"/admin/export/labels?version={n}", headers=root),
                  c.post("/admin/rounds", headers=root, json={"budget": 5, "seed": n})):
            assert r.status_code == 422, (n, r.request.url, r.text)
            assert isinstance(r.json()["detail"], list)  # where and what, as the schema says


def test_unknown_round_and_version_are_404(store, people):
    c = _client(store)
    root = _h(people, "root")
    for path in ("/admin/export?round=9", "/admin/label-studio/tasks?round=9",
                 "/admin/export/labels?version=9"):
        r = c.get(path, headers=root)
        assert r.status_code == 404, (path, r.text)


def test_a_file_that_is_not_utf8_is_one_clear_422(store, people, tmp_path):
    c = _client(store)
    body = "id,label\ns1,café\n".encode("latin-1")
    r = c.post("/admin/import", headers=_h(people, "root"), content=body)
    assert r.status_code == 422
    assert r.json()["detail"] == ("uploaded file (csv): row 1, column 'label': not UTF-8 text "
                                  "(save the file as UTF-8)")
    f = tmp_path / "latin1.csv"
    f.write_bytes(body)
    out = CliRunner().invoke(cli, ["import-labels", str(f), "-p", str(store.root)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1 and "not UTF-8" in out.output


def test_a_removed_users_token_inside_the_auth_cache_is_401(store, people):
    c = _client(store)
    ann = _h(people, "ann")
    assert c.get("/api/me", headers=ann).status_code == 200  # the token is cached now
    users.remove_user(store, "ann")
    r = c.post("/tasks/lease", headers=ann)
    assert r.status_code == 401 and "removed" in r.json()["detail"]


def test_methods_unknown_parameters_and_documented_errors(store, people):
    c = _client(store)
    root = _h(people, "root")
    r = c.request("OPTIONS", "/admin/rounds", headers=root)
    assert r.status_code == 405 and {"GET", "POST"} <= set(r.headers["allow"].split(", "))
    r = c.get("/admin/export?limt=5", headers=root)  # a typo is an error, not a default
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limt"]
    spec = c.get("/openapi.json").json()
    label = spec["paths"]["/tasks/{task_id}/label"]["post"]["responses"]
    assert {"404", "409", "413", "422"} <= set(label)
    assert label["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    limit = next(p for p in spec["paths"]["/admin/export"]["get"]["parameters"]
                 if p["name"] == "limit")
    assert limit["schema"]["anyOf"][0]["maximum"] == 1000  # the server's page size
    assert c.post("/tasks/0/label", headers=_h(people, "ann"),
                  json={"label": "card", "seconds": "1.5"}).status_code == 422
