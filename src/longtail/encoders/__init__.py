"""Encoders turn samples into vectors: precomputed, MiniLM text, tabular metadata.

    from longtail.encoders import get_encoder
    enc = get_encoder("tabular", columns=["age", "income"])
    enc.fit(batches)                       # one pass over the pool (a no-op for most)
    X = enc.encode({"text": [...], "metadata": [...]})   # (n, enc.dim) float32
    same = get_encoder(enc.name, **enc.config())
"""

from __future__ import annotations

import inspect

from longtail.encoders.base import Encoder
from longtail.encoders.minilm import MiniLMEncoder
from longtail.encoders.precomputed import PrecomputedEncoder
from longtail.encoders.tabular import TabularEncoder
from longtail.errors import InputError

ENCODERS: dict[str, type[Encoder]] = {
    PrecomputedEncoder.name: PrecomputedEncoder,
    MiniLMEncoder.name: MiniLMEncoder,
    TabularEncoder.name: TabularEncoder,
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


__all__ = [
    "ENCODERS",
    "Encoder",
    "MiniLMEncoder",
    "PrecomputedEncoder",
    "TabularEncoder",
    "get_encoder",
]
