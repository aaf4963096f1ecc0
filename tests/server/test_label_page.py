"""Issue 27, finding 14: the labeling page for real label sets. A leased task carries
the current model's top classes; in Chromium, keyboard only, 77 classes in natural
case-insensitive order, filter + Enter reaches any class, skip and unsure stay on
screen at 700 px, the sample's metadata is shown."""

from __future__ import annotations

import re
import socket
import threading
import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from longtail.engine import data, labels, rounds, training, users
from longtail.engine.settings import Settings
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import Store
from longtail.store import schema as s
from tests.conftest import make_pool, write_pool_csv

from .conftest import make_store
from .test_pages import ARGS, CHROMIUM, _browser

# 77 classes as a real set spells them: mixed case, underscores, numbers past 9.
CLASSES = (["Refund_not_showing_up", "activate_my_card", "age_limit", "Apple_pay_or_google_pay",
            "card_arrival", "beneficiary_not_allowed", "top_up_by_card_charge"]
           + [f"item_{k}" for k in range(1, 71)])


def test_a_leased_task_carries_the_models_top_three_classes(tmp_path, monkeypatch):
    st = Store.create(tmp_path / "p", {"seed": 0, "eval_rate": 0.1, "hashing": 2})
    X, y = make_pool(200, classes=4)
    data.ingest(st, Settings.load(st), write_pool_csv(tmp_path / "pool.csv", X, y), id="id",
                text="text", vector_prefix="v")
    truth = {f"s{i}": str(y[i]) for i in range(200)}
    first = rounds.plan_round(st, Settings.load(st), 60, strategy="random")
    labels.record_labels(st, [labels.LabelEvent(i, truth[i]) for i in first.ids])
    token = users.add_user(st, "ann")[1]
    rounds.plan_round(st, Settings.load(st), 20, strategy="random")
    c = TestClient(create_app(st.root, ServerSettings()))
    h = {"Authorization": f"Bearer {token}"}
    assert c.post("/tasks/lease", headers=h).json()["task"]["suggestions"] == []  # no model
    training.train(st, Settings.load(st))
    time.sleep(1.1)  # the service looks for a new model at most once a second
    hits = 0
    for _ in range(10):
        task = c.post("/tasks/lease", headers=h).json()["task"]
        got = task["suggestions"]
        assert len(got) == 3 and len(set(got)) == 3 and set(got) <= {"c0", "c1", "c2", "c3"}
        hits += got[0] == truth[task["sample_id"]]
        assert c.post(f"/tasks/{task['id']}/label", headers=h,
                      json={"kind": "label", "label": truth[task["sample_id"]]}).status_code == 200
    assert hits >= 8  # separable clusters: the first suggestion is mostly right
    # A suggestion that cannot be made (the model's vectors gone) never refuses a lease.
    from longtail.engine import suggest
    from longtail.errors import ProjectError

    def gone(*a, **k):
        raise ProjectError("no vector set")
    monkeypatch.setattr(suggest.views, "vectors", gone)
    r = c.post("/tasks/lease", headers=h)
    assert r.status_code == 200 and r.json()["task"]["suggestions"] == []
    st.close()


def _natural(x: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", x)]


def test_77_classes_keyboard_only_in_chromium(tmp_path):
    sync_api = _browser()
    import uvicorn

    store = make_store(tmp_path / "p", n=30, round_sizes=(12,), label_set=CLASSES)
    token = users.add_user(store, "ann")[1]
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
    natural = sorted(CLASSES, key=_natural)
    try:
        with sync_api.sync_playwright() as pw:
            sync_api.expect.set_options(timeout=20_000)
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                page.goto(f"http://127.0.0.1:{port}/label")
                page.focus("#token")
                page.keyboard.type(token)
                page.keyboard.press("Enter")
                text = page.locator("#text")
                sync_api.expect(text).to_have_attribute("data-task", "0")
                buttons = page.locator("#labels .label-btn")
                sync_api.expect(buttons).to_have_count(77)
                shown = [b.get_attribute("data-label") for b in buttons.all()]
                assert shown == natural and shown[0] == "activate_my_card"
                assert shown.index("item_2") < shown.index("item_10")
                # skip and unsure on screen without scrolling, 77 classes below them
                for sel in ("#skip", "#unsure", "#filter"):
                    box = page.locator(sel).bounding_box()
                    assert box["y"] + box["height"] <= 700, sel
                # the sample's metadata
                sync_api.expect(page.locator("#meta")).to_contain_text("source")
                sync_api.expect(page.locator("#meta")).to_contain_text("web")
                sync_api.expect(page.locator("#meta")).to_contain_text("s0")
                # a class past the ninth: filter, Enter picks the first match
                page.keyboard.press("/")
                page.keyboard.type("refund not")
                sync_api.expect(page.locator("#labels .label-btn:visible")).to_have_count(1)
                page.keyboard.press("Enter")
                sync_api.expect(text).to_have_attribute("data-task", "1")
                # the filter is cleared for the next task: keys work again
                sync_api.expect(page.locator("#labels .label-btn:visible")).to_have_count(77)
                page.keyboard.press("s")
                sync_api.expect(text).to_have_attribute("data-task", "2")
                page.keyboard.press("u")
                sync_api.expect(text).to_have_attribute("data-task", "3")
                # the numbers follow the filter: "item_6" narrows to item_6, item_60..69
                page.keyboard.press("/")
                page.keyboard.type("item_6")
                sync_api.expect(page.locator("#labels .label-btn:visible")).to_have_count(11)
                page.keyboard.press("Escape")  # clears the filter, keys work again
                sync_api.expect(page.locator("#labels .label-btn:visible")).to_have_count(77)
                page.keyboard.press("9")
                sync_api.expect(text).to_have_attribute("data-task", "4")
                page.keyboard.press("/")
                page.keyboard.type("no such class")
                sync_api.expect(page.locator("#no-match")).to_be_visible()
                page.keyboard.press("Enter")  # nothing to pick: nothing sent
                sync_api.expect(text).to_have_attribute("data-task", "4")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        th.join(10)
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.kind,
                                  s.annotations.c.label).order_by(s.annotations.c.id)).all()
    store.close()
    assert [tuple(g) for g in got] == [(0, "label", "Refund_not_showing_up"), (1, "skip", ""),
                                       (2, "unsure", ""), (3, "label", natural[8])]


def test_suggestions_lead_with_keys_in_chromium(tmp_path, monkeypatch):
    """The model's suggestions come first and take keys 1-3 (the suggester stubbed to
    a fixed answer: the model itself is tested above)."""
    sync_api = _browser()
    import uvicorn

    from longtail.engine import suggest

    monkeypatch.setattr(suggest.Suggester, "__call__",
                        lambda self, store, row, k=3: ["item_42", "age_limit", "item_7"])
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,), label_set=CLASSES)
    token = users.add_user(store, "ann")[1]
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
    try:
        with sync_api.sync_playwright() as pw:
            sync_api.expect.set_options(timeout=20_000)
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                page.goto(f"http://127.0.0.1:{port}/label")
                page.focus("#token")
                page.keyboard.type(token)
                page.keyboard.press("Enter")
                text = page.locator("#text")
                sync_api.expect(text).to_have_attribute("data-task", "0")
                sugg = page.locator("#suggested .label-btn")
                sync_api.expect(sugg).to_have_count(3)
                assert [b.get_attribute("data-label") for b in sugg.all()] == \
                    ["item_42", "age_limit", "item_7"]
                assert [b.locator("kbd").inner_text() for b in sugg.all()] == ["1", "2", "3"]
                sync_api.expect(page.locator("#labels .label-btn")).to_have_count(74)
                page.keyboard.press("2")
                sync_api.expect(text).to_have_attribute("data-task", "1")
            finally:
                browser.close()
    finally:
        server.should_exit = True
        th.join(10)
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.label)).scalars().all()
    store.close()
    assert got == ["age_limit"]


def test_the_dashboards_annotator_table_stays_inside_its_card(tmp_path):
    """Issue 27, finding 14's last point: the annotator table overflowed its card."""
    sync_api = _browser()
    import uvicorn

    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    token = users.add_user(store, "root", "admin")[1]
    users.add_user(store, "a-very-long-annotator-name@example.com")
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
    try:
        with sync_api.sync_playwright() as pw:
            sync_api.expect.set_options(timeout=20_000)
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/dashboard")
                page.focus("#token")
                page.keyboard.type(token)
                page.keyboard.press("Enter")
                sync_api.expect(page.locator("#annotators tbody tr").first).to_be_visible()
                table = page.locator("#annotators").bounding_box()
                card = page.locator("#annotators").locator("xpath=..").bounding_box()
                assert table["x"] + table["width"] <= card["x"] + card["width"]
            finally:
                browser.close()
    finally:
        server.should_exit = True
        th.join(10)
        store.close()
