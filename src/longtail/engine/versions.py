"""Dataset versions: list, commit, the labels of any version, export, diff.

A version is a record, not a copy (see `longtail.store.repos_versions`): its labels are
the append-only label events up to the version's last event id, resolved under the
version's consensus policy, so any earlier version can be exported exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from longtail.engine.records import Record
from longtail.errors import NotFoundError, ProjectError
from longtail.store import Store, UnitOfWork

SHOWN = ("id", "created_at", "reason", "round_id", "n_samples", "n_labeled", "policy",
         "eval_version_id", "max_event_id")


@dataclass(frozen=True)
class DatasetVersion(Record):
    """A dataset version: why it was made (round, policy, manual, export), its counts,
    consensus policy, eval version and last label event; the fingerprints that tell
    whether the dataset changed since (not shown in `to_dict`)."""

    id: int
    created_at: str
    reason: str
    round_id: int | None
    n_samples: int
    n_labeled: int
    policy: dict[str, Any]
    eval_version_id: int | None
    max_event_id: int
    max_batch_id: int
    samples_fingerprint: str
    labels_fingerprint: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DatasetVersion:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in SHOWN}


@dataclass(frozen=True)
class VersionLabels(Record):
    """A version and its labels (row -> label), replayed from the label events."""

    version: DatasetVersion
    labels: dict[int, str]


@dataclass(frozen=True)
class VersionExport(Record):
    """A version written to a file: where, how many rows, under which policy."""

    version: int
    path: str
    format: str
    rows: int
    policy: dict[str, Any]
    warnings: list[str]


@dataclass(frozen=True)
class VersionDiff(Record):
    """Labels added, removed and changed from version `a` to `b`, by sample id."""

    a: int
    b: int
    policy_a: dict[str, Any]
    policy_b: dict[str, Any]
    samples_added: int
    counts: dict[str, int]
    added: list[dict[str, str]]
    removed: list[dict[str, str]]
    changed: list[dict[str, str]]


def list_versions(store: Store) -> list[DatasetVersion]:
    """Every dataset version, oldest first: id, time, why it was made (round, policy,
    manual, export), samples and labeled counts, policy, eval version, last event id."""
    with store.unit_of_work() as uow:
        return [DatasetVersion.from_row(v) for v in uow.versions.list()]


def commit_version(store: Store, reason: str = "manual") -> DatasetVersion:
    """Record the dataset as it stands now as a new version (one transaction)."""
    with store.unit_of_work() as uow:
        return DatasetVersion.from_row(uow.versions.commit(reason))


def _changed_since(uow: UnitOfWork, v: dict) -> bool:
    n, top, fingerprint = uow.versions.samples_state()
    evs = uow.eval_versions.list()
    return (uow.labels.max_id() != v["max_event_id"] or uow.consensus.policy() != v["policy"]
            or fingerprint != v["samples_fingerprint"]
            or (evs[-1]["id"] if evs else None) != v["eval_version_id"])


def resolve_version(store: Store, version: int | None = None, *,
                    reason: str = "export") -> DatasetVersion:
    """Version `version`, or (None) the dataset as it stands: the latest version when
    nothing changed since it, else a new version committed for the occasion (`reason`)."""
    with store.unit_of_work() as uow:
        if version is None:
            latest = uow.versions.latest()
            if latest is None or _changed_since(uow, latest):
                latest = uow.versions.commit(reason)
            return DatasetVersion.from_row(latest)
        found = uow.versions.get(version)
        if found is None:
            known = [v["id"] for v in uow.versions.list()]
            raise NotFoundError(f"no dataset version {version} (versions: "
                             f"{', '.join(map(str, known)) if known else 'none yet'})")
        return DatasetVersion.from_row(found)


def version_labels(store: Store, version: int | None = None) -> VersionLabels:
    """A version (None: the dataset as it stands) and its labels, row -> label, replayed
    from the label events under its policy."""
    v = resolve_version(store, version)
    with store.reading() as uow:
        return VersionLabels(v, uow.consensus.labels(v.max_event_id, v.policy))


def _records(store: Store, labels: dict[int, str]) -> list[dict]:
    """id, text, label and split of the labeled rows, by row."""
    rows = np.array(sorted(labels), dtype=np.int64)
    out = []
    with store.reading() as uow:
        eval_rows = set(uow.samples.rows_by_split("eval").tolist())
        for chunk in uow.samples.iter(rows) if len(rows) else []:
            for row, ext, txt, _meta in chunk:
                out.append({"id": ext, "text": txt, "label": labels[row],
                            "split": "eval" if row in eval_rows else "pool"})
    return out


def export_version(store: Store, path: str | Path, *, version: int | None = None,
                   fmt: str | None = None, overwrite: bool = False) -> VersionExport:
    """Write the labeled samples of a version (id, text, label, split) as Parquet, CSV or
    JSONL (`fmt`, else by the file's suffix). The samples' texts are today's: a version
    whose samples were replaced since by `ingest --update` says so in `warnings`."""
    from longtail.interop.export import check_target, write_records

    fmt = check_target(Path(path), fmt, overwrite)
    v, labels = (got := version_labels(store, version)).version, got.labels
    warnings = []
    with store.unit_of_work() as uow:
        _, _, fingerprint = uow.versions.samples_state(v.max_batch_id)
        updated = uow.versions.updated_after(v.max_batch_id)
    if fingerprint != v.samples_fingerprint:
        raise ProjectError(f"version {v.id}: the ingest batches it names changed since "
                           "(the catalog was edited outside longtail?)")
    if updated:
        warnings.append(f"{updated} samples were replaced by `ingest --update` after version "
                        f"{v.id}: their texts are today's, their labels the version's")
    records = _records(store, labels)
    write_records(Path(path), records, fmt)
    return VersionExport(v.id, str(path), fmt, len(records), v.policy, warnings)


def diff_versions(store: Store, a: int, b: int) -> VersionDiff:
    """Labels added, removed and changed from version `a` to version `b`, by sample id."""
    va, la = (got := version_labels(store, a)).version, got.labels
    vb, lb = (got := version_labels(store, b)).version, got.labels
    rows = sorted(set(la) | set(lb))
    ids = {}
    if rows:
        with store.reading() as uow:
            for chunk in uow.samples.iter(np.array(rows, dtype=np.int64)):
                ids.update({row: ext for row, ext, _, _ in chunk})
    added = [{"id": ids[r], "label": lb[r]} for r in rows if r in lb and r not in la]
    removed = [{"id": ids[r], "label": la[r]} for r in rows if r in la and r not in lb]
    changed = [{"id": ids[r], "from": la[r], "to": lb[r]} for r in rows
               if r in la and r in lb and la[r] != lb[r]]
    return VersionDiff(va.id, vb.id, va.policy, vb.policy,
                       max(0, vb.n_samples - va.n_samples),
                       {"added": len(added), "removed": len(removed), "changed": len(changed)},
                       added, removed, changed)
