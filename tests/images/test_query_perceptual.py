"""`query` on an image pool offers one image of a group of near-identical ones per
batch, and none once one of the group is labeled or queued."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.engine.perceptual import confirmed, one_per_group
from longtail.errors import EmptyPoolError
from longtail.project import Project
from tests.images.test_perceptual_duplicates import make_folder

# make_folder's groups: img0 with a resized and a re-encoded copy, img1 with an
# enlarged copy, img2 with a byte-identical copy; five other images stand alone.
GROUPS = [{"img0.png", "img0_small.png", "img0_q70.jpg"}, {"img1.png", "img1_big.webp"},
          {"img2.png", "img2_copy.png"}]


def _project(tmp_path) -> Project:
    p = Project.init(tmp_path / "proj", eval_rate=0.0)
    p.ingest(make_folder(tmp_path / "imgs"))
    p.embed("pixels")
    return p


def test_a_batch_holds_one_image_per_near_duplicate_group(tmp_path):
    p = _project(tmp_path)
    q = p.query(12, strategy="random")
    ids = set(q.ids)
    assert all(len(ids & g) == 1 for g in GROUPS)
    assert len(ids) == 12 - 4  # each group's copies held back
    assert q.log["duplicates"]["perceptual"] == 4
    # The copies stay out while their group's image is queued, and once it is labeled
    # nothing but copies is left: said so, with the way to get them anyway.
    from longtail.engine.labels import LabelEvent

    with pytest.raises(EmptyPoolError, match="include-duplicates"):
        p.query(4, strategy="random")
    p.record_labels([LabelEvent(id=i, label="x") for i in sorted(ids)])
    with pytest.raises(EmptyPoolError, match="include-duplicates"):
        p.query(4, strategy="random")
    again = p.query(4, strategy="random", include_duplicates=True)
    assert set(again.ids) == set().union(*GROUPS) - ids


def test_one_per_group_keeps_the_first_offered_and_drops_the_twins_of_held_ones():
    cand = np.array([1, 2, 3, 5, 6, 7, 9])
    # 1-2 and 2-3 pair (a chain: 3 is not a copy of 1), 4-5 with 4 held, 6-9
    pairs = np.array([[1, 2], [2, 3], [4, 5], [9, 6]])
    keep = one_per_group(cand, pairs, held=np.array([4]))
    assert cand[keep].tolist() == [1, 3, 6, 7]
    assert one_per_group(cand, np.zeros((0, 2), np.int64), held=np.array([], np.int64)).all()


def test_garments_that_only_share_a_hash_are_not_copies():
    """Different small images can share a difference hash; their vectors tell them
    apart, a resized copy's do not."""
    rng = np.random.default_rng(0)
    a = rng.random(64)
    vectors = np.stack([a, a * 1.01 + 0.001, rng.random(64)])
    assert confirmed(np.array([[0, 1], [0, 2]]), vectors).tolist() == [[0, 1]]
