"""Image pools end to end: a folder in, checked with Pillow, embedded by pixels, trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longtail.errors import InputError
from longtail.ingest.images import dhash, image_table, open_image
from longtail.project import Project
from tests.conftest import snapshot
from tests.reads import read


def make_folder(root: Path, per_class: int = 12, size: int = 16, seed: int = 0) -> Path:
    """Two classes that pixels tell apart: bright squares on the left or on the right."""
    rng = np.random.default_rng(seed)
    for cls, side in (("left", 0), ("right", 1)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.integers(0, 40, (size, size)).astype(np.uint8)
            cols = slice(0, size // 2) if side == 0 else slice(size // 2, size)
            a[:, cols] += 180
            Image.fromarray(a, "L").save(root / cls / f"{cls}_{i}.png")
    return root


def test_folder_becomes_rows_with_labels_and_hashes(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=3)
    t = image_table(root, folder_labels=True).to_pydict()
    assert t["id"][0] == "left/left_0.png" and t["media"] == t["id"]
    assert t["label"] == ["left"] * 3 + ["right"] * 3
    assert all(len(h) == 16 for h in t["dhash"]) and t["width"][0] == 16


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    shown = open_image(tmp_path / "rot.jpg")
    assert (shown.width, shown.height) == (20, 40)


def test_dhash_near_identical_images_differ_in_few_bits(tmp_path):
    rng = np.random.default_rng(1)
    a = (rng.random((64, 64)) * 255).astype(np.uint8)
    b = Image.fromarray(a).resize((48, 48))  # the same picture, resized
    c = Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8))
    ha, hb, hc = (int(dhash(x), 16) for x in (Image.fromarray(a), b, c))
    assert bin(ha ^ hb).count("1") <= 8 < bin(ha ^ hc).count("1")


def test_bad_file_is_named_and_nothing_is_written(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=3)
    (root / "left" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    p = Project.init(tmp_path / "proj")
    before = snapshot(p)
    with pytest.raises(InputError, match="broken.png"):
        p.ingest(root, folder_labels=True)
    assert snapshot(p) == before


def test_decompression_bomb_limit_is_kept(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs", per_class=2, size=64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64×64 = 4096 > 2 × 1000
    with pytest.raises(InputError, match="decompression-bomb"):
        image_table(root)


def test_folder_labels_need_class_folders(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=2)
    Image.new("L", (8, 8)).save(root / "loose.png")
    with pytest.raises(InputError, match="top level"):
        image_table(root, folder_labels=True)


def test_image_pool_through_the_cli(tmp_path):
    """ingest DIR → embed --encoder pixels → train: the pixels separate the classes."""
    root = make_folder(tmp_path / "imgs", per_class=20)
    proj = tmp_path / "proj"

    def cli(*args: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "longtail.cli", *args, "-p", str(proj), "--json"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    subprocess.run([sys.executable, "-m", "longtail.cli", "init", str(proj)], check=True,
                   capture_output=True)
    out = cli("ingest", str(root), "--folder-labels")
    assert out["new"] == 40 and out["labels"] == 40
    out = cli("embed", "--encoder", "pixels")
    assert out["embedded"] == 40
    p = Project(proj)
    vs = read(p.store, lambda u: u.vector_set("pixels"))
    X = vs.read(np.arange(vs.n_rows))
    assert X.shape == (40, min(64, 40))
    # The first component alone splits left from right.
    assert abs(np.corrcoef(X[:, 0], np.r_[np.zeros(20), np.ones(20)])[0, 1]) > 0.9


def test_pixels_refuses_a_pool_without_images(tmp_path):
    from tests.conftest import make_pool, write_pool_csv

    X, y = make_pool(20)
    f = write_pool_csv(tmp_path / "pool.csv", X, y)
    p = Project.init(tmp_path / "proj")
    p.ingest(f, text="text")
    with pytest.raises(InputError, match="media"):
        p.embed("pixels")


def test_query_says_when_the_rest_are_duplicates_of_labeled_images(tmp_path):
    """Images of one class that differ only by faint noise are near-duplicates: the
    refusal names them and the way out, not "every sample is labeled"."""
    from longtail.errors import EmptyPoolError

    root = make_folder(tmp_path / "imgs", per_class=10, size=12)
    p = Project.init(tmp_path / "proj", eval_rate=0.0)
    p.ingest(root)
    p.embed("pixels-raw")
    labels = tmp_path / "l.csv"
    labels.write_text("id,label\n" + "".join(f"{c}/{c}_{i}.png,{c}\n" for c in ("left", "right")
                                            for i in range(5)))
    p.import_labels(labels)
    with pytest.raises(EmptyPoolError, match="duplicates of labeled.*--include-duplicates"):
        p.query(budget=4, strategy="random")
    assert len(p.query(budget=4, strategy="random", include_duplicates=True).ids) == 4
