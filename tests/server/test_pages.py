"""Slice 4: the pages, served by the app, in a real browser (Playwright driving
Debian's Chromium): sign in with a token, label five samples with the keyboard, see
them counted on the dashboard. Static files never leave their folder."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.engine import users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

from .conftest import LABELS, make_store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def test_static_files_refuse_path_traversal(store):
    c = TestClient(create_app(store.root))
    assert c.get("/static/label.js").status_code == 200
    assert "text/html" in c.get("/label").headers["content-type"]
    assert c.get("/dashboard").status_code == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
                 "/static/%2e%2e%2f%2e%2e%2fstore%2fcatalog.py", "/static//etc/passwd",
                 "/static/..%5capp.py", "/static/nope.js", "/static/", "/static/%00"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "import" not in r.text, path


@pytest.fixture
def live(tmp_path):
    """The service on a free loopback port in a thread, over a fresh project."""
    import uvicorn

    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    tokens = {n: users.add_user(store, n, r)[1] for n, r in (("ann", "annotator"),
                                                             ("root", "admin"))}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store.root, ServerSettings()),
                                           host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}", tokens, store
    server.should_exit = True
    th.join(10)
    store.close()


def _browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return sync_api


def test_label_five_with_the_keyboard_and_see_them_on_the_dashboard(live):
    sync_api = _browser()
    url, tokens, store = live
    shots = os.environ.get("LONGTAIL_SCREENSHOTS")
    with sync_api.sync_playwright() as pw:
        # A loaded CI machine renders slowly: wait up to 20 s for each expectation.
        sync_api.expect.set_options(timeout=20_000)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(url + "/label")
            page.fill("#token", "not-a-token")
            page.press("#token", "Enter")
            sync_api.expect(page.locator("#login-error")).to_contain_text("not valid")
            page.fill("#token", tokens["ann"])
            page.click("#login-form button")
            sync_api.expect(page.locator("#who")).to_have_text("ann (annotator)")
            text = page.locator("#text")
            sync_api.expect(page.locator(".label-btn")).to_have_count(len(LABELS))
            seen = []
            for i, key in enumerate("12312"):
                sync_api.expect(text).to_have_attribute("data-task", str(i))
                seen.append(text.get_attribute("data-task"))
                page.keyboard.press(key)
            sync_api.expect(text).to_have_attribute("data-task", "5")  # the next, no reload
            sync_api.expect(page.locator("#progress")).to_have_attribute("data-answered", "5")
            if shots:
                page.screenshot(path=str(Path(shots) / "label-page.png"))

            board = browser.new_page(viewport={"width": 1100, "height": 900})
            board.goto(url + "/dashboard")
            board.fill("#token", tokens["ann"])
            board.press("#token", "Enter")
            sync_api.expect(board.locator("#error")).to_contain_text("not an admin")
            board.evaluate("sessionStorage.clear()")
            board.goto(url + "/dashboard")
            board.fill("#token", tokens["root"])
            board.press("#token", "Enter")
            row = board.locator('#annotators tr[data-key="ann"] td')
            sync_api.expect(row.nth(1)).to_have_text("5")
            sync_api.expect(board.locator('#classes tr[data-key="billing"] td').nth(1)).to_have_text("2")
            sync_api.expect(board.locator('#classes tr[data-key="card"] td').nth(1)).to_have_text("2")
            sync_api.expect(board.locator('[data-kpi="answers"] b')).to_have_text("5")
            sync_api.expect(board.locator("#estimate")).to_contain_text("no estimate yet")
            sync_api.expect(board.locator('#rounds tr[data-key="1"] td').nth(5)).to_have_text("5")
            if shots:
                board.screenshot(path=str(Path(shots) / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert seen == ["0", "1", "2", "3", "4"]
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.label, s.annotations.c.annotator)
                           .order_by(s.annotations.c.id)).all()
    keys = [LABELS[int(k) - 1] for k in "12312"]
    assert [tuple(g) for g in got] == [(i, keys[i], "ann") for i in range(5)]


def test_an_answer_on_an_expired_lease_is_kept_and_said(tmp_path):
    """Issue 27, finding 3: the lease runs out while the annotator reads; their key press
    meets 409. Before, the page re-leased and showed the same task again with the answer
    gone and nothing said. Now it leases again, sends the chosen answer, and says so."""
    import uvicorn

    from longtail.engine import tasks

    from .conftest import Clock

    sync_api = _browser()
    clock = Clock()
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    token = users.add_user(store, "ann")[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        create_app(store.root, ServerSettings(lease_ttl=60), clock=clock),
        host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as pw:
            sync_api.expect.set_options(timeout=20_000)
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/label")
                page.fill("#token", token)
                page.press("#token", "Enter")
                text = page.locator("#text")
                sync_api.expect(text).to_have_attribute("data-task", "0")
                clock.t += 60 + tasks.RECLAIM_EVERY + 1  # the lease ran out meanwhile
                page.keyboard.press("2")  # "card"
                notice = page.locator("#notice")
                sync_api.expect(notice).to_contain_text("expired")
                sync_api.expect(notice).to_contain_text('"card" recorded')
                sync_api.expect(text).to_have_attribute("data-task", "1")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        th.join(10)
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.label,
                                  s.annotations.c.annotator)).all()
    store.close()
    assert [tuple(g) for g in got] == [(0, "card", "ann")]
