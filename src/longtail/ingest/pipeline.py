"""Ingest a file into a project: all-or-nothing, idempotent, streaming."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longtail.errors import InputError
from longtail.ingest.mapping import (
    ColumnMapping,
    column_strings,
    metadata_json,
    resolve,
    vectors_of,
)
from longtail.ingest.readers import TableSource, file_sha256
from longtail.store import Store

PRECOMPUTED = "precomputed"


class _NothingChanged(Exception):
    """Raised inside the transaction to roll back the batch record of a no-op ingest."""


@dataclass
class IngestReport:
    file: str
    rows: int
    new: int
    updated: int
    unchanged: int
    labels: int
    eval_rows: int
    vector_dim: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


_MIX = np.random.default_rng(20261125).integers(1, 2**63, size=4096, dtype=np.uint64) | 1


def _vector_digests(vecs: np.ndarray | None, n: int) -> list[str]:
    """A 64-bit digest per vector row, vectorised: the float bits times fixed odd
    multipliers, summed modulo 2**64. Enough to tell changed content from unchanged."""
    if vecs is None:
        return [""] * n
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if vecs.shape[1] % 2:  # pad to an even width so rows view as whole uint64 words
        vecs = np.concatenate([vecs, np.zeros((n, 1), np.float32)], axis=1)
    mix = np.resize(_MIX, vecs.shape[1] // 2)
    out: list[str] = []
    for start in range(0, n, 8192):  # bounded temporaries: 8192·dim·4 bytes
        bits = vecs[start:start + 8192].view(np.uint64)
        with np.errstate(over="ignore"):
            digest = (bits * mix).sum(axis=1, dtype=np.uint64)
        out += [f"{d:016x}" for d in digest.tolist()]
    return out


def _content_hashes(texts: list, metas: list, vecs: np.ndarray | None) -> list[str]:
    blake = hashlib.blake2b
    return [blake(f"{t or ''}\x00{m or ''}\x00{v}".encode(), digest_size=16).hexdigest()
            for t, m, v in zip(texts, metas, _vector_digests(vecs, len(texts)), strict=True)]


def ingest_file(
    store: Store,
    path: str | Path,
    mapping: ColumnMapping,
    *,
    assign_eval: Callable[[list[str], int, list | None], np.ndarray],
    eval_strata: str | None = None,
    update: bool = False,
    vector_dtype: str = "float32",
    progress: Callable[[int, int | None], None] | None = None,
) -> IngestReport:
    """Read `path`, validate every row, and add it to the project in one transaction.

    `assign_eval(ids, current_eval_count, strata)` says which new samples join the
    managed eval split; `strata` holds the values of the column `eval_strata` (None
    when the split is not stratified). Rows whose id is known with the same content are unchanged; a known id
    with other content is an InputError unless `update`. Vectors are written past the
    set's valid count before the catalog commits, so a failure leaves nothing visible.
    Memory: O(batch rows · dim) plus the set of ids in the file.
    """
    source = TableSource(path)
    where = str(source.path)
    resolved = resolve(mapping, list(source.schema.names), where)
    # The file's checksum is computed beside the ingest (hashlib releases the GIL).
    seen: dict[str, int] = {}
    report = IngestReport(where, 0, 0, 0, 0, 0, 0, None)
    vector_updates: list[tuple[int, np.ndarray]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(file_sha256, source.path)
        try:
            _ingest_tx(store, source, mapping, resolved, digest, seen, report, vector_updates,
                       assign_eval, update, vector_dtype, progress, eval_strata)
        except _NothingChanged:
            pass
    if vector_updates:
        vs = store.vectors(PRECOMPUTED)
        for r, v in vector_updates:
            vs.write(r, v[None, :])
    return report


def _raise_duplicate(ids: list[str], seen: dict[str, int], row0: int, where: str,
                     column: str) -> None:
    """Name the first duplicate id of this batch and where it was first seen (`seen`
    holds the earlier batches of the file)."""
    first = dict(seen)
    for i, ext in enumerate(ids):
        if ext in first:
            raise InputError(f"{where}: row {row0 + i + 1}, column {column!r}: duplicate id "
                             f"{ext!r} (first seen at row {first[ext]})")
        first[ext] = row0 + i + 1


def _ingest_tx(store, source, mapping, resolved, digest, seen, report, vector_updates,
               assign_eval, update, vector_dtype, progress, eval_strata) -> None:  # noqa: ANN001
    where = str(source.path)
    with store.tx() as conn:
        batch_id = store.add_batch(conn, where, "", mapping.to_dict())
        next_row = store.next_row(conn)
        first_new_row = next_row
        current = None  # current labels, loaded lazily when the file has labels
        split_counts = dict(store.split_counts_conn(conn))
        eval_count = split_counts.get("eval", 0)
        writer = None
        vec_info = store.vector_set_info(PRECOMPUTED, conn)
        row0 = 0
        for batch in source.batches():
            n = batch.num_rows
            ids = column_strings(batch, mapping.id, where, row0, allow_null=False)
            batch_ids = set(ids)
            if len(batch_ids) != n or not seen.keys().isdisjoint(batch_ids):
                _raise_duplicate(ids, seen, row0, where, mapping.id)
            seen.update(zip(ids, range(row0 + 1, row0 + n + 1), strict=True))
            texts = (column_strings(batch, mapping.text, where, row0, allow_null=True)
                     if mapping.text else [None] * n)
            vecs = vectors_of(batch, mapping, resolved, where, row0)
            if vecs is not None:
                dim = vecs.shape[1]
                if vec_info is None:
                    vec_info = store.ensure_vector_set(conn, PRECOMPUTED, dim, vector_dtype, {})
                if vec_info["dim"] != dim:
                    raise InputError(f"{where}: vectors have {dim} dimensions; this project's "
                                     f"vectors have {vec_info['dim']}")
                report.vector_dim = dim
            metas = metadata_json(batch, resolved.metadata_columns)
            labels = (column_strings(batch, mapping.label, where, row0, allow_null=True)
                      if mapping.label else None)
            annotators = (column_strings(batch, mapping.annotator, where, row0, allow_null=True)
                          if mapping.annotator else None)
            # A project empty before this file has nothing to look up: ids within the
            # file are already checked against each other.
            known = store.lookup_ids(conn, ids) if first_new_row > 0 else {}
            hashes = _content_hashes(texts, metas, vecs)
            if known:
                new_idx = [i for i in range(n) if ids[i] not in known]
                changed = [i for i in range(n)
                           if ids[i] in known and known[ids[i]][1] != hashes[i]]
            else:
                new_idx, changed = list(range(n)), []
            if changed and not update:
                i = changed[0]
                raise InputError(f"{where}: row {row0 + i + 1}: id {ids[i]!r} is already in the "
                                 "project with different content (pass --update to replace it)")
            if new_idx:
                strata = None
                if eval_strata:
                    if eval_strata not in batch.schema.names:
                        raise InputError(f"{where}: the eval split is stratified by column "
                                         f"{eval_strata!r}, which the file does not have")
                    values = batch.column(eval_strata).to_pylist()
                    strata = [values[i] for i in new_idx]
                is_eval = assign_eval([ids[i] for i in new_idx], eval_count, strata)
                eval_count += int(is_eval.sum())
                report.eval_rows += int(is_eval.sum())
                rows = np.arange(next_row, next_row + len(new_idx), dtype=np.int64)
                store.insert_samples(conn, [
                    (int(r), ids[i], hashes[i], batch_id, "eval" if e else "pool", texts[i], metas[i])
                    for r, i, e in zip(rows, new_idx, is_eval, strict=True)
                ])
                if vecs is not None:
                    if vec_info["n_rows"] != first_new_row:
                        raise InputError(
                            f"{where}: this file carries vectors but rows "
                            f"{vec_info['n_rows']}..{first_new_row - 1} of the project have none; "
                            "every file must carry vectors once one does")
                    if writer is None:
                        writer = store.vector_writer(PRECOMPUTED, vec_info["dim"], vec_info["dtype"])
                    writer.write(next_row, vecs[new_idx])
                for i, r in zip(new_idx, rows, strict=True):
                    known[ids[i]] = (int(r), hashes[i])
                next_row += len(new_idx)
            if changed:
                store.update_samples(conn, [
                    {"row": known[ids[i]][0], "content_hash": hashes[i], "text": texts[i],
                     "meta": metas[i], "batch_id": batch_id} for i in changed])
                if vecs is not None:
                    vector_updates += [(known[ids[i]][0], vecs[i]) for i in changed]
            if labels is not None:
                if current is None:
                    current = store.current_labels(conn)
                events = []
                for i, lab in enumerate(labels):
                    if lab is None or lab == "":
                        continue
                    r = known[ids[i]][0]
                    if current.get(r) == lab:
                        continue
                    current[r] = lab
                    events.append({"row": r, "label": lab, "source": "import",
                                   "annotator": annotators[i] if annotators else None})
                report.labels += store.add_annotations(conn, events)
            report.new += len(new_idx)
            report.updated += len(changed)
            report.unchanged += n - len(new_idx) - len(changed)
            row0 += n
            report.rows = row0
            if progress:
                progress(row0, source.num_rows)
        if report.rows == 0:
            raise InputError(f"{where}: the file has no rows")
        if writer is not None:
            writer.sync()
            store.set_vector_rows(conn, PRECOMPUTED, next_row)
        store.finish_batch(conn, batch_id, report.new, report.updated, report.unchanged,
                           file_sha256=digest.result())
        if report.new == 0 and report.updated == 0 and report.labels == 0:
            # Nothing changed: roll back the batch record too, so a re-ingest is a no-op.
            raise _NothingChanged
