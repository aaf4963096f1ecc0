"""Encoders turn samples into vectors: precomputed, MiniLM text, tabular metadata.

    from longtail.encoders import get_encoder
    enc = get_encoder("tabular", columns=["age", "income"])
    enc.fit(batches)                       # one pass over the pool (a no-op for most)
    X = enc.encode({"text": [...], "metadata": [...]})   # (n, enc.dim) float32
    same = get_encoder(enc.name, **enc.config())

Before embedding, ``check_encoder_fits(name, preview_samples(first_samples))`` refuses
an encoder the data cannot feed (MiniLM on a pool without text); ``suggest_embed``
names the encoder that fits. ``enc.on_phase = print`` announces slow steps.
"""

from __future__ import annotations

import inspect

from longtail.columns import natural_sorted
from longtail.encoders.base import Encoder, samples_batch
from longtail.encoders.minilm import MiniLMEncoder
from longtail.encoders.pixels import PixelsEncoder, RawPixelsEncoder
from longtail.encoders.precomputed import PrecomputedEncoder
from longtail.encoders.preview import SamplePreview, preview_samples, suggest_embed
from longtail.encoders.tabular import (
    TabularEncoder,
    check_not_features,
    needs_refit,
    tabular_params,
)
from longtail.encoders.torch_images import TorchImageEncoder
from longtail.errors import InputError

ENCODERS: dict[str, type[Encoder]] = {
    PrecomputedEncoder.name: PrecomputedEncoder,
    MiniLMEncoder.name: MiniLMEncoder,
    TabularEncoder.name: TabularEncoder,
    PixelsEncoder.name: PixelsEncoder,
    RawPixelsEncoder.name: RawPixelsEncoder,
    TorchImageEncoder.name: TorchImageEncoder,
}


def get_encoder(name: str, **params) -> Encoder:
    """Build the encoder registered as ``name`` with its parameters.

    Raises InputError for an unknown name (listing the valid ones) or bad parameters.
    """
    try:
        cls = ENCODERS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(ENCODERS))
        raise InputError(f"unknown encoder {name!r}; valid encoders: {valid}") from None
    try:
        inspect.signature(cls).bind(**params)
    except TypeError as exc:
        raise InputError(f"encoder {name!r}: {exc}") from None
    return cls(**params)


def check_encoder_fits(encoder_name: str, preview: SamplePreview) -> None:
    """Raise InputError when encoder ``encoder_name`` cannot use the samples previewed
    (e.g. MiniLM on a pool without text), naming what is missing and the encoder that
    fits. Call it before any vector is written; it loads no model."""
    try:
        cls = ENCODERS[encoder_name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(ENCODERS))
        raise InputError(f"unknown encoder {encoder_name!r}; valid encoders: {valid}") from None
    cls.check(preview)


__all__ = [
    "ENCODERS",
    "Encoder",
    "MiniLMEncoder",
    "PixelsEncoder",
    "PrecomputedEncoder",
    "RawPixelsEncoder",
    "SamplePreview",
    "TabularEncoder",
    "TorchImageEncoder",
    "check_encoder_fits",
    "check_not_features",
    "get_encoder",
    "natural_sorted",
    "needs_refit",
    "preview_samples",
    "samples_batch",
    "suggest_embed",
    "tabular_params",
]
