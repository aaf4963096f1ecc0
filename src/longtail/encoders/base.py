"""What every encoder offers the store: a name, what it reads, a dimension, encode, config."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from longtail.encoders.preview import SamplePreview


class Encoder:
    """Base of the encoders: turns a batch of samples into vectors.

    A batch is ``{"text": list[str], "metadata": list[dict]}`` with one entry per
    sample, optionally with ``"rows"`` (pool row numbers, 0-based) and ``"ids"`` so
    that errors name the sample (``samples_batch`` builds one from the store's
    samples). ``encode`` returns a ``(n, dim)`` float32 array in the same order.
    ``needs`` says which part of the batch the encoder reads ("text", "metadata"
    or "none"), so the store can skip loading the rest. ``config()`` is
    JSON-serialisable and ``get_encoder(name, **config)`` rebuilds the same encoder.

    Progress hook: set ``enc.on_phase = callback`` (``callback(message: str)``) and
    the encoder announces slow steps before it starts them, such as "loading model"
    (MiniLM, 10-40 s on a CPU) or the tabular fit's pass over the pool.
    """

    name: ClassVar[str] = ""
    needs: ClassVar[str] = "none"
    on_phase: Callable[[str], None] | None = None

    def _phase(self, message: str) -> None:
        if self.on_phase is not None:
            self.on_phase(message)

    @classmethod
    def check(cls, preview: SamplePreview) -> None:
        """Raise InputError when the samples previewed lack what this encoder reads,
        before any vector is written. The base accepts everything."""
        return None

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

    def describe(self) -> dict[str, Any]:
        """What the encoder uses, for the user: at least ``{"dim": N}``."""
        try:
            return {"dim": self.dim}
        except Exception:  # noqa: BLE001 - a dimension not known yet is not an error here
            return {"dim": None}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({params})"


def samples_batch(samples: Sequence[tuple[int, str, str | None, dict]]) -> dict:
    """An encoder batch from the store's ``(row, id, text, metadata)`` tuples: text
    (None as ""), metadata, and the rows and ids that error messages name."""
    return {"text": [t or "" for _, _, t, _ in samples],
            "metadata": [m for _, _, _, m in samples],
            "rows": [r for r, _, _, _ in samples],
            "ids": [e for _, e, _, _ in samples]}


def row_names(batch: dict, rows_before: int) -> list[str]:
    """How errors name each sample of a batch: "row N (id 'x')", N 1-based like the
    ingest's messages (the pool's row, equal to the file's data row for a pool made
    of one file). Without ``rows`` in the batch, N counts from ``rows_before``."""
    n = len(batch.get("metadata") or batch.get("text") or [])
    rows = batch.get("rows")
    numbers = [int(r) + 1 for r in rows] if rows is not None else \
        range(rows_before + 1, rows_before + n + 1)
    ids = batch.get("ids")
    if ids is None:
        return [f"row {k}" for k in numbers]
    return [f"row {k} (id {i!r})" for k, i in zip(numbers, ids, strict=True)]
