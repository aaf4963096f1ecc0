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
