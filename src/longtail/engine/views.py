"""Read-only views of the catalog that several use cases need: the vector set to use,
labeled rows per split, the candidates a strategy may pick. Each reads through the
caller's unit of work (`Store.reading()` for a snapshot, or the use case's own)."""

from __future__ import annotations

import hashlib

import numpy as np

from longtail.engine.settings import Settings
from longtail.errors import ProjectError
from longtail.store import UnitOfWork, VectorSet


def encoder_name(uow: UnitOfWork, settings: Settings, encoder: str | None = None) -> str:
    """The vector set to use: `encoder`, else the project's; an error saying how to make
    vectors when there are none."""
    name = encoder or settings.encoder
    if not name:
        raise ProjectError(f"no vectors yet: {embed_hint(uow)}")
    return name


def embed_hint(uow: UnitOfWork) -> str:
    """What gives this project's samples vectors, fitted to its data: text -> minilm,
    numeric metadata only -> tabular, else the ingest options that add either."""
    from longtail.encoders import preview_samples, suggest_embed

    first = next(iter(uow.samples.iter(batch_rows=1000)), [])
    hint = suggest_embed(preview_samples(first, has_vectors=bool(uow.vectors.names())))
    return f"run `{hint}`" if hint else "run `longtail embed --encoder precomputed`"


def vectors(uow: UnitOfWork, settings: Settings, encoder: str | None = None, *,
            complete: bool = True) -> VectorSet:
    """The vector set of `encoder` (default: the project's). With `complete`, every
    sample must have a vector; otherwise rows past the set's end are the caller's to
    leave out (see `unembedded`)."""
    name = encoder_name(uow, settings, encoder)
    vs = uow.vector_set(name)
    if complete:
        n = uow.samples.count()
        if vs.n_rows < n:
            raise ProjectError(f"{n - vs.n_rows} samples have no {name!r} vectors yet: run "
                               f"`longtail embed --encoder {name}`")
    return vs


def unembedded(uow: UnitOfWork, vs: VectorSet) -> int:
    """How many samples have no vector in `vs` yet (rows are embedded in row order)."""
    return max(0, uow.samples.count() - vs.n_rows)


def labeled(uow: UnitOfWork, split: str = "pool") -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels) of the samples of `split` that have a current label."""
    current = uow.labels.current()
    rows = np.array(sorted(current), dtype=np.int64)
    if split in ("pool", "eval"):
        # The eval split is small; the pool is the rest (no set of a million rows).
        in_eval = np.isin(rows, uow.samples.rows_by_split("eval"))
        rows = rows[in_eval if split == "eval" else ~in_eval]
    else:
        rows = rows[np.isin(rows, uow.samples.rows_by_split(split))]
    return rows, np.array([current[int(r)] for r in rows], dtype=object)


def candidates(uow: UnitOfWork, current: dict[int, str] | None = None) -> np.ndarray:
    """Pool rows a strategy may pick: not labeled, not queued in an open round, and
    never eval rows (the store's split says which rows those are)."""
    current = uow.labels.current() if current is None else current
    pool = uow.samples.rows_by_split("pool")
    if len(pool) == 0:
        return pool
    # A mask over the rows, not set operations: O(n) on a million-row pool, no sort.
    keep = np.zeros(int(pool[-1]) + 1, dtype=bool)
    keep[pool] = True
    for taken in (np.fromiter(current, dtype=np.int64, count=len(current)),
                  uow.rounds.open_rows()):
        taken = taken[(taken >= 0) & (taken < len(keep))]
        keep[taken] = False
    return np.flatnonzero(keep).astype(np.int64)


def vectors_fingerprint(uow: UnitOfWork, name: str) -> str:
    """Changes when the existing vectors of vector set `name` would: another encoder
    config, dimension or dtype (appended rows do not change it). Indexes built on the
    vectors (strategy state, duplicate search) are valid while it stays the same."""
    import json

    info = uow.vectors.info(name) or {}
    made = json.dumps([info.get("dim"), info.get("dtype"), info.get("config")],
                      sort_keys=True, default=str)
    return hashlib.sha256(made.encode()).hexdigest()[:16]


def labels_fingerprint(rows: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over (row, label) pairs in order: what a set of labels is, in one token
    (the eval set's version, the labels a model was fitted on). O(n)."""
    h = hashlib.sha256()
    for r, lab in zip(rows.tolist(), labels.tolist(), strict=True):
        h.update(f"{r}\x00{lab}\x01".encode())
    return h.hexdigest()
