"""The torch CNN on images: learns shifted patterns, augments by shifting, saves
without pickle, samples MC dropout on its head, and runs from the CLI on an image
folder embedded as raw pixels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from longtail.errors import InputError  # noqa: E402
from longtail.learners import make_learner, persist  # noqa: E402
from longtail.learners.torch_cnn import TorchCNN  # noqa: E402


def shifted_bars(n: int, side: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: a vertical or a horizontal bar, placed anywhere. A linear model
    on pixels cannot tell them apart from their position; convolutions can."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, side, side)).astype(np.float32) * 0.2
    y = rng.integers(0, 2, n)
    for i in range(n):
        a, b = rng.integers(1, side - 5, 2)
        if y[i]:
            X[i, a:a + 5, b] += 0.8
        else:
            X[i, a, b:b + 5] += 0.8
    return X.reshape(n, -1), np.where(y == 1, "vertical", "horizontal")


def test_cnn_learns_shapes_anywhere_and_round_trips_without_pickle(tmp_path):
    X, y = shifted_bars(500, seed=1)
    m = make_learner("cnn", width=8, hidden=32, epochs=25, seed=0).fit(X[:400], y[:400])
    acc = float(np.mean(m.predict(X[400:]) == y[400:]))
    assert acc > 0.9
    arrays = persist.dump(m)
    np.savez(tmp_path / "m.npz", **arrays)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as got:
        back = persist.load(dict(got))
    assert isinstance(back, TorchCNN)
    assert persist.spec_of(back)["name"] == "cnn"
    np.testing.assert_allclose(back.predict_proba(X[400:]), m.predict_proba(X[400:]), atol=1e-5)
    assert persist.warm_starts(back) and isinstance(persist.fresh_like(back), TorchCNN)


def test_augmentation_shifts_each_image_and_keeps_its_content():
    m = TorchCNN(shift=2, seed=0)
    img = torch.zeros(6, 1, 10, 10)
    img[:, 0, 4:6, 4:6] = 1.0  # a 2×2 dot in the middle, far from the border
    out = m._augment(img.reshape(6, 100), torch.Generator().manual_seed(3)).reshape(6, 10, 10)
    assert out.shape == (6, 10, 10)
    assert torch.allclose(out.sum(dim=(1, 2)), torch.full((6,), 4.0))  # nothing cut off
    centres = [tuple(torch.nonzero(o).float().mean(0).tolist()) for o in out]
    assert len(set(centres)) > 1  # images moved, not all alike
    assert all(abs(r - 4.5) <= 2 and abs(c - 4.5) <= 2 for r, c in centres)


def test_mc_dropout_samples_only_the_head():
    X, y = shifted_bars(200, seed=2)
    m = TorchCNN(width=4, hidden=16, epochs=5, dropout=0.5).fit(X, y)
    S = m.posterior_samples(X[:50], 8)
    assert S.shape == (8, 50, 2)
    np.testing.assert_allclose(S.sum(axis=2), 1.0, atol=1e-5)
    assert S.std(axis=0).max() > 0  # dropout on: the passes differ
    np.testing.assert_allclose(m.posterior_samples(X[:50], 8), S)  # and are seeded


def test_cnn_refuses_vectors_that_are_not_images():
    with pytest.raises(InputError, match="pixels-raw"):
        TorchCNN().fit(np.zeros((10, 30), np.float32), np.arange(10) % 2)


def test_image_folder_to_cnn_from_the_cli(tmp_path):
    """ingest DIR → embed --encoder pixels-raw → train --learner cnn → query bald."""
    from PIL import Image

    X, y = shifted_bars(40, seed=4)
    root = tmp_path / "imgs"
    names = []
    for i, (x, label) in enumerate(zip(X, y, strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        names.append(f"{label}/{i}.png")
        Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8).reshape(12, 12),
                        "L").save(root / names[-1])
    proj = tmp_path / "proj"

    def cli(*args: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "longtail.cli", *args, "-p", str(proj),
                            "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    subprocess.run([sys.executable, "-m", "longtail.cli", "init", str(proj), "--eval-rate",
                    "0"], check=True, capture_output=True)
    # Half the folder labeled: ingest it without labels, then import 20.
    cli("ingest", str(root))
    assert cli("embed", "--encoder", "pixels-raw")["embedded"] == 40
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"{n},{c}\n" for n, c in
                                               zip(names[:20], y[:20], strict=True)))
    cli("import-labels", str(labels))
    out = cli("train", "--learner", "cnn", "--learner-param", "width=4",
              "--learner-param", "epochs=10")
    assert out["model_id"] == 1
    q = cli("query", "--strategy", "bald", "--budget", "5")
    assert len(q["ids"]) == 5 and not set(q["ids"]) & set(names[:20])


def test_holdout_rows_stay_held_out_as_labels_grow():
    """A warm-started round must not validate on rows the last round trained on: the
    early-stopping split keeps each labeled image on the same side as labels arrive."""
    X, y = shifted_bars(300, seed=5)
    m = TorchCNN()
    y_idx = np.unique(y, return_inverse=True)[1]
    _, val_before = m._split(X[:200], y_idx[:200])
    train_after, val_after = m._split(X, y_idx)
    assert len(val_before) > 10
    assert set(val_before) <= set(val_after) and not set(val_before) & set(train_after)


def test_max_samples_bounds_the_passes_over_the_labels():
    X, y = shifted_bars(100, seed=6)
    m = TorchCNN(width=4, hidden=8, epochs=50, patience=50, holdout=0.0,
                 max_samples=300).fit(X, y)
    assert m.n_epochs_ == 3  # 300 rows seen of 100 labels


def test_probabilities_and_mc_samples_share_one_pass_of_the_body():
    X, y = shifted_bars(120, seed=7)
    m = TorchCNN(width=4, hidden=8, epochs=2).fit(X, y)
    calls = []
    m.net_[1].register_forward_hook(lambda *a: calls.append(1))  # the first convolution
    p = m.predict_proba(X)
    S = m.posterior_samples(X, 6)
    assert len(calls) == 1 and S.shape == (6, 120, 2) and p.shape == (120, 2)
    m.fit(X, y)  # new weights: the cached features are dropped
    calls.clear()
    m.predict_proba(X)
    assert len(calls) == 1
