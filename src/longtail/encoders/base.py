"""What every encoder offers the store: a name, what it reads, a dimension, encode, config."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np


class Encoder:
    """Base of the encoders: turns a batch of samples into vectors.

    A batch is ``{"text": list[str], "metadata": list[dict]}`` with one entry per
    sample; ``encode`` returns a ``(n, dim)`` float32 array in the same order.
    ``needs`` says which part of the batch the encoder reads ("text", "metadata"
    or "none"), so the store can skip loading the rest. ``config()`` is
    JSON-serialisable and ``get_encoder(name, **config)`` rebuilds the same encoder.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[str] = "none"

    def fit(self, batches: Iterable[dict]) -> None:
        """One optional pass over the pool before encoding; a no-op unless overridden."""
        return None

    def encode(self, batch: dict) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def dim(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({params})"
