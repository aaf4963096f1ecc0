"""A small CNN on images given as flattened pixels (the `pixels-raw` encoder's vectors):
two conv blocks, a dropout head, random-shift augmentation while training, MC dropout
on the head for BALD, mean-KL and EPIG. Everything else (warm start, early stopping on
a held-out labeled split, saving without pickle) is the MLP's (`torch_mlp.TorchMLP`).

Optional like the MLP (`pip install 'longtail[torch]'`); torch is imported only when a
CNN is built.
"""

from __future__ import annotations

import math
from typing import Any

from longtail.errors import InputError
from longtail.learners.torch_mlp import TorchMLP, load_torch

FORMAT = "longtail.torch-cnn/1"
MAX_SAMPLES = 60_000  # training rows seen per fit at most: 60 epochs of 1,000, 20 of 3,000


class TorchCNN(TorchMLP):
    """Images as (n, channels·side·side) rows in [0, 1] → conv(``width``) → pool →
    conv(2·``width``) → pool → ``hidden`` ReLU units (dropout ``dropout``) → class logits.

    ``side`` is read from the rows (√(d / channels)) unless given. While training, each
    image is shifted by up to ``shift`` pixels (zero fill), a standard augmentation that
    keeps labels of centred objects; ``flip`` adds left-right flips (off by default:
    wrong for digits and text). A fit sees at most ``max_samples`` training rows (see
    `TorchMLP`): O(min(epochs·n, max_samples)·side²·width²) to fit.
    """

    FORMAT = FORMAT

    def __init__(self, channels: int = 1, side: int | None = None, width: int = 32,
                 hidden: int = 128, dropout: float = 0.3, shift: int = 2, flip: bool = False,
                 epochs: int = 60, lr: float = 1e-3, weight_decay: float = 1e-4,
                 batch_size: int = 64, patience: int = 8, holdout: float = 0.15,
                 mc_samples: int = 20, warm_start: bool = True, seed: int = 0,
                 max_samples: int | None = MAX_SAMPLES):
        super().__init__(hidden=hidden, dropout=dropout, epochs=epochs, lr=lr,
                         weight_decay=weight_decay, batch_size=batch_size, patience=patience,
                         holdout=holdout, mc_samples=mc_samples, warm_start=warm_start,
                         seed=seed, max_samples=max_samples)
        self.channels = channels
        self.side = side
        self.width = width
        self.shift = shift
        self.flip = flip

    def _side(self, d: int) -> int:
        side = self.side or math.isqrt(max(d // max(self.channels, 1), 0))
        if side < 4 or self.channels * side * side != d:
            raise InputError(
                f"cnn: vectors of {d} values are not {self.channels}-channel square images; "
                "embed the images with --encoder pixels-raw (or pass side= and channels=)")
        return side

    def _build(self, d: int, c: int) -> Any:
        torch = load_torch()
        nn = torch.nn
        torch.manual_seed(self.seed)
        side = self._side(d)
        flat = 2 * self.width * (side // 4) ** 2
        return nn.Sequential(
            nn.Unflatten(1, (self.channels, side, side)),
            nn.Conv2d(self.channels, self.width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(self.width, 2 * self.width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(flat, self.hidden), nn.ReLU(),
            nn.Dropout(self.dropout), nn.Linear(self.hidden, c))

    def _augment(self, xb: Any, gen: Any) -> Any:
        """Each image of the batch shifted by its own random (dy, dx) in
        [-shift, shift]² with zero fill, and flipped left-right half the time with
        ``flip``."""
        torch = load_torch()
        if self.shift <= 0 and not self.flip:
            return xb
        n, d = xb.shape
        side = self._side(d)
        imgs = xb.view(n, self.channels, side, side)
        s = int(self.shift)
        if s > 0:
            # One gather for the whole batch: image i's window starts at (a_i, b_i) of
            # the zero-padded images.
            padded = torch.nn.functional.pad(imgs, (s, s, s, s))
            offs = torch.randint(0, 2 * s + 1, (n, 2), generator=gen)
            ar = torch.arange(side)
            rows = (offs[:, 0, None] + ar)[:, None, :, None]
            cols = (offs[:, 1, None] + ar)[:, None, None, :]
            imgs = padded[torch.arange(n)[:, None, None, None],
                          torch.arange(self.channels)[None, :, None, None], rows, cols]
        if self.flip:
            mirror = torch.rand(n, generator=gen) < 0.5
            imgs = torch.where(mirror[:, None, None, None], imgs.flip(-1), imgs)
        return imgs.reshape(n, d)


__all__ = ["FORMAT", "TorchCNN"]
