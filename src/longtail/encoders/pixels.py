"""The pixels encoder: each image resized to a small square, its pixels projected on
their principal components (PCA fitted on a seeded sample of the pool). Always
available, no download, no GPU.

On Fashion-MNIST-like data this is a fair baseline (a linear head on 64 components of
28×28 pixels reaches the low 80s in accuracy with all labels); a pretrained network
passed as ``--encoder torch:package.module:fn`` does better on natural images.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from longtail.encoders.base import Encoder
from longtail.errors import InputError

MEDIA = "media"


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unpack(s: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").reshape(shape).copy()


class PixelsEncoder(Encoder):
    """Images (metadata ``media`` under ``media_root``) → ``components`` PCA scores of
    their ``size``×``size`` pixels in ``mode`` ("L" grey or "RGB"; None: grey when the
    fit sample is all grey). O(sample·pixels·components) to fit, O(n·pixels·components)
    to encode; images are read one batch at a time."""

    name: ClassVar[str] = "pixels"
    needs: ClassVar[str] = "media"

    def __init__(self, media_root: str | None = None, size: int = 28, components: int = 64,
                 mode: str | None = None, fit_sample: int = 4000, seed: int = 0,
                 mean: str | None = None, basis: str | None = None) -> None:
        if size < 4 or size > 256:
            raise InputError(f"pixels: size must be 4 to 256, got {size}")
        if components < 1:
            raise InputError(f"pixels: components must be at least 1, got {components}")
        if mode not in (None, "L", "RGB"):
            raise InputError(f"pixels: mode must be L or RGB, got {mode!r}")
        self.media_root = media_root
        self.size = int(size)
        self.components = int(components)
        self.mode = mode
        self.fit_sample = int(fit_sample)
        self.seed = int(seed)
        self._mean: np.ndarray | None = None
        self._basis: np.ndarray | None = None
        if mean is not None and basis is not None and mode is not None:
            width = self._width()
            self._mean = _unpack(mean, (width,))
            self._basis = _unpack(basis, (-1, width))
            self.components = self._basis.shape[0]

    @classmethod
    def check(cls, preview: Any) -> None:
        if MEDIA not in (getattr(preview, "columns", ()) or ()):
            raise InputError("the pixels encoder reads images, and these samples have no "
                             "'media' column: ingest an image folder (longtail ingest DIR) "
                             "or a file with --media COLUMN")

    def _width(self) -> int:
        return self.size * self.size * (1 if self.mode == "L" else 3)

    @property
    def dim(self) -> int:
        return self.components

    def _pixels(self, media: list[str]) -> np.ndarray:
        from longtail.media import media_path, open_image

        if not self.media_root:
            raise InputError("pixels: the project has no media root; ingest an image folder "
                             "first or set it with `longtail settings media_root DIR`")
        out = np.empty((len(media), self._width()), dtype=np.float32)
        for i, rel in enumerate(media):
            if not rel:
                raise InputError(f"pixels: sample {i + 1} of the batch has no media path")
            im = open_image(media_path(self.media_root, rel)).convert(self.mode or "RGB")
            im = im.resize((self.size, self.size))
            out[i] = np.asarray(im, dtype=np.float32).ravel() / 255.0
        return out

    def _settle_mode(self, media: list[str]) -> None:
        """Grey ("L") when every image of ``media`` is grey, else RGB."""
        from longtail.media import media_path, open_image

        modes = {open_image(media_path(self.media_root, rel)).mode for rel in media}
        self.mode = "L" if modes <= {"L", "1", "I", "I;16", "F"} else "RGB"

    def fit(self, batches: Iterable[dict]) -> None:
        """Fit the PCA on a seeded sample of up to ``fit_sample`` images (one pass over
        the media paths, which are short strings; only the sample is read)."""
        media = [m.get(MEDIA) for b in batches for m in b["metadata"]]
        rng = np.random.default_rng(self.seed)
        take = np.sort(rng.permutation(len(media))[: self.fit_sample])
        sample = [media[i] for i in take]
        if self.mode is None:
            self._settle_mode(sample[:200])
        self._phase(f"fitting PCA on {len(sample):,} images")
        X = self._pixels(sample)
        self._mean = X.mean(axis=0)
        k = min(self.components, X.shape[0], X.shape[1])
        # The top-k right singular vectors; a randomized SVD would do for large widths, the
        # sample is small enough for the exact one.
        _, _, vt = np.linalg.svd(X - self._mean, full_matrices=False)
        self._basis = vt[:k].astype(np.float32)
        self.components = k

    def project(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels already decoded, (n, size·size·channels) in [0, 1], onto the fitted
        components: (n, components) float32."""
        if self._basis is None:
            raise InputError("pixels: the encoder is not fitted")
        return ((pixels - self._mean) @ self._basis.T).astype(np.float32)

    def encode(self, batch: dict) -> np.ndarray:
        if self._basis is None:
            raise InputError("pixels: the encoder is not fitted")
        return self.project(self._pixels([m.get(MEDIA) for m in batch["metadata"]]))

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"media_root": self.media_root, "size": self.size,
                               "components": self.components, "mode": self.mode,
                               "fit_sample": self.fit_sample, "seed": self.seed}
        if self._basis is not None:
            out["mean"] = _pack(self._mean)
            out["basis"] = _pack(self._basis)
        return out

    def describe(self) -> dict[str, Any]:
        return {"dim": self.components, "size": self.size, "mode": self.mode,
                "media_root": str(Path(self.media_root)) if self.media_root else None}


class RawPixelsEncoder(PixelsEncoder):
    """Images → their ``size``×``size`` pixels in [0, 1], flattened (grey: size² values,
    RGB: 3·size²), no projection: the input of the CNN learner (``--learner cnn``).
    Fitting only settles the mode (grey when the sample is all grey)."""

    name: ClassVar[str] = "pixels-raw"

    def __init__(self, media_root: str | None = None, size: int = 28, mode: str | None = None,
                 fit_sample: int = 200, seed: int = 0) -> None:
        super().__init__(media_root=media_root, size=size, components=1, mode=mode,
                         fit_sample=fit_sample, seed=seed)

    @property
    def dim(self) -> int:
        if self.mode is None:
            raise InputError("pixels-raw: the encoder is not fitted (its mode is unknown)")
        return self._width()

    def fit(self, batches: Iterable[dict]) -> None:
        """Settle the mode from a seeded sample of up to ``fit_sample`` images."""
        if self.mode is not None:
            return
        media = [m.get(MEDIA) for b in batches for m in b["metadata"]]
        rng = np.random.default_rng(self.seed)
        take = np.sort(rng.permutation(len(media))[: self.fit_sample])
        self._settle_mode([media[i] for i in take])

    def project(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(pixels, dtype=np.float32)

    def encode(self, batch: dict) -> np.ndarray:
        return self._pixels([m.get(MEDIA) for m in batch["metadata"]])

    def config(self) -> dict[str, Any]:
        return {"media_root": self.media_root, "size": self.size, "mode": self.mode,
                "fit_sample": self.fit_sample, "seed": self.seed}

    def describe(self) -> dict[str, Any]:
        return {"dim": self._width() if self.mode else None, "size": self.size,
                "mode": self.mode,
                "media_root": str(Path(self.media_root)) if self.media_root else None}
