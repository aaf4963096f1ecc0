"""Repositories of issue 20: dataset versions, label consensus, catalog integrity.

Kept apart from `repos.py` so the two evolve without colliding. Same rules: each
repository wraps the caller's connection and never commits; SQLAlchemy Core only.

A dataset version is cheap: counts and fingerprints, the id of the latest label event
it includes, the consensus policy and the eval version. The labels of a version are
recomputed by replaying the append-only label events up to that id under its policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, func, inspect, select, text
from sqlalchemy import insert as sa_insert

from longtail.crashpoints import crashpoint
from longtail.errors import InputError
from longtail.filehash import file_sha256 as sha256_of_bytes
from longtail.store import schema as s
from longtail.store.repo_base import Direct, Repo, SettingsRepo, now

POLICY_KEY = "consensus"
POLICIES = ("latest", "majority", "trusted")
LATEST = {"policy": "latest"}


def migrate_3(conn: Connection) -> None:
    """v2 -> v3: the dataset_versions table (checked first, so it can be run again)."""
    if not inspect(conn).has_table("dataset_versions"):
        s.dataset_versions.create(conn)


def check_policy(policy: str | dict[str, Any], annotators: Iterable[str] | None = None
                 ) -> dict[str, Any]:
    """A consensus policy as stored: {"policy": "latest" | "majority"} or
    {"policy": "trusted", "annotators": [most trusted first, ...]}. InputError otherwise."""
    if isinstance(policy, dict):
        annotators = policy.get("annotators", annotators)
        policy = policy.get("policy", "")
    if policy not in POLICIES:
        raise InputError(f"consensus policy {policy!r} is not one of {', '.join(POLICIES)}")
    if policy != "trusted":
        if annotators:
            raise InputError(f"the {policy!r} policy takes no annotators (only 'trusted' does)")
        return {"policy": policy}
    names = [str(a).strip() for a in (annotators or [])]
    if not names or any(not a for a in names):
        raise InputError("the 'trusted' policy needs annotators, most trusted first "
                         "(e.g. --annotators alice,bob)")
    if len(set(names)) != len(names):
        raise InputError(f"annotator given twice in {', '.join(names)}")
    return {"policy": "trusted", "annotators": names}


_EVENTS_OF_ROW = Direct(select(s.annotations.c.id, s.annotations.c.row, s.annotations.c.label,
                               s.annotations.c.annotator)
                        .where(s.annotations.c.kind == "label",
                               s.annotations.c.row == bindparam("row")))
_EVENTS_OF = (select(s.annotations.c.id, s.annotations.c.row, s.annotations.c.label,
                     s.annotations.c.annotator)
              .where(s.annotations.c.kind == "label",
                     s.annotations.c.row.in_(bindparam("rows", expanding=True))))

def resolve_labels(events: Iterable[tuple[int, int, str, str | None]],
                   policy: dict[str, Any]) -> dict[int, str]:
    """row -> label from label events (id, row, label, annotator), oldest first.

    latest: the row's latest label event. majority: each annotator's latest label is one
    vote (events without an annotator count as one anonymous annotator); most votes
    wins, a tie goes to the label voted most recently. trusted: the latest label of the
    most trusted annotator who labeled the row, else the row's latest label.
    O(events) time, O(rows · annotators) memory."""
    name = policy.get("policy", "latest")
    if name == "latest":
        out: dict[int, str] = {}
        for _, row, label, _ in events:
            out[row] = label
        return dict(sorted(out.items()))
    # row -> annotator -> (event id, label): each annotator's latest answer
    votes: dict[int, dict[str | None, tuple[int, str]]] = {}
    for eid, row, label, who in events:
        votes.setdefault(row, {})[who] = (eid, label)
    out = {}
    if name == "trusted":
        rank = {a: i for i, a in enumerate(policy.get("annotators") or [])}
        for row, by in votes.items():
            trusted = [(rank[a], v) for a, v in by.items() if a in rank]
            out[row] = min(trusted)[1][1] if trusted else max(by.values())[1]
        return dict(sorted(out.items()))
    for row, by in votes.items():
        count: dict[str, int] = {}
        last: dict[str, int] = {}
        for eid, label in by.values():
            count[label] = count.get(label, 0) + 1
            last[label] = max(last.get(label, 0), eid)
        out[row] = max(count, key=lambda lab: (count[lab], last[lab]))
    return dict(sorted(out.items()))


def labels_fingerprint(labels: dict[int, str]) -> str:
    """SHA-256 over (row, label) pairs in row order."""
    h = hashlib.sha256()
    for row, label in sorted(labels.items()):
        h.update(f"{row}\x00{label}\x01".encode())
    return h.hexdigest()


class ConsensusRepo(Repo):
    """The consensus policy setting and the label events it resolves."""

    def policy(self) -> dict[str, Any]:
        return dict(SettingsRepo(self.conn).get(POLICY_KEY) or LATEST)

    def set_policy(self, policy: dict[str, Any]) -> None:
        SettingsRepo(self.conn).set(POLICY_KEY, check_policy(policy))

    def label_events(self, max_id: int | None = None, rows: Sequence[int] | None = None
                     ) -> list[tuple[int, int, str, str | None]]:
        """(id, row, label, annotator) of every 'label' event (up to `max_id`; of `rows`
        only, when given), by id."""
        a = s.annotations
        if rows is not None and max_id is None:
            q = _EVENTS_OF  # built once: the service's label requests run it for one row
        else:
            q = select(a.c.id, a.c.row, a.c.label, a.c.annotator).where(a.c.kind == "label")
        if max_id is not None:
            q = q.where(a.c.id <= int(max_id))
        if rows is None:
            return [(int(i), int(r), lab, who)
                    for i, r, lab, who in self.conn.execute(q.order_by(a.c.id))]
        rows = sorted({int(r) for r in rows})
        if len(rows) == 1 and max_id is None:  # a service answer: straight on the driver
            return sorted((int(i), int(r), lab, who)
                          for i, r, lab, who in _EVENTS_OF_ROW.all(self.conn, {"row": rows[0]}))
        out = []
        part = q if max_id is None else q.where(a.c.row.in_(bindparam("rows", expanding=True)))
        for start in range(0, len(rows), 20_000):
            out += [(int(i), int(r), lab, who) for i, r, lab, who in self.conn.execute(
                part, {"rows": rows[start:start + 20_000]})]
        return sorted(out)

    def by_annotator(self, rows: Sequence[int] | None = None) -> dict[tuple[int, str], str]:
        """(row, annotator) -> that annotator's latest label, for attributed label events
        (of `rows` only, when given): an import skips a label its annotator already gave,
        and keeps another annotator's agreeing label (agreement needs it)."""
        return {(r, who): lab for _, r, lab, who in self.label_events(rows=rows)
                if who is not None}

    def row_labels(self, rows: Sequence[int]) -> tuple[dict[int, str], dict[tuple[int, str], str]]:
        """Of `rows`, from one read of their label events: row -> current label (under
        the project's policy, as `LabelsRepo.current` gives it) and (row, annotator) ->
        that annotator's latest label (as `by_annotator`)."""
        events = self.label_events(rows=rows)
        given = {(r, who): lab for _, r, lab, who in events if who is not None}
        return resolve_labels(events, self.policy()), given

    def labels(self, max_id: int | None = None, policy: dict[str, Any] | None = None
               ) -> dict[int, str]:
        """row -> label under `policy` (default: the project's) from events up to `max_id`."""
        return resolve_labels(self.label_events(max_id), policy or self.policy())


class DatasetVersionsRepo(Repo):
    """Dataset versions: what a round (or a policy change) saw, without a copy."""

    def samples_state(self, upto: int | None = None) -> tuple[int, int, str]:
        """(number of samples, latest ingest batch id, SHA-256 over every batch's id,
        checksum and counts), over the batches up to id `upto` when given: any ingest
        that added or changed samples changes it."""
        b = s.ingest_batches
        h = hashlib.sha256()
        top = 0
        q = select(b.c.id, b.c.file_sha256, b.c.n_new, b.c.n_updated).order_by(b.c.id)
        if upto is not None:
            q = q.where(b.c.id <= int(upto))
        for bid, sha, n_new, n_up in self.conn.execute(q):
            h.update(f"{bid}:{sha}:{n_new}:{n_up};".encode())
            top = int(bid)
        n = int(self.conn.execute(select(func.count()).select_from(s.samples)).scalar())
        return n, top, h.hexdigest()

    def commit(self, reason: str, round_id: int | None = None) -> dict:
        """Record the dataset as it stands as a new version; the version's record."""
        consensus = ConsensusRepo(self.conn)
        policy = consensus.policy()
        max_event = int(self.conn.execute(select(func.max(s.annotations.c.id))).scalar() or 0)
        labels = consensus.labels(max_event, policy)
        n, top, fingerprint = self.samples_state()
        ev = self.conn.execute(select(func.max(s.eval_versions.c.id))).scalar()
        record = {"created_at": now(), "reason": reason, "round_id": round_id,
                  "max_event_id": max_event, "n_samples": n, "max_batch_id": top,
                  "samples_fingerprint": fingerprint, "policy": policy,
                  "eval_version_id": None if ev is None else int(ev),
                  "n_labeled": len(labels), "labels_fingerprint": labels_fingerprint(labels)}
        res = self.conn.execute(sa_insert(s.dataset_versions).values(**record))
        crashpoint("version:in_tx")
        return {"id": int(res.inserted_primary_key[0]), **record}

    def updated_after(self, batch_id: int) -> int:
        """Samples replaced (`ingest --update`) by batches after `batch_id`."""
        b = s.ingest_batches
        q = select(func.sum(b.c.n_updated)).where(b.c.id > int(batch_id))
        return int(self.conn.execute(q).scalar() or 0)

    def list(self) -> list[dict]:
        q = select(s.dataset_versions).order_by(s.dataset_versions.c.id)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def get(self, version_id: int) -> dict | None:
        q = select(s.dataset_versions).where(s.dataset_versions.c.id == int(version_id))
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def latest(self) -> dict | None:
        q = select(s.dataset_versions).order_by(s.dataset_versions.c.id.desc()).limit(1)
        row = self.conn.execute(q).mappings().first()
        return dict(row) if row else None

    def labels(self, version: dict) -> dict[int, str]:
        """row -> label of a version: its events replayed under its policy."""
        return ConsensusRepo(self.conn).labels(version["max_event_id"], version["policy"])


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes (read in 1 MiB pieces), or None when it is missing."""
    return sha256_of_bytes(path) if path.exists() else None


def orphan_model_files(root: Path, known: set[str]) -> list[str]:
    """Names of model files under `root/models` that no catalog row (`known` paths,
    relative to `root`) points to: what a train killed before its commit leaves."""
    models = Path(root) / "models"
    if not models.exists():
        return []
    return sorted(p.name for p in models.glob("*.npz")
                  if p.relative_to(root).as_posix() not in known)


class DuplicatesRepo(Repo):
    """Samples sharing a content hash."""

    def exact_groups(self) -> list[list[int]]:
        """Rows of each content hash held by two or more samples, by first row."""
        sm = s.samples
        dup = (select(sm.c.content_hash).group_by(sm.c.content_hash)
               .having(func.count() > 1).subquery())
        q = (select(sm.c.content_hash, sm.c.row).join(dup, sm.c.content_hash == dup.c.content_hash)
             .order_by(sm.c.row))
        groups: dict[str, list[int]] = {}
        for h, row in self.conn.execute(q):
            groups.setdefault(h, []).append(int(row))
        return sorted(groups.values(), key=lambda g: g[0])


class IntegrityRepo(Repo):
    """The catalog's own consistency checks."""

    def catalog_check(self) -> tuple[bool, str]:
        """SQLite's integrity_check and foreign_key_check: (ok, what they said). On
        PostgreSQL the server keeps its own invariants: (True, 'not applicable')."""
        if self.conn.dialect.name != "sqlite":
            return True, "not applicable on " + self.conn.dialect.name
        said = [r[0] for r in self.conn.execute(text("PRAGMA integrity_check")).all()]
        fk = self.conn.execute(text("PRAGMA foreign_key_check")).all()
        ok = said == ["ok"] and not fk
        detail = "ok" if ok else "; ".join(said[:5]) + (f"; {len(fk)} broken foreign keys" if fk else "")
        return ok, detail

    def unfinished_batches(self) -> list[int]:
        """Ingest batches committed without their checksum (never true of a whole ingest)."""
        b = s.ingest_batches
        return [int(i) for (i,) in self.conn.execute(select(b.c.id).where(b.c.file_sha256 == ""))]

    def max_event_id(self) -> int:
        return int(self.conn.execute(select(func.max(s.annotations.c.id))).scalar() or 0)
