"""Ingest a file into a project: all-or-nothing, idempotent, streaming."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy.exc import IntegrityError

from longtail.crashpoints import crashpoint
from longtail.errors import InputError
from longtail.hashing import hash_strings, hash_vectors, mix64, to_hex
from longtail.ingest.mapping import (
    ColumnMapping,
    ResolvedColumns,
    column_strings,
    has_number_text,
    metadata_json,
    resolve,
    string_column,
    vectors_of,
)
from longtail.ingest.readers import TableSource
from longtail.store import Store, UnitOfWork

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
    # Pool rows whose content this file replaced (--update): vectors an encoder computed
    # for them (MiniLM, tabular) are stale until they are embedded again.
    updated_rows: list[int] = field(default_factory=list)
    # The near-duplicate search that follows an ingest of vectors, a phase of its own
    # with its own seconds (longtail.engine.duplicates.refresh); None when none ran.
    duplicates: dict | None = None
    # After the commit (issue 30): how far the new rows lie from the earlier ones, and
    # what each standing trigger matched among them ({name: rows queued}).
    drift: dict | None = None
    triggers: dict | None = None

    def to_dict(self) -> dict:
        """The counts (``updated_rows`` left out: it can hold millions of rows)."""
        return {k: v for k, v in self.__dict__.items() if k != "updated_rows"}


def _content_hashes(texts: list, metas: list, vecs: np.ndarray | None) -> list[str]:
    """Hashing 1 (projects made before version 2): BLAKE2b per row, 32 hex digits."""
    vdig = [f"{d:016x}" for d in hash_vectors(vecs).tolist()] if vecs is not None else [""] * len(texts)
    blake = hashlib.blake2b
    return [blake(f"{t or ''}\x00{m or ''}\x00{v}".encode(), digest_size=16).hexdigest()
            for t, m, v in zip(texts, metas, vdig, strict=True)]


_K_TEXT = np.uint64(0xD6E8FEB86659FD93)
_K_META = np.uint64(0xA0761D6478BD642F)


def _content_hashes_v2(text: pa.Array | None, metas: pa.Array | None, vecs: np.ndarray | None,
                       n: int) -> np.ndarray:
    """Hashing 2: one vectorised 64-bit hash of text, metadata JSON and vector bits."""
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if text is not None:
            h += hash_strings(text, 1) * _K_TEXT
        if metas is not None:
            h += hash_strings(metas, 2) * _K_META
        if vecs is not None:
            h += hash_vectors(vecs)
    return mix64(h)


def _hashes(hashing: int, text_arr: pa.Array | None, meta_arr: pa.Array | None,
            vecs: np.ndarray | None, n: int) -> tuple[list[str], np.ndarray]:
    """(hex content hash per row, the same as uint64 words) in the project's hash version."""
    if hashing == 2:
        content = _content_hashes_v2(text_arr, meta_arr, vecs, n)
        return to_hex(content), content
    texts = text_arr.to_pylist() if text_arr is not None else [None] * n
    metas = meta_arr.to_pylist() if meta_arr is not None else [None] * n
    hashes = _content_hashes(texts, metas, vecs)
    return hashes, np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint64)


def _digest_rows(digest: hashlib._Hash, ids: pa.Array, content: np.ndarray) -> None:
    """Feed each row's id hash and content hash (one or two uint64 words a row, by hash
    version) to the batch's checksum, recorded as the batch's `file_sha256`: a SHA-256
    of the file's rows in order, the same however the reader splits them into batches,
    costing 16–24 bytes a row instead of a second read of the whole file."""
    id_hashes = hash_strings(ids, 3)
    digest.update(np.column_stack([id_hashes, content.reshape(len(id_hashes), -1)]).tobytes())


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
    hashing: int = 2,
    in_tx: Callable[[UnitOfWork, IngestReport], None] | None = None,
) -> IngestReport:
    """Read `path`, validate every row, and add it to the project in one transaction.

    `assign_eval(ids, current_eval_count, strata)` says which new samples join the
    managed eval split; `strata` holds the values of the column `eval_strata` (None
    when the split is not stratified). Rows whose id is known with the same content
    (hashed per `hashing`, the project's hash version: 1 BLAKE2b per row, 2 the
    vectorised hash of `longtail.hashing`) are unchanged; a known id with other content
    is an InputError unless `update`. Vectors are written past the set's valid count
    before the catalog commits, so a failure leaves nothing visible. `in_tx(uow,
    report)` runs last inside the transaction when something changed (the caller's
    settings, e.g. the encoder or media root, commit with the rows).
    Memory: O(batch rows · dim) plus the ids of the file already in the project.
    """
    source = TableSource(path, delimiter=mapping.delimiter)
    where = str(source.path)
    resolved = resolve(mapping, list(source.schema.names), where)
    seen: set[str] = set()  # ids of this file already in the project before it
    report = IngestReport(where, 0, 0, 0, 0, 0, 0, None)
    # New vectors of rows already in the set (--update): journaled inside the
    # transaction, applied after it commits (see longtail.store.redo).
    vector_updates: list[tuple[int, np.ndarray]] = []
    journals: list[Path] = []
    with _gc_paused():
        try:
            _ingest_tx(store, source, mapping, resolved, seen, report, vector_updates,
                       assign_eval, update, vector_dtype, progress, eval_strata, hashing,
                       journals, in_tx)
        except _NothingChanged:
            pass
        except _Duplicate:
            _drop(store, journals)
            _raise_first_duplicate(source.path, mapping.id, source.delimiter)
        except IntegrityError as e:
            _drop(store, journals)
            # New ids are checked against each other by the catalog's unique index (a
            # dict of every id in a 10M-row file would cost a GiB): name the duplicate.
            _raise_first_duplicate(source.path, mapping.id, source.delimiter)
            raise InputError(f"{where}: {e.orig}") from None
        except BaseException:
            _drop(store, journals)
            raise
    crashpoint("ingest:after_commit")
    for journal in journals:
        store.apply_vector_rewrite(journal)
    return report


def _drop(store: Store, journals: list[Path]) -> None:
    for journal in journals:
        store.drop_vector_rewrite(journal)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a file streams in: the insert tuples are
    millions of short-lived containers, each a tick toward a full collection that
    finds nothing (they hold no cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Background:
    """Catalog inserts and vector writes of earlier batches, each kind in order on its
    own worker thread, while the main thread validates the next batch (sqlite3 steps
    and file writes release the GIL). At most `depth` batches per kind in flight bound
    the memory. The main thread drains both before it touches the connection itself."""

    LANES = ("catalog", "vectors")

    def __init__(self, depth: int = 2):
        self.depth = depth
        self.workers = {lane: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"longtail-{lane}")
                        for lane in self.LANES}
        self.pending: dict[str, list] = {lane: [] for lane in self.LANES}

    def submit(self, lane: str, fn: Callable, *args: object) -> None:
        queue = self.pending[lane]
        while len(queue) >= self.depth:
            queue.pop(0).result()
        queue.append(self.workers[lane].submit(fn, *args))

    def drain(self) -> None:
        for queue in self.pending.values():
            while queue:
                queue.pop(0).result()

    def settle(self) -> None:
        """Wait for everything in flight, ignoring its errors (an error is already
        propagating and the transaction is about to roll back), and stop the workers."""
        for queue in self.pending.values():
            for f in queue:
                f.exception()
            queue.clear()
        for worker in self.workers.values():
            worker.shutdown()


class _Duplicate(Exception):
    """An id occurs twice in the file; the transaction rolls back and the file is read
    again to name both rows."""


def _raise_first_duplicate(path: Path, column: str, delimiter: str | None = None) -> None:
    """Read the file again and raise an InputError naming its first repeated id and
    both rows. The error path only: it holds every id of the file in memory."""
    first: dict[str, int] = {}
    row0 = 0
    where = str(path)
    for batch in TableSource(path, delimiter=delimiter).batches():
        for i, ext in enumerate(column_strings(batch, column, where, row0, allow_null=False)):
            if ext in first:
                raise InputError(f"{where}: row {row0 + i + 1}, column {column!r}: duplicate id "
                                 f"{ext!r} (first seen at row {first[ext]})")
            first[ext] = row0 + i + 1
        row0 += batch.num_rows


EvalOf = Callable[[list[str], int, list | None], np.ndarray]
Progress = Callable[[int, int | None], None] | None


def _ingest_tx(store: Store, source: TableSource, mapping: ColumnMapping,
               resolved: ResolvedColumns, seen: set[str], report: IngestReport,
               vector_updates: list[tuple[int, np.ndarray]], assign_eval: EvalOf,
               update: bool, vector_dtype: str, progress: Progress, eval_strata: str | None,
               hashing: int, journals: list[Path],
               in_tx: Callable[[UnitOfWork, IngestReport], None] | None) -> None:
    bg = _Background()
    with store.unit_of_work() as uow:
        try:
            _ingest_batches(uow, store, source, mapping, resolved, seen, report,
                            vector_updates, assign_eval, update, vector_dtype, progress,
                            eval_strata, hashing, bg, journals)
        finally:
            bg.settle()  # nothing may run on `uow` once the transaction ends
        if in_tx is not None:
            in_tx(uow, report)


def _ingest_batches(uow: UnitOfWork, store: Store, source: TableSource, mapping: ColumnMapping,
                    resolved: ResolvedColumns, seen: set[str], report: IngestReport,
                    vector_updates: list[tuple[int, np.ndarray]], assign_eval: EvalOf,
                    update: bool, vector_dtype: str, progress: Progress,
                    eval_strata: str | None, hashing: int, bg: _Background,
                    journals: list[Path]) -> None:
    where = str(source.path)
    # The file's metadata columns in its order: metadata JSON is stored with sorted keys
    # (stable content hashes), so the batch record keeps the order people see.
    batch_id = uow.samples.add_batch(where, "", {**mapping.to_dict(),
                                                 "columns": list(resolved.metadata_columns)})
    digest = hashlib.sha256()  # of the rows as read: see _digest_rows
    next_row = uow.samples.next_row()
    first_new_row = next_row
    current = None  # current labels, loaded lazily when the file has labels
    split_counts = dict(uow.samples.split_counts())
    eval_count = split_counts.get("eval", 0)
    writer = None
    vec_info = uow.vectors.info(PRECOMPUTED)
    row0 = 0
    for batch in source.batches():
        n = batch.num_rows
        ids = column_strings(batch, mapping.id, where, row0, allow_null=False)
        if len(set(ids)) != n:
            raise _Duplicate
        text_arr = string_column(batch, mapping.text) if mapping.text else None
        vecs = vectors_of(batch, mapping, resolved, where, row0)
        if vecs is not None:
            dim = vecs.shape[1]
            if vec_info is None:
                vec_info = uow.vectors.ensure(PRECOMPUTED, dim, vector_dtype, {})
            if vec_info["dim"] != dim:
                raise InputError(f"{where}: vectors have {dim} dimensions; this project's "
                                 f"vectors have {vec_info['dim']}")
            report.vector_dim = dim
        meta_arr = metadata_json(batch, resolved.metadata_columns)
        labels = (column_strings(batch, mapping.label, where, row0, allow_null=True)
                  if mapping.label else None)
        annotators = (column_strings(batch, mapping.annotator, where, row0, allow_null=True)
                      if mapping.annotator else None)
        # A project empty before this file has nothing to look up: ids within the
        # file are already checked against each other.
        if first_new_row > 0:
            bg.drain()
            known = uow.samples.lookup_ids(ids)
            for ext, (r, _) in known.items():
                # A row added by this file, or a project id met twice in it: a duplicate.
                if r >= first_new_row or ext in seen:
                    raise _Duplicate
            seen.update(known)
        else:
            known = {}
        # Hashed in the canonical form (number-looking text as numbers), so that one bad
        # cell turning a numeric CSV column into text, or its fix turning it back, leaves
        # the other rows unchanged. Rows stored before that form existed carry the
        # literal form's hash: a known row matching either is unchanged.
        canon_arr = (metadata_json(batch, resolved.metadata_columns, canonical=True)
                     if meta_arr is not None and has_number_text(batch, resolved.metadata_columns)
                     else None)
        hashed_meta = meta_arr if canon_arr is None else canon_arr
        hashes, content = _hashes(hashing, text_arr, hashed_meta, vecs, n)
        _digest_rows(digest, string_column(batch, mapping.id), content)
        if known:
            literal = (_hashes(hashing, text_arr, meta_arr, vecs, n)[0]
                       if canon_arr is not None else hashes)
            new_idx = [i for i in range(n) if ids[i] not in known]
            changed = [i for i in range(n)
                       if ids[i] in known and known[ids[i]][1] not in (hashes[i], literal[i])]
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
            eval_rows = rows[is_eval].tolist()
            # Ids, hashes and the row's place in the column files go to the catalog;
            # texts and metadata to a part of the batch's column files, as Arrow arrays.
            if len(new_idx) == n:
                bg.submit("catalog", uow.samples.insert_columns, batch_id, rows.tolist(), ids,
                          hashes, text_arr, meta_arr, eval_rows)
            else:
                take = pa.array(new_idx, pa.int64())
                bg.submit("catalog", uow.samples.insert_columns, batch_id, rows.tolist(),
                          [ids[i] for i in new_idx], [hashes[i] for i in new_idx],
                          None if text_arr is None else text_arr.take(take),
                          None if meta_arr is None else meta_arr.take(take), eval_rows)
            if vecs is not None:
                if vec_info["n_rows"] != first_new_row:
                    raise InputError(
                        f"{where}: this file carries vectors but rows "
                        f"{vec_info['n_rows']}..{first_new_row - 1} of the project have none; "
                        "every file must carry vectors once one does")
                if writer is None:
                    writer = store.vector_writer(PRECOMPUTED, vec_info["dim"], vec_info["dtype"])
                # The copy to the memmap runs beside the next batch's parsing.
                part = vecs if len(new_idx) == n else vecs[new_idx]
                bg.submit("vectors", writer.write, next_row, part)
            if labels is not None or changed:
                for i, r in zip(new_idx, rows.tolist(), strict=True):
                    known[ids[i]] = (r, hashes[i])
            next_row += len(new_idx)
        if changed:
            bg.drain()
            uow.samples.update([
                {"row": known[ids[i]][0], "content_hash": hashes[i],
                 "text": None if text_arr is None else text_arr[i].as_py(),
                 "meta": None if meta_arr is None else meta_arr[i].as_py(),
                 "batch_id": batch_id} for i in changed])
            if vecs is not None:
                vector_updates += [(known[ids[i]][0], vecs[i]) for i in changed]
        if labels is not None:
            bg.drain()
            if current is None:
                current = uow.labels.current()
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
            report.labels += uow.labels.add(events)
        report.new += len(new_idx)
        report.updated += len(changed)
        report.updated_rows += [known[ids[i]][0] for i in changed]
        report.unchanged += n - len(new_idx) - len(changed)
        row0 += n
        report.rows = row0
        if progress:
            progress(row0, source.num_rows)
    if report.rows == 0:
        raise InputError(f"{where}: the file has no rows")
    bg.drain()
    if writer is not None:
        writer.sync()
        uow.vectors.set_rows(PRECOMPUTED, next_row)
    uow.samples.finish_batch(batch_id, report.new, report.updated, report.unchanged,
                       file_sha256=digest.hexdigest())
    if report.new == 0 and report.updated == 0 and report.labels == 0:
        # Nothing changed: roll back the batch record too, so a re-ingest is a no-op.
        raise _NothingChanged
    if vector_updates:
        journals.append(store.journal_vector_rewrite(
            PRECOMPUTED, batch_id, digest.hexdigest(),
            np.array([r for r, _ in vector_updates], np.int64),
            np.stack([v for _, v in vector_updates])))
    crashpoint("ingest:in_tx")
