"""Data-in use cases: ingest a file into the pool, and embed samples that have no vectors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.costs.ledger import phase
from longtail.crashpoints import crashpoint
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store, UnitOfWork

if TYPE_CHECKING:
    from longtail.ingest.pipeline import IngestReport

Progress = Callable[[int, int | None], None]


def ingest(store: Store, settings: Settings, path: str | Path, *, id: str = "id",
           text: str | None = None, label: str | None = None, vector: str | None = None,
           vector_prefix: str | None = None, metadata: list[str] | None = None,
           update: bool = False, vector_dtype: str | None = None,
           progress: Progress | None = None, delimiter: str | None = None,
           folder_labels: bool = False,
           also: Callable[[UnitOfWork], None] | None = None) -> IngestReport:
    """Add a CSV, JSONL or Parquet file to the pool, all-or-nothing: its rows, vectors
    and the settings they imply (the encoder, the label columns, an image folder's media
    root) commit in one transaction; `also(uow)` writes the caller's own record in it
    (`longtail run` marks the file handled), when the file changed anything. A folder is an image pool
    (`longtail.ingest.images`): one sample per image, `media` its path under the folder,
    which becomes the project's media root; `folder_labels` reads each image's class
    sub-folder as its import label."""
    if Path(path).is_dir():
        return _ingest_images(store, settings, Path(path), folder_labels=folder_labels,
                              update=update, progress=progress, also=also)
    if folder_labels:
        raise InputError("--folder-labels applies to a folder of images, and "
                         f"{path} is a file: name its label column with --label")
    return _ingest_file(store, settings, path, id=id, text=text, label=label, vector=vector,
                        vector_prefix=vector_prefix, metadata=metadata, update=update,
                        vector_dtype=vector_dtype, progress=progress, delimiter=delimiter,
                        also=also)


def _ingest_file(store: Store, settings: Settings, path: str | Path, *, id: str,
                 text: str | None, label: str | None, vector: str | None,
                 vector_prefix: str | None, metadata: list[str] | None, update: bool,
                 vector_dtype: str, progress: Progress | None, delimiter: str | None,
                 media_root: str | None = None,
                 also: Callable[[UnitOfWork], None] | None = None) -> IngestReport:
    """`ingest` of one table file; `media_root` is set in its transaction when given."""
    from longtail.evaluation.evalset import assign_eval
    from longtail.ingest import PRECOMPUTED, ColumnMapping, ingest_file

    mapping = ColumnMapping(id=id, text=text, label=label, vector=vector,
                            vector_prefix=vector_prefix,
                            metadata=tuple(metadata) if metadata is not None else None,
                            delimiter=delimiter)

    def eval_of(ids: list[str], current: int, strata: list | None) -> np.ndarray:
        return assign_eval(ids, rate=settings.eval_rate, seed=settings.seed,
                           current_eval=current, cap=settings.eval_cap, strata=strata,
                           hashing=settings.hashing)

    def in_tx(uow: UnitOfWork, report: IngestReport) -> None:
        """The settings the rows imply, in the rows' own transaction."""
        if report.vector_dim and not settings.encoder:
            uow.settings.set("encoder", PRECOMPUTED)
        if label:
            known = set(uow.settings.get("label_columns") or [])
            uow.settings.set("label_columns", sorted(known | {label}))
        if media_root is not None:
            uow.settings.set("media_root", media_root)
        if also is not None:
            also(uow)

    with phase("ingest"):
        report = ingest_file(store, path, mapping, assign_eval=eval_of,
                             eval_strata=settings.eval_stratify, update=update,
                             vector_dtype=vector_dtype or settings.vector_dtype,
                             progress=progress, hashing=settings.hashing, in_tx=in_tx)
    if report.vector_dim and (report.new or report.updated) \
            and settings.encoder in (None, PRECOMPUTED):
        report.duplicates = _near_duplicates(store, settings, PRECOMPUTED,
                                             changed_rows=report.updated_rows,
                                             new_rows=report.new)
    if report.new:
        _after_ingest(store, report)
    return report


def _ingest_images(store: Store, settings: Settings, root: Path, *, folder_labels: bool,
                   update: bool, progress: Progress | None,
                   also: Callable[[UnitOfWork], None] | None) -> IngestReport:
    """An image folder into the pool: every file read and checked first (nothing is
    written when one is bad), then the rows ingested like a file, then the media root
    kept. A project holds one media root: another folder is refused."""
    import tempfile

    import pyarrow.parquet as pq

    from longtail.ingest.images import image_table

    root = root.resolve()
    if settings.media_root and Path(settings.media_root).resolve() != root:
        raise InputError(f"this project's images live under {settings.media_root}; put the "
                         f"new images there (in a new sub-folder) and ingest that folder "
                         f"again, or set media_root if the folder moved")
    table = image_table(root, folder_labels=folder_labels)
    with tempfile.TemporaryDirectory(prefix="longtail-images-") as tmp:
        manifest = Path(tmp) / f"{root.name or 'images'}.parquet"
        pq.write_table(table, manifest)
        report = _ingest_file(store, settings, manifest, id="id",
                              label="label" if folder_labels else None, text=None, vector=None,
                              vector_prefix=None, metadata=None, update=update,
                              vector_dtype="float32", progress=progress, delimiter=None,
                              media_root=None if settings.media_root else str(root),
                              also=also)
    report.file = str(root)
    return report


def _after_ingest(store: Store, report: Any) -> None:
    """The drift of the new rows against the earlier ones and the standing triggers'
    run over them (issue 30), after the commit: the ingest stands whatever they do."""
    from longtail.engine.discovery import ingest_drift
    from longtail.engine.triggers import run_triggers

    settings = Settings.load(store)  # the encoder may have been set just now
    with store.reading() as uow:
        n = uow.samples.count()
    new_rows = np.arange(n - report.new, n, dtype=np.int64)
    with phase("other"):
        drift = ingest_drift(store, settings, new_rows)
        report.drift = drift.to_dict() if drift is not None else None
        report.triggers = run_triggers(store, settings, new_rows,
                                       f"ingest {Path(report.file).name}").hits or None


# New rows above which ingest leaves the near-duplicate search to the next query: the
# search of 1M fresh rows costs ~4x the ingest itself (13-20 s against ~4 s here), that
# of 100k rows joining a 1M pool ~2 s. Replaced rows (--update) are always searched at
# once: a later query searches only rows it has never seen.
SEARCH_AT_INGEST_MAX = 200_000


def _near_duplicates(store: Store, settings: Settings, encoder: str,
                     changed_rows: list[int] | None = None, new_rows: int = 0) -> dict | None:
    """The near-duplicate search of the rows that just got vectors: a phase after the
    commit (the samples and vectors are in; an interrupted search is redone by the next
    query), None when the project turned it off."""
    from longtail.engine import duplicates
    from longtail.engine.settings import near_threshold

    if near_threshold(settings.near_duplicate_threshold) is None:
        return None
    changed = np.asarray(changed_rows or [], dtype=np.int64)
    if new_rows > SEARCH_AT_INGEST_MAX and not len(changed):
        return {"deferred": True, "rows": int(new_rows),
                "reason": f"{new_rows:,} new rows: a bulk load is searched by the next query "
                          f"(or `longtail duplicates`), so ingest runs at the reader's speed"}
    with phase("duplicates"):
        return duplicates.refresh(store, settings, encoder, changed_rows=changed).to_dict()


@dataclass
class EmbedReport(Record):
    """`longtail embed`: how many samples got vectors now, of how many; the seconds it
    took; the near-duplicate search that followed (when vectors were added); what the
    encoder says about its vectors (columns, dims, imputations)."""

    OPTIONAL = ("seconds", "duplicates", "describe")

    encoder: str
    embedded: int
    total: int
    seconds: float | None = None
    duplicates: dict[str, Any] | None = None
    describe: dict[str, Any] | None = None


def embed(store: Store, settings: Settings, encoder: str = "minilm", *, batch_rows: int = 512,
          dtype: str | None = None, progress: Progress | None = None,
          on_phase: Callable[[str], None] | None = None, encoder_impl: Any = None,
          engine: str = "local", **params: Any) -> EmbedReport:
    """Compute vectors for every sample that has none for `encoder`. Each batch commits,
    so an interrupted run resumes where it stopped. `engine="ray"`: the encoding runs as
    a Ray Data job over the column files (`longtail.distributed.ray_engine`); the vectors
    are the local engine's, written and committed here."""
    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be one of local, ray; got {engine!r}")
    from longtail.encoders import check_encoder_fits, get_encoder, preview_samples
    from longtail.ingest import PRECOMPUTED

    with store.reading() as uow:
        n = uow.samples.count()
        info = uow.vectors.info(encoder)
        first = next(iter(uow.samples.iter(batch_rows=1000)), []) if info is None else []
        label_columns = uow.settings.get("label_columns") or []
        column_order = uow.samples.column_order()
    if encoder == PRECOMPUTED:
        have = info["n_rows"] if info else 0
        if have < n:
            raise InputError(f"{n - have} samples have no precomputed vectors; ingest them "
                             "with --vector-prefix or --vector")
        with store.unit_of_work() as uow:
            uow.settings.set("encoder", PRECOMPUTED)
        return EmbedReport(encoder, 0, n)
    if info is None:
        # Refuse an encoder the data cannot feed before any vector is written (MiniLM
        # on a pool without text); the label and truth columns are never features.
        check_encoder_fits(encoder, preview_samples(first))
        if encoder == "tabular":
            params = {**params, "label_columns": sorted(
                set(params.get("label_columns") or []) | set(label_columns))}
            params = {k: v for k, v in params.items() if v is not None}
            params["column_order"] = column_order
    elif params.get("features") or params.get("exclude") or params.get("max_categories"):
        raise InputError(f"the {encoder!r} vectors exist already with their columns "
                         f"({', '.join((info['config'] or {}).get('columns') or []) or 'fixed'}); "
                         "--features/--exclude/--max-categories apply to a new vector set only")
    if info is None and encoder in ("pixels", "pixels-raw", "torch"):
        params = {"media_root": settings.media_root, **params}
    enc = encoder_impl or get_encoder(encoder, **(info["config"] if info else params))
    if getattr(enc, "needs", "") == "media" and settings.media_root:
        enc.media_root = settings.media_root  # the folder may have moved since the fit
    if getattr(enc, "needs", "") == "text":
        _refuse_rows_without_text(store, encoder, info["n_rows"] if info else 0)
    if on_phase is not None:
        enc.on_phase = on_phase
    if info is None and getattr(enc, "needs", "") in ("metadata", "media") \
            and hasattr(enc, "fit"):
        with store.reading() as uow:
            enc.fit({"text": [t for _, _, t, _ in b], "metadata": [m for _, _, _, m in b]}
                    for b in uow.samples.iter())
    start = info["n_rows"] if info else 0
    if info is None:
        with store.unit_of_work() as uow:
            info = uow.vectors.ensure(encoder, enc.dim, dtype or settings.vector_dtype,
                                      enc.config())
    writer = store.vector_writer(encoder, info["dim"], info["dtype"])
    done = start
    t0 = time.perf_counter()
    if engine == "ray":
        done = _embed_on_ray(store, encoder, info, writer, start, n, batch_rows, progress)
    else:
        for batch in _sample_batches(store, start, batch_rows):
            with phase("embed", gpu=_on_gpu(enc)):
                vecs = enc.encode({"text": [t or "" for _, _, t, _ in batch],
                                   "metadata": [m for _, _, _, m in batch]})
            writer.write(done, vecs)
            crashpoint("embed:vectors_written")
            done += len(batch)
            with store.unit_of_work() as uow:  # one commit per durable chunk
                uow.vectors.set_rows(encoder, done)
                uow.settings.set("encoder", encoder)
            if progress:
                progress(done, n)
    if done == start:  # nothing new to embed: the project still switches to `encoder`
        with store.unit_of_work() as uow:
            uow.settings.set("encoder", encoder)
    return EmbedReport(encoder, done - start, n, seconds=round(time.perf_counter() - t0, 3),
                       duplicates=(_near_duplicates(store, settings, encoder)
                                   if done > start else None),
                       describe=enc.describe() if hasattr(enc, "describe") else None)


def _embed_on_ray(store: Store, encoder: str, info: dict, writer: Any, start: int, n: int,
                  batch_rows: int, progress: Progress | None) -> int:
    """Embed rows [start, n) as a Ray Data job; blocks finish in any order, each written
    where its rows go, and the row count commits as the written prefix grows (so an
    interrupted run resumes after it). Returns the rows now embedded."""
    from longtail.distributed import ray_engine

    with store.reading() as uow:
        batch_ids, pos = uow.samples.locations(start)
    finished = np.zeros(len(pos), dtype=bool)
    done = start
    with phase("embed"):
        for offsets, vecs in ray_engine.embed_rows(store.root, encoder, info["config"],
                                                   batch_ids, pos, piece_rows=batch_rows):
            writer.write(start + int(offsets[0]), vecs)  # a block is one contiguous piece
            finished[offsets] = True
            prefix = int(np.argmin(finished)) if not finished.all() else len(finished)
            if start + prefix > done:
                writer.sync()
                done = start + prefix
                with store.unit_of_work() as uow:
                    uow.vectors.set_rows(encoder, done)
                    uow.settings.set("encoder", encoder)
                if progress:
                    progress(done, n)
    return done


def _sample_batches(store: Store, start: int, batch_rows: int
                    ) -> Iterator[list[tuple[int, str, str | None, dict]]]:
    """The samples from row `start` in batches, each read in a snapshot of its own: no
    read transaction stays open across the encoder's work (nor its chunk commits)."""
    while True:
        with store.reading() as uow:
            batch = next(iter(uow.samples.iter(start=start, batch_rows=batch_rows)), [])
        if not batch:
            return
        yield batch
        start = batch[-1][0] + 1


def _on_gpu(enc: Any) -> bool:
    """Whether the encoder computes on a GPU (its wall time is then GPU time in the
    compute ledger)."""
    device = getattr(enc, "device", None) or getattr(getattr(enc, "_model", None), "device", None)
    return str(device or "").startswith(("cuda", "mps"))


def _refuse_rows_without_text(store: Store, encoder: str, start: int) -> None:
    """Raise InputError naming the samples (from row `start`, those still to embed) that
    have no text: a text encoder would give them the vector of an empty string, which
    sits near every other short text and poisons selection and training alike."""
    with store.unit_of_work() as uow:
        n, first = uow.samples.without_text(start=start)
    if not n:
        return
    named = ", ".join(f"row {r + 1} (id {e!r})" for r, e in first)
    more = f" and {n - len(first):,} more" if n > len(first) else ""
    raise InputError(
        f"{n:,} sample(s) have no text for the {encoder!r} encoder: {named}{more}. "
        "Nothing was embedded. Give them text (ingest their file again with --text COLUMN "
        "--update) or embed with an encoder that reads what they have")
