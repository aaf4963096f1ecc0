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
from tests.server.conftest import Clock  # noqa: E402


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
