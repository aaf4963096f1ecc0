"""The dashboard's status carries the money: labeling and compute spend and the money
verdict (issue 29), priced by the project's pools."""

from __future__ import annotations

from fastapi.testclient import TestClient

from longtail.engine import costs
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from tests.server.test_admin import loaded  # noqa: F401  (the fixture)


def test_status_shows_spend_and_the_money_verdict(loaded):  # noqa: F811
    st, h = loaded
    with st.unit_of_work() as uow:
        costs.add_pool(uow, "crowd", "36/h", members=["ann"])
    c = TestClient(create_app(st.root, ServerSettings(max_page=50)))
    assert c.post("/admin/rounds", headers=h["root"],
                  json={"budget": 5, "strategy": "random"}).status_code == 200
    for _ in range(2):
        t = c.post("/tasks/lease", headers=h["ann"]).json()["task"]
        c.post(f"/tasks/{t['id']}/label", headers=h["ann"], json={"label": "c1", "seconds": 10})
    status = c.get("/admin/status", headers=h["root"]).json()
    assert abs(status["spend"]["label_money"] - 2 * 10 / 3600 * 36) < 1e-6
    assert status["money_verdict"].startswith("no money verdict yet")


def test_work_packages_are_leased_as_a_unit(loaded):  # noqa: F811
    from longtail.engine import rounds
    from longtail.engine.settings import Settings

    st, h = loaded
    with st.unit_of_work() as uow:
        costs.add_pool(uow, "crowd", "20/h", members=["ann", "bob"])
    q = rounds.plan_round(st, Settings.load(st), 12, strategy="random", pool="crowd")
    mine = {p["package"]: set(p["rows"]) for p in q.log["packages"]}
    c = TestClient(create_app(st.root, ServerSettings(max_page=50)))
    seen: dict[str, set[int]] = {"ann": set(), "bob": set()}
    for _ in range(12):
        for who in ("ann", "bob"):
            got = c.post("/tasks/lease", headers=h[who]).json()["task"]
            if got is None:
                continue
            seen[who].add(got["id"])
            c.post(f"/tasks/{got['id']}/label", headers=h[who], json={"label": "c1"})
    assert seen["ann"] == mine["ann"] and seen["bob"] == mine["bob"]


def test_numbered_packages_go_one_per_annotator(loaded):  # noqa: F811
    from longtail.engine import rounds
    from longtail.engine.settings import Settings

    st, h = loaded
    q = rounds.plan_round(st, Settings.load(st), 12, strategy="random", annotators=3)
    packages = [set(p["rows"]) for p in q.log["packages"]]
    c = TestClient(create_app(st.root, ServerSettings(max_page=50)))
    a = c.post("/tasks/lease", headers=h["ann"]).json()["task"]
    b = c.post("/tasks/lease", headers=h["bob"]).json()["task"]
    pa = next(p for p in packages if a["id"] in p)
    pb = next(p for p in packages if b["id"] in p)
    assert pa != pb  # bob does not share ann's package
    c.post(f"/tasks/{a['id']}/label", headers=h["ann"], json={"label": "c1"})
    again = c.post("/tasks/lease", headers=h["ann"]).json()["task"]
    assert again["id"] in pa  # ann keeps hers
