"""Slice 4: the pages, served by the app, in a real browser (Playwright driving
Debian's Chromium): sign in with a token, label five samples with the keyboard, see
them counted on the dashboard. Static files never leave their folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.engine import users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

from .conftest import LABELS, make_store, sign_in


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
def live(tmp_path, served):
    """The service on a free loopback port, over a fresh project: (url, tokens, store)."""
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    tokens = {n: users.add_user(store, n, r)[1] for n, r in (("ann", "annotator"),
                                                             ("root", "admin"))}
    yield served(store), tokens, store
    store.close()


def test_label_five_with_the_keyboard_and_see_them_on_the_dashboard(live, chromium):
    browser, expect = chromium
    url, tokens, store = live
    shots = os.environ.get("LONGTAIL_SCREENSHOTS")
    page = sign_in(browser, url + "/label", "not-a-token", height=760)
    expect(page.locator("#login-error")).to_contain_text("not valid")
    page.fill("#token", tokens["ann"])
    page.click("#login-form button")
    expect(page.locator("#who")).to_have_text("ann (annotator)")
    text = page.locator("#text")
    expect(page.locator(".label-btn")).to_have_count(len(LABELS))
    seen = []
    for i, key in enumerate("12312"):
        expect(text).to_have_attribute("data-task", str(i))
        seen.append(text.get_attribute("data-task"))
        page.keyboard.press(key)
    expect(text).to_have_attribute("data-task", "5")  # the next, no reload
    expect(page.locator("#progress")).to_have_attribute("data-answered", "5")
    if shots:
        page.screenshot(path=str(Path(shots) / "label-page.png"))

    board = sign_in(browser, url + "/dashboard", tokens["ann"], height=900)
    expect(board.locator("#error")).to_contain_text("not an admin")
    board.evaluate("sessionStorage.clear()")
    board.goto(url + "/dashboard")
    board.fill("#token", tokens["root"])
    board.press("#token", "Enter")
    row = board.locator('#annotators tr[data-key="ann"] td')
    expect(row.nth(1)).to_have_text("5")
    expect(board.locator('#classes tr[data-key="billing"] td').nth(1)).to_have_text("2")
    expect(board.locator('#classes tr[data-key="card"] td').nth(1)).to_have_text("2")
    expect(board.locator('[data-kpi="answers"] b')).to_have_text("5")
    expect(board.locator("#estimate")).to_contain_text("no estimate yet")
    expect(board.locator('#rounds tr[data-key="1"] td').nth(5)).to_have_text("5")
    if shots:
        board.screenshot(path=str(Path(shots) / "dashboard.png"), full_page=True)
    assert seen == ["0", "1", "2", "3", "4"]
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.label, s.annotations.c.annotator)
                           .order_by(s.annotations.c.id)).all()
    keys = [LABELS[int(k) - 1] for k in "12312"]
    assert [tuple(g) for g in got] == [(i, keys[i], "ann") for i in range(5)]


def test_an_answer_on_an_expired_lease_is_kept_and_said(tmp_path, served, chromium):
    """Issue 27, finding 3: the lease runs out while the annotator reads; their key press
    meets 409. Before, the page re-leased and showed the same task again with the answer
    gone and nothing said. Now it leases again, sends the chosen answer, and says so."""
    from longtail.engine import tasks

    from .conftest import Clock

    browser, expect = chromium
    clock = Clock()
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    token = users.add_user(store, "ann")[1]
    url = served(store, ServerSettings(lease_ttl=60), clock=clock)
    page = sign_in(browser, url + "/label", token)
    text = page.locator("#text")
    expect(text).to_have_attribute("data-task", "0")
    clock.t += 60 + tasks.RECLAIM_EVERY + 1  # the lease ran out meanwhile
    page.keyboard.press("2")  # "card"
    notice = page.locator("#notice")
    expect(notice).to_contain_text("expired")
    expect(notice).to_contain_text('"card" recorded')
    expect(text).to_have_attribute("data-task", "1")
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.label,
                                  s.annotations.c.annotator)).all()
    store.close()
    assert [tuple(g) for g in got] == [(0, "card", "ann")]


def test_the_dashboard_shows_the_recorded_transfer(live, chromium):
    """What `longtail transfer` recorded (the setting `transfer`) is a row of its own."""
    browser, expect = chromium
    url, tokens, store = live
    board = sign_in(browser, url + "/dashboard", tokens["root"], height=900)
    expect(board.locator('[data-kpi="samples"] b')).to_have_text("30")
    expect(board.locator("#transfer-card")).to_be_hidden()
    with store.unit_of_work() as uow:
        uow.settings.set("transfer", {"sklearn.naive_bayes.GaussianNB": {
            "learner": "sklearn.naive_bayes.GaussianNB", "learner_params": {},
            "encoder": "e", "selected_with": "linear", "gain": 0.042, "lo": -0.011,
            "hi": 0.095, "level": 0.95, "n_labels": 120, "acc_selected": 0.81,
            "acc_random": 0.768, "method": "crossfit", "eval_set": "managed",
            "verdict": "trained with GaussianNB: ..."}})
    cells = board.locator('#transfer tr[data-key="sklearn.naive_bayes.GaussianNB"] td')
    expect(cells.nth(1)).to_have_text("linear")
    expect(cells.nth(2)).to_have_text("+4.2 points")
    expect(cells.nth(3)).to_have_text("[-1.1, +9.5] (95%)")
    expect(cells.nth(4)).to_have_text("120")
