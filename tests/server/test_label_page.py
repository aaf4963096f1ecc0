"""Issue 27, finding 14: the labeling page for real label sets. A leased task carries
the current model's top classes; in Chromium, keyboard only, 77 classes in natural
case-insensitive order, filter + Enter reaches any class, skip and unsure stay on
screen at 700 px, the sample's metadata is shown."""

from __future__ import annotations

import re
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

from .conftest import make_store, sign_in

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


def test_one_lease_at_a_time_looks_for_a_new_model():
    """When the look for a new model is due, the first lease claims it and the others
    skip the worker-thread hop (under load every lease of that moment hopped and opened
    a read of its own); the next look is claimed once `recheck` has passed again."""
    from longtail.engine import suggest

    s = suggest.Suggester(recheck=0.2)
    assert [s.none_known() for _ in range(4)] == [False, True, True, True]
    time.sleep(0.25)
    assert [s.none_known() for _ in range(2)] == [False, True]


def _natural(x: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", x)]


def test_77_classes_keyboard_only_in_chromium(tmp_path, served, chromium):
    browser, expect = chromium
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,), label_set=CLASSES)
    token = users.add_user(store, "ann")[1]
    url = served(store)
    natural = sorted(CLASSES, key=_natural)
    page = sign_in(browser, url + "/label", token)
    text = page.locator("#text")
    expect(text).to_have_attribute("data-task", "0")
    buttons = page.locator("#labels .label-btn")
    expect(buttons).to_have_count(77)
    shown = [b.get_attribute("data-label") for b in buttons.all()]
    assert shown == natural and shown[0] == "activate_my_card"
    assert shown.index("item_2") < shown.index("item_10")
    # skip and unsure on screen without scrolling, 77 classes below them
    for sel in ("#skip", "#unsure", "#filter"):
        box = page.locator(sel).bounding_box()
        assert box["y"] + box["height"] <= 700, sel
    # the sample's metadata
    expect(page.locator("#meta")).to_contain_text("source")
    expect(page.locator("#meta")).to_contain_text("web")
    expect(page.locator("#meta")).to_contain_text("s0")
    # a class past the ninth: filter, Enter picks the first match
    page.keyboard.press("/")
    page.keyboard.type("refund not")
    expect(page.locator("#labels .label-btn:visible")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(text).to_have_attribute("data-task", "1")
    # the filter is cleared for the next task: keys work again
    expect(page.locator("#labels .label-btn:visible")).to_have_count(77)
    page.keyboard.press("s")
    expect(text).to_have_attribute("data-task", "2")
    page.keyboard.press("u")
    expect(text).to_have_attribute("data-task", "3")
    # the numbers follow the filter: "item_6" narrows to item_6, item_60..69
    page.keyboard.press("/")
    page.keyboard.type("item_6")
    expect(page.locator("#labels .label-btn:visible")).to_have_count(11)
    page.keyboard.press("Escape")  # clears the filter, keys work again
    expect(page.locator("#labels .label-btn:visible")).to_have_count(77)
    page.keyboard.press("9")
    expect(text).to_have_attribute("data-task", "4")
    page.keyboard.press("/")
    page.keyboard.type("no such class")
    expect(page.locator("#no-match")).to_be_visible()
    page.keyboard.press("Enter")  # nothing to pick: nothing sent
    expect(text).to_have_attribute("data-task", "4")
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.kind,
                                  s.annotations.c.label).order_by(s.annotations.c.id)).all()
    store.close()
    assert [tuple(g) for g in got] == [(0, "label", "Refund_not_showing_up"), (1, "skip", ""),
                                       (2, "unsure", ""), (3, "label", natural[8])]


def test_undo_and_the_previous_item_keyboard_only_in_chromium(tmp_path, served, chromium):
    """The previous task and its answer stay in view; z takes the answer back while its
    lease runs: the task is shown again with the old answer marked, the task shown
    meanwhile goes back to the queue, and only the new answer is in the catalog. After
    a skip there is nothing to undo; after the lease, undo is refused and said."""
    from longtail.engine import tasks

    from .conftest import Clock

    browser, expect = chromium
    clock = Clock()
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,), label_set=CLASSES)
    token = users.add_user(store, "ann")[1]
    url = served(store, ServerSettings(lease_ttl=60), clock=clock)
    natural = sorted(CLASSES, key=_natural)
    page = sign_in(browser, url + "/label", token)
    text, prev, notice = page.locator("#text"), page.locator("#previous"), page.locator("#notice")
    expect(text).to_have_attribute("data-task", "0")
    expect(prev).to_be_hidden()
    page.keyboard.press("3")  # natural[2]
    expect(text).to_have_attribute("data-task", "1")
    expect(prev).to_be_visible()
    expect(prev).to_have_attribute("data-task", "0")
    expect(page.locator("#prev-text")).to_have_text("text number 0")
    expect(page.locator("#prev-answer")).to_have_text(f'"{natural[2]}"')
    page.keyboard.press("z")  # undo: task 0 again, its old answer marked
    expect(text).to_have_attribute("data-task", "0")
    expect(notice).to_contain_text("withdrawn")
    expect(page.locator(".label-btn.chosen")).to_have_attribute("data-label", natural[2])
    expect(prev).to_be_hidden()
    page.keyboard.press("5")  # the new answer
    expect(text).to_have_attribute("data-task", "1")  # task 1 came back from the queue
    page.keyboard.press("s")  # a skip: nothing to undo
    expect(text).to_have_attribute("data-task", "2")
    expect(prev).to_be_hidden()
    page.keyboard.press("z")
    expect(text).to_have_attribute("data-task", "2")
    page.keyboard.press("u")
    expect(text).to_have_attribute("data-task", "3")
    clock.t += 61  # task 2's lease has ended: its answer stays
    page.keyboard.press("z")
    expect(notice).to_contain_text("stays")
    expect(notice).to_contain_text("has ended")
    expect(text).to_have_attribute("data-task", "3")
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.row, s.annotations.c.kind,
                                  s.annotations.c.label).order_by(s.annotations.c.id)).all()
        audit = conn.execute(select(s.audit_log.c.detail).where(
            s.audit_log.c.action == "answer_withdrawn")).scalars().all()
    store.close()
    assert [tuple(g) for g in got] == [(0, "label", natural[4]), (1, "skip", ""),
                                       (2, "unsure", "")]
    assert [(a["task"], a["label"], a["released"]) for a in audit] == [(0, natural[2], 1)]
    assert tasks.RECLAIM_EVERY < 61


def test_suggestions_lead_with_keys_in_chromium(tmp_path, monkeypatch, served, chromium):
    """The model's suggestions come first and take keys 1-3 (the suggester stubbed to
    a fixed answer: the model itself is tested above)."""
    from longtail.engine import suggest

    browser, expect = chromium
    monkeypatch.setattr(suggest.Suggester, "__call__",
                        lambda self, store, row, k=3: ["item_42", "age_limit", "item_7"])
    monkeypatch.setattr(suggest.Suggester, "none_known", lambda self: False)
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,), label_set=CLASSES)
    token = users.add_user(store, "ann")[1]
    page = sign_in(browser, served(store) + "/label", token)
    text = page.locator("#text")
    expect(text).to_have_attribute("data-task", "0")
    sugg = page.locator("#suggested .label-btn")
    expect(sugg).to_have_count(3)
    assert [b.get_attribute("data-label") for b in sugg.all()] == ["item_42", "age_limit", "item_7"]
    assert [b.locator("kbd").inner_text() for b in sugg.all()] == ["1", "2", "3"]
    expect(page.locator("#labels .label-btn")).to_have_count(74)
    page.keyboard.press("2")
    expect(text).to_have_attribute("data-task", "1")
    with store.engine.connect() as conn:
        got = conn.execute(select(s.annotations.c.label)).scalars().all()
    store.close()
    assert got == ["age_limit"]


def test_the_dashboards_annotator_table_stays_inside_its_card(tmp_path, served, chromium):
    """Issue 27, finding 14's last point: the annotator table overflowed its card."""
    browser, expect = chromium
    store = make_store(tmp_path / "p", n=30, round_sizes=(12,))
    token = users.add_user(store, "root", "admin")[1]
    users.add_user(store, "a-very-long-annotator-name@example.com")
    page = sign_in(browser, served(store) + "/dashboard", token, height=900)
    expect(page.locator("#annotators tbody tr").first).to_be_visible()
    table = page.locator("#annotators").bounding_box()
    card = page.locator("#annotators").locator("xpath=..").bounding_box()
    assert table["x"] + table["width"] <= card["x"] + card["width"]
    store.close()
