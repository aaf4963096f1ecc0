"""`--encoder torch:package.module:fn`: a user's network embeds an image folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from longtail.project import Project  # noqa: E402
from tests.conftest import snapshot  # noqa: E402
from tests.images.test_image_pool import make_folder  # noqa: E402
from tests.reads import read  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _cli(proj: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "longtail.cli", *args, "-p", str(proj)],
                          capture_output=True, text=True, cwd=ROOT)


def test_a_users_network_embeds_the_folder(tmp_path):
    from tests.images.tiny_net import build

    root = make_folder(tmp_path / "imgs", per_class=5, size=20)
    proj = tmp_path / "proj"
    Project.init(proj).ingest(root, folder_labels=True)
    r = _cli(proj, "embed", "--encoder", "torch:tests.images.tiny_net:build",
             "--encoder-param", "size=16", "--encoder-param", "normalize=false", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["embedded"] == 10
    p = Project(proj)
    vs = read(p.store, lambda u: u.vector_set("torch"))
    X = vs.read(np.arange(vs.n_rows))
    assert X.shape == (10, 8)
    # The vectors are the network's output on the images as the encoder reads them.
    from longtail.media import open_image

    im = open_image(root / "left" / "left_0.png").convert("RGB").resize((16, 16))
    x = torch.from_numpy(np.asarray(im, np.float32).transpose(2, 0, 1)[None] / 255.0)
    with torch.no_grad():
        want = build()(x).numpy()[0]
    rows = {i: r for r, i in enumerate(sorted(str(q.relative_to(root)) for q in
                                              root.rglob("*.png")))}
    assert np.allclose(X[rows["left/left_0.png"]], want, atol=1e-4)


@pytest.mark.parametrize("spec,says", [("torch:tests.images.tiny_net:nope", "no callable"),
                                       ("torch:no_such_module:fn", "cannot import"),
                                       ("torch:tests.images.tiny_net:not_a_network",
                                        "not a module")])
def test_bad_network_is_named_and_nothing_is_written(tmp_path, spec, says):
    root = make_folder(tmp_path / "imgs", per_class=2, size=20)
    proj = tmp_path / "proj"
    p = Project.init(proj)
    p.ingest(root)
    before = snapshot(p, ledger=False)
    r = _cli(proj, "embed", "--encoder", spec)
    assert r.returncode == 2 and says in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert snapshot(p, ledger=False) == before
