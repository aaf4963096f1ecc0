"""A look at the first samples of a pool: what an encoder can use, and which to suggest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from longtail.columns import is_label_like, natural_sorted, to_float


@dataclass(frozen=True)
class SamplePreview:
    """What the first ``n`` samples of a pool hold.

    n : samples looked at. n_text : of those, samples with non-blank text.
    numeric_columns : metadata columns holding a number in every previewed sample, in
        natural order, label-like names (see ``is_label_like``) left out.
    columns : every metadata column met, natural order.
    has_vectors : the pool carries precomputed vectors (from ingest).
    """

    n: int
    n_text: int
    numeric_columns: tuple[str, ...]
    columns: tuple[str, ...]
    has_vectors: bool = False

    @property
    def has_text(self) -> bool:
        return self.n_text > 0


def preview_samples(samples: Iterable[tuple[int, str, str | None, dict]], *,
                    has_vectors: bool = False) -> SamplePreview:
    """Summarise ``(row, id, text, metadata)`` tuples (the store's ``iter_samples``
    format; pass its first chunk, a thousand rows is plenty). O(rows·columns)."""
    n = n_text = 0
    numeric: dict[str, int] = {}
    for _, _, text, meta in samples:
        n += 1
        if isinstance(text, str) and text.strip():
            n_text += 1
        for key, value in (meta or {}).items():
            numeric.setdefault(key, 0)
            if to_float(value) is not None:
                numeric[key] += 1
    columns = natural_sorted(numeric)
    usable = tuple(c for c in columns if numeric[c] == n and not is_label_like(c))
    return SamplePreview(n, n_text, usable, tuple(columns), bool(has_vectors))


def suggest_embed(preview: SamplePreview) -> str:
    """The command that gives this pool vectors: text -> ``longtail embed --encoder
    minilm``; numeric metadata only -> ``... --encoder tabular``; precomputed vectors
    -> "" (nothing to embed); nothing usable -> the ingest options that add some."""
    if preview.has_vectors:
        return ""
    if preview.has_text:
        return "longtail embed --encoder minilm"
    if preview.numeric_columns:
        return "longtail embed --encoder tabular"
    return "longtail ingest FILE --text COLUMN (or --vector-prefix PREFIX)"
