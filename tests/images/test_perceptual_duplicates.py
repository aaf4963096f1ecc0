"""Perceptual near-duplicates of images: resized and re-encoded copies grouped by their
difference hashes, byte-identical copies as exact duplicates, other images left alone."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longtail.engine.perceptual import close_pairs
from longtail.errors import InputError
from longtail.project import Project


def smooth_image(rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A picture with structure at the scale a dHash sees (not pixel noise)."""
    low = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    return Image.fromarray(low, "RGB").resize((size, size), Image.BILINEAR)


def make_folder(root: Path) -> Path:
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    for i in range(8):
        smooth_image(rng).save(root / f"img{i}.png")
    im = Image.open(root / "img0.png")
    im.resize((40, 40)).save(root / "img0_small.png")  # resized
    im.save(root / "img0_q70.jpg", quality=70)  # re-encoded
    Image.open(root / "img1.png").resize((96, 96)).save(root / "img1_big.webp")
    shutil.copy(root / "img2.png", root / "img2_copy.png")  # the same bytes
    return root


def test_resized_and_reencoded_copies_are_grouped_and_others_are_not(tmp_path):
    p = Project.init(tmp_path / "proj")
    p.ingest(make_folder(tmp_path / "imgs"))
    r = p.duplicates()
    ids = lambda groups: sorted(sorted(e["id"] for e in g) for g in groups)  # noqa: E731
    assert ids(r.exact) == [["img2.png", "img2_copy.png"]]
    assert ids(r.perceptual) == [["img0.png", "img0_q70.jpg", "img0_small.png"],
                                 ["img1.png", "img1_big.webp"],
                                 ["img2.png", "img2_copy.png"]]
    assert r.hash_bits == 8 and r.counts["perceptual_groups"] == 3
    # Asked for identical hashes only, the resized/re-encoded copies may fall apart but
    # nothing unrelated joins.
    strict = ids(p.duplicates(hash_bits=0).perceptual)
    assert all(set(g) <= set(h) for g in strict for h in ids(r.perceptual) if g[0] == h[0])
    with pytest.raises(InputError, match="hash-bits"):
        p.duplicates(hash_bits=40)


def test_text_pool_has_no_perceptual_groups(tmp_path):
    from tests.conftest import make_pool, write_pool_csv

    X, y = make_pool(20)
    p = Project.init(tmp_path / "proj")
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), text="text")
    r = p.duplicates()
    assert r.perceptual == [] and r.hash_bits is None and "perceptual_groups" not in r.counts


@pytest.mark.parametrize("bits", [0, 3, 8, 12])
def test_close_pairs_join_what_a_full_comparison_joins(bits):
    """The band buckets find every pair within `bits` (as groups) and nothing farther."""
    rng = np.random.default_rng(bits)
    base = rng.integers(0, 2**63, 60, dtype=np.uint64)
    flips = np.zeros(60, np.uint64)
    for i in range(60):
        for b in rng.choice(64, int(rng.integers(0, bits + 3)), replace=False):
            flips[i] |= np.uint64(1) << np.uint64(int(b))
    h = np.concatenate([base, base ^ flips, base[:4]])
    got = close_pairs(h, bits)
    dist = lambda i, j: bin(int(h[i]) ^ int(h[j])).count("1")  # noqa: E731
    assert all(dist(i, j) <= bits for i, j in got.tolist())
    parent = list(range(len(h)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in got.tolist():
        parent[find(i)] = find(j)
    for i, j in itertools.combinations(range(len(h)), 2):
        if dist(i, j) <= bits:
            assert find(i) == find(j), (i, j)
