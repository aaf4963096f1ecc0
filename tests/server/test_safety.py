"""Issue 27, finding 13: what a security review of `longtail serve` looks for. CSV
exports cannot run as spreadsheet formulas; every response carries security headers;
the API docs load nothing from a CDN; the access log names client and user; guessing
tokens meets 429."""

from __future__ import annotations

import csv
import io
import json
import logging

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from longtail.csv_cells import neutralise, restore
from longtail.engine import labels, users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import Store
from tests.reads import read, write

RISKY = ['=HYPERLINK("http://evil.example","x")', "@SUM(1+1)", "+1+1", "-2+3", "\tcmd",
         "\rcmd"]


def _h(token):
    return {"Authorization": f"Bearer {token}"}


def test_csv_exports_neutralise_formulas(tmp_path):
    store = Store.create(tmp_path / "p", {"seed": 0})
    with store.unit_of_work() as uow:
        batch = uow.samples.add_batch("pool.csv", "0" * 64, {})
        uow.samples.insert(batch, [(i, f"s{i}", f"{i:032x}", text, json.dumps({}))
                                   for i, text in enumerate([*RISKY, "-3.5", "plain"])])
    labels.record_labels(store, [labels.LabelEvent(f"s{i}", lab) for i, lab in
                                 enumerate([*RISKY, "-3.5", "plain"])])
    token = users.add_user(store, "root", "admin")[1]
    c = TestClient(create_app(store.root))
    body = c.get("/admin/export/labels?format=csv", headers=_h(token)).text
    rows = list(csv.reader(io.StringIO(body, newline="")))
    cells = [x for row in rows[1:] for x in row]
    assert not [x for x in cells if x[:1] in ("=", "+", "-", "@", "\t", "\r") and x != "-3.5"]
    assert [row[1] for row in rows[1:]] == ["'" + x for x in RISKY] + ["-3.5", "plain"]
    store.close()


@given(st.text(max_size=12))
def test_the_formula_mark_comes_back_off_exactly(value):
    assert restore(neutralise(value)) == value


def test_security_headers_on_pages_api_and_errors(store, people):
    c = TestClient(create_app(store.root))
    for r in (c.get("/label"), c.get("/api/me"), c.get("/static/nope.js"),
              c.get("/api/me", headers=_h(people["ann"][1]))):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "unsafe-inline" not in csp


def test_docs_load_swagger_ui_from_the_installed_package(store):
    c = TestClient(create_app(store.root))
    page = c.get("/docs")
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    assert "/docs-static/swagger-ui-bundle.js" in page.text
    js = c.get("/docs-static/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text
    assert "cdn" not in c.get("/redoc").text.lower()
    assert c.get("/docs-static/../core.py").status_code == 404


def test_access_log_names_client_and_user(store, people, caplog):
    c = TestClient(create_app(store.root))
    with caplog.at_level(logging.INFO, logger="longtail.server.access"):
        c.get("/api/me", headers=_h(people["ann"][1]))
    line = next(r.getMessage() for r in caplog.records if r.name == "longtail.server.access")
    assert line.startswith("testclient GET /api/me 200") and line.endswith("user=ann")


def test_guessing_tokens_meets_429_with_retry_after(store, people):
    c = TestClient(create_app(store.root, ServerSettings(auth_fail_limit=5,
                                                         auth_fail_window=60)))
    for i in range(5):
        assert c.get("/api/me", headers=_h(f"guess-{i}")).status_code == 401
    r = c.get("/api/me", headers=_h("guess-6"))
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60
    # Until the window passes, the address waits, whatever token it sends.
    assert c.get("/api/me", headers=_h(people["ann"][1])).status_code == 429


def test_project_files_are_the_owners_alone(tmp_path):
    import os
    import stat

    old = os.umask(0o022)  # a usual umask: what others could read unless we say otherwise
    try:
        store = Store.create(tmp_path / "p", {"seed": 0})
        labels.set_label_set(store, ["a"])
        store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o700
    for f in (tmp_path / "p").glob("catalog.db*"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_admin_actions_are_in_the_audit_log_admins_read(store, people):
    from longtail.engine import users as users_uc

    users_uc.new_token(store, "bob")
    users_uc.remove_user(store, "cat")
    c = TestClient(create_app(store.root))
    root = _h(people["root"][1])
    assert c.post("/admin/import", headers=root, content=b"id,label\ns1,card\n").status_code == 200
    assert c.post("/webhooks/labels", headers=root,
                  json={"labels": [{"id": "s2", "label": "card"}]}).status_code == 200
    log = c.get("/admin/audit", headers=root).json()
    got = [(e["actor"], e["action"], e["detail"].get("user") or e["detail"].get("from"))
           for e in log]
    assert got[:3] == [("root", "labels_imported", "webhook"),
                       ("root", "labels_imported", "uploaded file (csv)"),
                       ("cli", "user_removed", "cat")]
    assert ("cli", "token_replaced", "bob") in got and ("cli", "user_added", "ann") in got
    assert "token" not in str([e["detail"] for e in log]).replace("token_replaced", "")
    assert c.get("/admin/audit", headers=_h(people["ann"][1])).status_code == 403


def test_an_older_catalog_gets_the_audit_log_by_migration(tmp_path):
    from longtail.store import schema as s

    store = Store.create(tmp_path / "p", {"seed": 0})
    with store.engine.begin() as conn:
        s.audit_log.drop(conn)
    write(store, lambda u: u.settings.set("schema_version", 5))
    store.close()
    store = Store.open(tmp_path / "p")
    assert read(store, lambda u: u.settings.get("schema_version")) == s.SCHEMA_VERSION
    users.add_user(store, "ann")
    assert [e.action for e in users.audit_log(store)] == ["user_added"]
    store.close()
