"""A labeled file outside the pool (a test set), read into the project's vector space.

The vectors of a test file must be made exactly as the pool's were:

- precomputed project: the file carries its vectors (``vector_prefix`` / ``vector``);
- MiniLM project: the ``text`` column is embedded (or the file carries vectors);
- tabular project: the file's raw feature columns, by the same names as the pool's
  (the encoder config's ``columns``), go through the encoder's fitted choices (the
  pool's medians fill missing cells, its categories one-hot encode text, its scaling
  applies). Here
  ``vector_prefix`` is optional and means those raw features: it must number exactly
  the pool's feature columns (``f`` for f0, f1, ...), which are then scaled like the
  pool's. Already-scaled vectors (``vector``, or a prefix naming other columns) are
  refused: the file cannot say which space they are in.

With a ``cache`` (the store's ``ArrayCache``, ``longtail.store.files``) the result is
kept under a key of the file's SHA-256, the encoder and its config and the columns
read, so scoring the same file again does not embed it again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.encoders import get_encoder
from longtail.errors import InputError
from longtail.filehash import file_sha256
from longtail.ingest.mapping import ColumnMapping, column_strings, resolve, vectors_of
from longtail.ingest.pipeline import PRECOMPUTED
from longtail.ingest.readers import TableSource

if TYPE_CHECKING:
    from longtail.store.files import ArrayCache

CACHE_VERSION = 1


def read_labeled_file(path: str | Path, *, encoder_name: str, encoder_config: dict | None,
                      dim: int, id: str = "id", text: str | None = "text",
                      label: str = "label", vector: str | None = None,
                      vector_prefix: str | None = None, cache: ArrayCache | None = None,
                      on_phase: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of a labeled file: ``(n, dim)`` float32 vectors made as the project's
    vector set ``encoder_name`` (built with ``encoder_config``) makes them, and the
    ``(n,)`` object array of labels from column ``label``.

    Raises InputError naming file, row and column for a missing column, an empty
    label, a non-numeric feature, or vectors of another dimension. ``on_phase`` is
    handed to the encoder (see ``Encoder.on_phase``). Time O(rows · cost of the
    encoder), nothing on a cache hit but the file's hash; memory O(rows · dim).
    """
    src = TableSource(path)
    where = str(src.path)
    names = list(src.schema.names)
    config = dict(encoder_config or {})
    features: list[str] | None = None
    if encoder_name == "tabular":
        features = _tabular_features(where, names, config, vector, vector_prefix)
        vector = vector_prefix = None
    has_vectors = bool(vector or vector_prefix)
    if encoder_name == PRECOMPUTED and not has_vectors:
        raise InputError(f"{where}: the project's vectors are precomputed; the test file "
                         "needs its vectors too (--vector-prefix or --vector)")
    use_text = encoder_name not in (PRECOMPUTED, "tabular") and not has_vectors
    if use_text and not text:
        raise InputError(f"{where}: give --text so the test file can be embedded")
    # The id column is optional in a test file.
    mapping = ColumnMapping(id=id if id in names else label, text=text if use_text else None,
                            label=label, vector=vector, vector_prefix=vector_prefix,
                            metadata=tuple(features or ()))
    resolved = resolve(mapping, names, where)

    cache_key = None
    if cache is not None and (use_text or features is not None):
        key = json.dumps({"v": CACHE_VERSION, "file": file_sha256(src.path),
                          "encoder": encoder_name, "config": config, "dim": dim,
                          "text": mapping.text, "label": label, "features": features},
                         sort_keys=True, default=str)
        cache_key = hashlib.sha256(key.encode()).hexdigest()[:32]
        got = cache.get(cache_key)
        if got is not None:
            return got["X"], got["y"].astype(object)

    enc = None
    if use_text or features is not None:
        enc = get_encoder(encoder_name, **config)
        enc.on_phase = on_phase
    xs, ys, row0 = [], [], 0
    for batch in src.batches():
        ys += column_strings(batch, label, where, row0, allow_null=False)
        if features is not None:
            # The pool's fitted choices: medians for missing cells, its categories, scale.
            columns = {c: batch.column(c).to_pylist() for c in features}
            metadata = [{c: columns[c][i] for c in features} for i in range(batch.num_rows)]
            try:
                xs.append(enc.encode({"metadata": metadata,
                                      "rows": list(range(row0, row0 + batch.num_rows))}))
            except InputError as e:
                raise InputError(f"{where}: {e}") from None
        elif use_text:
            texts = column_strings(batch, text, where, row0, allow_null=False)
            blank = next((i for i, t in enumerate(texts) if not t.strip()), None)
            if blank is not None:  # it would embed to the same vector as every blank
                raise InputError(f"{where}: row {row0 + blank + 1}, column {text!r}: empty text")
            xs.append(enc.encode({"text": texts, "metadata": [{}] * len(texts)}))
        else:
            xs.append(vectors_of(batch, mapping, resolved, where, row0))
        row0 += batch.num_rows
    if not ys:
        raise InputError(f"{where}: the file has no rows")
    X = np.ascontiguousarray(np.concatenate(xs), dtype=np.float32)
    if X.shape[1] != dim:
        raise InputError(f"{where}: test vectors have {X.shape[1]} dimensions; the model's "
                         f"have {dim}")
    y = np.asarray(ys, dtype=object)
    if cache is not None and cache_key is not None:
        cache.put(cache_key, X=X, y=y.astype(str))
    return X, y


def _tabular_features(where: str, names: list[str], config: dict, vector: str | None,
                      vector_prefix: str | None) -> list[str]:
    """The pool's feature columns, which the test file must have by name."""
    columns = list(config.get("columns") or [])
    if not columns:
        raise InputError("the tabular encoder has no fitted columns yet: run "
                         "`longtail embed --encoder tabular` first")
    shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
    if vector:
        raise InputError(f"{where}: the project's vectors are tabular: the test file needs "
                         f"the raw feature columns ({shown}), which are scaled as the "
                         "pool's; --vector is not accepted")
    if vector_prefix:
        numbered = {n for n in names if n.startswith(vector_prefix)
                    and n[len(vector_prefix):].isdigit()}
        if numbered != set(columns):
            raise InputError(
                f"{where}: --vector-prefix {vector_prefix!r} on a tabular project means the "
                f"raw features, and must number exactly the pool's feature columns ({shown}); "
                f"leave it out to read those columns by name")
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"{where}: the test file lacks {len(missing)} of the pool's feature "
                         f"column(s): {', '.join(missing[:8])}"
                         f"{', ...' if len(missing) > 8 else ''}")
    return columns
