"""Images through the service: a lease carries a signed, expiring media URL that an
<img> can load without a bearer token; a forged or expired one is refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from longtail.engine import users  # noqa: E402
from longtail.project import Project  # noqa: E402
from longtail.server.app import create_app  # noqa: E402
from tests.images.test_image_pool import make_folder  # noqa: E402
from tests.server.conftest import Clock, chromium, served  # noqa: E402, F401


@pytest.fixture
def image_project(tmp_path: Path) -> Path:
    root = make_folder(tmp_path / "imgs", per_class=10, size=64)
    p = Project.init(tmp_path / "proj", eval_rate=0.0)
    p.ingest(root)
    p.embed("pixels")
    p.query(4, strategy="random")
    return tmp_path / "proj"


def test_lease_gives_a_signed_url_that_loads_without_a_token(image_project):
    store_proj = Project(image_project)
    _, token = users.add_user(store_proj.store, "ann", "annotator")
    clock = Clock()
    with TestClient(create_app(image_project, clock=clock)) as c:
        lease = c.post("/tasks/lease", headers={"Authorization": f"Bearer {token}"}).json()
        url = lease["task"]["media_url"]
        assert url.startswith(f"/media/{lease['task']['id']}?")
        got = c.get(url)  # no Authorization header: the signature is the permission
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        im = Image.open(io.BytesIO(got.content))
        assert max(im.size) <= 256
        # The same URL for another row, or with a changed size, is refused.
        other = url.replace(f"/media/{lease['task']['id']}?", f"/media/{lease['task']['id'] + 1}?")
        assert c.get(other).status_code == 403
        assert c.get(url.replace("size=256", "size=0")).status_code == 403
        # Expired: the clock moves past the hour.
        clock.t += 3601
        assert c.get(url).status_code == 403


def test_bad_media_parameters_are_4xx_not_500(image_project):
    with TestClient(create_app(image_project)) as c:
        assert c.get("/media/0").status_code in (403, 422)
        assert c.get(f"/media/{2**63}?size=0&expires=1&sig={'0' * 64}").status_code == 422
        assert c.get("/media/0?size=0&expires=1&sig=zz").status_code == 422


def test_label_studio_export_of_an_image_pool(image_project, tmp_path):
    """The labeling config shows the image; each task's `image` is a signed link the
    service serves (admin export) or the prefix + path (CLI)."""
    from typer.testing import CliRunner

    from longtail.cli import app as cli_app

    p = Project(image_project)
    _, token = users.add_user(p.store, "root", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    p.set_labels(["left", "right"])
    with TestClient(create_app(image_project)) as c:
        tasks = c.get("/admin/label-studio/tasks", headers=auth).json()
        assert len(tasks) == 4
        url = tasks[0]["data"]["image"]
        assert url.startswith("http://testserver/media/")
        assert c.get(url.removeprefix("http://testserver")).status_code == 200
        config = c.get("/admin/label-studio/config", headers=auth).json()["config"]
        assert '<Image name="image" value="$image"/>' in config and 'toName="image"' in config
    out = tmp_path / "tasks.json"
    run = CliRunner().invoke(cli_app, ["label-studio", "export", "--out", str(out), "-p",
                                       str(image_project), "--media-prefix",
                                       "/data/local-files/?d=imgs/"])
    assert run.exit_code == 0, run.output
    import json

    data = json.loads(out.read_text())[0]["data"]
    assert data["image"].startswith("/data/local-files/?d=imgs/") and data["image"].endswith(".png")


def test_round_export_and_search_carry_signed_thumbnails(image_project):
    """The service's batch (GET /admin/export) names each image's path under the media
    root and a signed thumbnail link; search hits on an image pool carry one too."""
    p = Project(image_project)
    _, token = users.add_user(p.store, "root", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(image_project)) as c:
        tasks = c.get("/admin/export", headers=auth).json()["tasks"]
        assert len(tasks) == 4
        for t in tasks:
            assert t["media"] == t["sample_id"] and t["media"].endswith(".png")
            assert t["media_url"].startswith(f"/media/{t['id']}?size=96&")
            got = c.get(t["media_url"])  # no token: the signature is the permission
            assert got.status_code == 200 and max(Image.open(io.BytesIO(got.content)).size) <= 96
        hits = c.post("/admin/search", headers=auth,
                      json={"ids": [tasks[0]["sample_id"]], "k": 3, "state": "any"}).json()["hits"]
        assert hits and all(h["media_url"].startswith(f"/media/{h['row']}?size=96&") for h in hits)
        assert c.get(hits[0]["media_url"]).status_code == 200


def test_the_dashboard_shows_thumbnails_of_image_hits(image_project, served, chromium):  # noqa: F811
    from longtail.store import Store
    from tests.server.conftest import sign_in

    browser, expect = chromium
    p = Project(image_project)
    _, token = users.add_user(p.store, "root", "admin")
    store = Store.open(image_project)
    try:
        url = served(store)
        board = sign_in(browser, url + "/dashboard", token, height=900)
        board.select_option("#search-by", "id")
        board.fill("#search-q", "left/left_0.png")
        board.select_option("#search-state", "any")
        board.click("#search-form button")
        expect(board.locator("#search-note")).to_contain_text("hits")
        rows = board.locator("#search tbody tr")
        assert rows.count() > 0
        expect(board.locator("#search tbody tr img.thumb")).to_have_count(rows.count())
        img = board.locator("#search tbody tr img.thumb").first
        assert img.get_attribute("src").startswith("/media/")
        # The browser loaded it without a bearer token.
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("e => e.naturalWidth") > 0
    finally:
        store.close()
