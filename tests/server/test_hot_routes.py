"""The lean lane of the two submission routes (server/hot.py): every answer, right or
wrong, is the one FastAPI's own routing gives, and the ordinary request skips it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from longtail.engine import users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from tests.server.conftest import Clock, make_store

# Headers that say what a response is (the date and length aside).
SHOWN = ("content-type", "www-authenticate", "retry-after", "content-security-policy",
         "x-frame-options", "x-content-type-options", "referrer-policy", "allow")


def _answers(tmp_path, hot: bool) -> list[tuple]:
    """What a scripted session of two annotators gets, request by request."""
    store = make_store(tmp_path / ("hot" if hot else "plain"), n=12, round_sizes=(6,))
    ann = users.add_user(store, "ann")[1]
    bob = users.add_user(store, "bob")[1]
    store.close()
    app = create_app(tmp_path / ("hot" if hot else "plain"),
                     ServerSettings(hot_routes=hot, max_body=2048), clock=Clock())
    out = []
    with TestClient(app) as c:
        def post(path, token=None, **kw):
            head = {"Authorization": f"Bearer {token}"} if token else {}
            r = c.post(path, headers={**head, **kw.pop("headers", {})}, **kw)
            try:
                body = r.json()
            except ValueError:
                body = r.text
            out.append((path, r.status_code, body,
                        {k: r.headers.get(k) for k in SHOWN}))
            return body

        post("/tasks/lease")  # no token
        post("/tasks/lease", "wrong")
        task = post("/tasks/lease", ann)["task"]
        post("/tasks/lease", ann)  # the same task again
        t = task["id"]
        post(f"/tasks/{t}/label", ann, json={"label": "nope"})  # not in the label set
        post(f"/tasks/{t}/label", ann, json={"label": ""})  # refused by the schema
        post(f"/tasks/{t}/label", ann, json={"label": "card", "extra": 1})
        post(f"/tasks/{t}/label", ann, content=b"{not json",
             headers={"content-type": "application/json"})
        post(f"/tasks/{t}/label", ann, content=b'{"label": "card"}',
             headers={"content-type": "text/plain"})
        post(f"/tasks/{t}/label?x=1", ann, json={"label": "card"})
        post(f"/tasks/{2**40}/label", ann, json={"label": "card"})
        post("/tasks/-1/label", ann, json={"label": "card"})
        post(f"/tasks/{t}/label", ann, content=b"x" * 4096,
             headers={"content-type": "application/json"})  # over the body limit
        post(f"/tasks/{t}/label", bob, json={"label": "card"})  # not bob's
        post(f"/tasks/{t}/label", ann, json={"label": " card ", "seconds": 2.5})
        post(f"/tasks/{t}/label", ann, json={"label": "card"})  # answered already
        post("/tasks/11/label", ann, json={"label": "card"})  # not in an open round
        u = post("/tasks/lease", bob)["task"]["id"]
        post(f"/tasks/{u}/label", bob, json={"kind": "skip"})
        post(f"/tasks/{u}/label", bob, json={"kind": "unsure", "label": "card"})
        post("/tasks/lease?limit=1", bob)
        for _ in range(6):  # to the end of the round
            got = post("/tasks/lease", ann)["task"]
            if got is None:
                break
            post(f"/tasks/{got['id']}/label", ann, json={"kind": "unsure"})
        out.append(("GET /tasks/lease", c.get("/tasks/lease").status_code))
    return out


def test_the_lane_answers_every_request_as_fastapi_does(tmp_path):
    # SQLite only: the lane calls the same route functions on either catalog.
    plain = _answers(tmp_path, hot=False)
    hot = _answers(tmp_path, hot=True)
    assert [x[:2] for x in hot] == [x[:2] for x in plain]  # statuses first: a clear diff
    assert hot == plain
    statuses = {x[1] for x in plain}
    assert {200, 401, 404, 409, 413, 422, 405} <= statuses  # the script reached them all


def test_the_ordinary_submission_skips_fastapis_machinery(tmp_path, monkeypatch):
    import fastapi.routing

    calls = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*a, **kw):
        calls.append(kw["request"].url.path)
        return await solve(*a, **kw)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    store = make_store(tmp_path / "p", n=12, round_sizes=(6,))
    ann = users.add_user(store, "ann")[1]
    store.close()
    head = {"Authorization": f"Bearer {ann}"}
    with TestClient(create_app(tmp_path / "p")) as c:
        t = c.post("/tasks/lease", headers=head).json()["task"]["id"]
        assert c.post(f"/tasks/{t}/label", headers=head, json={"label": "card"}).status_code == 200
        assert calls == []
        # What the lane does not take goes to FastAPI: a query string, a bad body.
        assert c.post("/tasks/lease?x=1", headers=head).status_code == 422
        assert c.post("/tasks/3/label", headers=head, json={"label": 5}).status_code == 422
        assert c.get("/api/me", headers=head).status_code == 200
    assert calls == ["/tasks/lease", "/tasks/3/label", "/api/me"]


def test_dependency_overrides_turn_the_lane_off(tmp_path):
    """A test (or an embedding app) that overrides a dependency gets it on these routes
    too: the lane steps aside."""
    from longtail.server import deps

    store = make_store(tmp_path / "p", n=12, round_sizes=(6,))
    ann = users.add_user(store, "ann")[1]
    store.close()
    app = create_app(tmp_path / "p")

    async def nobody():
        from fastapi import HTTPException

        raise HTTPException(401, "overridden")

    app.dependency_overrides[deps.current_user] = nobody
    with TestClient(app) as c:
        r = c.post("/tasks/lease", headers={"Authorization": f"Bearer {ann}"})
    assert (r.status_code, r.json()["detail"]) == (401, "overridden")


@pytest.mark.parametrize("hot", [True, False])
def test_the_access_log_names_the_user_on_both_paths(tmp_path, caplog, hot):
    store = make_store(tmp_path / "p", n=12, round_sizes=(6,))
    ann = users.add_user(store, "ann")[1]
    store.close()
    with caplog.at_level("INFO", logger="longtail.server.access"), \
            TestClient(create_app(tmp_path / "p", ServerSettings(hot_routes=hot))) as c:
        c.post("/tasks/lease", headers={"Authorization": f"Bearer {ann}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "longtail.server.access"]
    assert any("POST /tasks/lease 200" in x and "user=ann" in x for x in lines), lines
    assert not any(ann in x for x in lines)
