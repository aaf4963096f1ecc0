"""Vectors that arrive with the data: nothing to compute."""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.encoders.base import Encoder
from longtail.errors import InputError


class PrecomputedEncoder(Encoder):
    """Vectors supplied at ingest (``--vector-prefix`` / ``--vector-column``).

    ``dim`` is whatever the ingested vectors have; pass it when known so
    ``config()`` records it. ``encode`` always raises: there is no model to run.
    """

    name = "precomputed"
    needs = "none"

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (int(dim) != dim or dim <= 0):
            raise InputError(f"precomputed encoder: dim must be a positive integer, got {dim!r}")
        self._dim = None if dim is None else int(dim)

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise InputError(
                "precomputed encoder: the dimension comes from the vectors supplied at "
                "ingest and none are known yet"
            )
        return self._dim

    def encode(self, batch: dict) -> np.ndarray:
        raise InputError(
            "encoder 'precomputed' computes nothing: vectors must be supplied at ingest "
            "(--vector-prefix or --vector-column); to compute vectors use "
            "--encoder minilm (text) or --encoder tabular (numeric metadata)"
        )

    def config(self) -> dict[str, Any]:
        return {} if self._dim is None else {"dim": self._dim}
