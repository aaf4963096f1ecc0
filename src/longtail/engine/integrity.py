"""`longtail check`: is the project whole? The catalog's own integrity, every vector
set against the catalog, every model file against the hash recorded when it was saved,
every dataset version against the catalog. Reads only; repairs nothing.

What a killed command can leave behind and is harmless is reported as a note, not a
failure: vector rows past a set's valid count (invisible until a commit moves the
count) and model files no catalog row points to (the next model replaces the file).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from longtail.engine.records import Record
from longtail.store import Store
from longtail.store.files import model_file
from longtail.store.repos_versions import file_sha256, orphan_model_files


@dataclass(frozen=True)
class Check(Record):
    """One integrity check: its name, whether it passed, and what it found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class IntegrityReport(Record):
    """Every check, `ok` when all passed, and notes that need no action."""

    ok: bool
    checks: list[Check]
    notes: list[str]


def check(store: Store) -> IntegrityReport:
    """Run every check: the catalog, vector counts against it, model files against
    their hashes, dataset versions."""
    checks: list[Check] = []
    notes: list[str] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append(Check(name, bool(ok), detail))

    with store.reading() as uow:
        integrity = uow.integrity
        ok, said = integrity.catalog_check()
        add("catalog", ok, said)
        unfinished = integrity.unfinished_batches()
        add("ingest batches", not unfinished,
            "every batch committed whole" if not unfinished else
            f"batches without a checksum: {', '.join(map(str, unfinished))}")
        n = uow.samples.count()
        top = uow.samples.next_row()
        add("sample rows", top == n, f"{n} samples, rows 0..{top - 1}" if top == n else
            f"{n} samples but row numbers reach {top - 1}: rows are not dense")
        max_event = integrity.max_event_id()
        versions = uow.versions.list()
        bad_versions = []
        for v in versions:
            _, _, fp = uow.versions.samples_state(v["max_batch_id"])
            if v["max_event_id"] > max_event or v["n_samples"] > n or fp != v["samples_fingerprint"]:
                bad_versions.append(v["id"])
        add("dataset versions", not bad_versions,
            f"{len(versions)} versions match the catalog" if not bad_versions else
            f"versions that the catalog no longer backs: {', '.join(map(str, bad_versions))}")
        names = uow.vectors.names()
        infos = {name: uow.vectors.info(name) for name in names}
        sets = {name: uow.vector_set(name) for name in names}
        models = uow.models.list()
    for name, info in infos.items():
        vs = sets[name]
        on_disk = vs.rows_on_disk()
        problems = []
        if info["n_rows"] > n:
            problems.append(f"catalog says {info['n_rows']} rows but there are {n} samples")
        if on_disk < info["n_rows"]:
            problems.append(f"files hold {on_disk} rows, the catalog {info['n_rows']}")
        elif info["n_rows"]:
            last = vs.read(np.array([info["n_rows"] - 1]))
            if not np.isfinite(last).all():
                problems.append(f"row {info['n_rows'] - 1} is not finite")
        if on_disk > info["n_rows"]:
            notes.append(f"vectors {name!r}: {on_disk - info['n_rows']} rows past the valid "
                         "count (an interrupted write; invisible, overwritten by the next)")
        add(f"vectors {name}", not problems,
            "; ".join(problems) or f"{info['n_rows']} rows of {n} samples, files hold {on_disk}")
    bad_models = []
    unhashed = 0
    for m in models:
        want = (m.get("meta") or {}).get("sha256")
        got = file_sha256(model_file(store.root, m["path"])) if m["path"] else None
        if got is None:
            bad_models.append(f"model {m['id']}: file {m['path'] or '(none)'} missing")
        elif want is None:
            unhashed += 1
        elif got != want:
            bad_models.append(f"model {m['id']}: {m['path']} does not match its sha256")
    add("models", not bad_models, "; ".join(bad_models) or
        f"{len(models)} model files" + (f" ({unhashed} saved before hashes were recorded)"
                                        if unhashed else " match their hashes"))
    orphans = orphan_model_files(store.root, {m["path"] for m in models})
    if orphans:
        notes.append(f"model files no catalog row points to: {', '.join(orphans[:5])} "
                     "(a killed train; harmless)")
    return IntegrityReport(all(c.ok for c in checks), checks, notes)
