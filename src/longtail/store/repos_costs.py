"""Repository of the compute ledger (`compute_runs`, schema version 5): one row per
metered command. Like every repository it wraps the caller's connection and never
commits."""

from __future__ import annotations

from sqlalchemy import insert as sa_insert
from sqlalchemy import select

from longtail.store import schema as s
from longtail.store.repo_base import Repo, now


class ComputeRepo(Repo):
    """Metered commands, oldest first."""

    def add(self, record: dict) -> int:
        """Append one command's record (`longtail.costs.ledger.CommandRun.record()`);
        its id."""
        res = self.conn.execute(sa_insert(s.compute_runs).values(
            created_at=record.get("created_at") or now(), command=record["command"],
            round_id=record.get("round_id"), cpu_seconds=float(record["cpu_seconds"]),
            wall_seconds=float(record["wall_seconds"]),
            gpu_seconds=float(record.get("gpu_seconds", 0.0)),
            peak_rss_mb=float(record.get("peak_rss_mb", 0.0)), phases=record["phases"]))
        return int(res.inserted_primary_key[0])

    def list(self) -> list[dict]:
        """Every record, oldest first."""
        q = select(s.compute_runs).order_by(s.compute_runs.c.id)
        return [dict(r) for r in self.conn.execute(q).mappings()]
