"""The unit of work: one connection, one transaction, every repository over it.

    with store.unit_of_work() as uow:
        added = uow.labels.add(events)
        closed = uow.rounds.close_done()
    # committed here; an exception inside the block rolled everything back

A use case takes a `UnitOfWork`, reads and writes through its repositories, and
never commits itself: the caller that opened the unit of work owns the transaction.
Inside one, use only its repositories: a `Store` method of the *own transaction* kind
opens a second connection, which does not see the uncommitted work and, on SQLite,
waits for the first one's write lock.

Files beside the catalog (model arrays, vectors, column files of texts) are written before the commit, so a
rolled-back unit of work can leave a file that no row points to, never a row without
its file. Ids come from the database: dense on SQLite, possibly with gaps on
PostgreSQL (a sequence does not roll back); code must not assume they are consecutive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection

from longtail.errors import ProjectError
from longtail.store.repo_base import BATCH_READS
from longtail.store.repos import (
    EvalVersionsRepo,
    LabelSetRepo,
    LabelsRepo,
    MetricsRepo,
    ModelsRepo,
    RoundsRepo,
    SamplesRepo,
    SettingsRepo,
    VectorSetsRepo,
)
from longtail.store.repos_costs import ComputeRepo
from longtail.store.repos_service import AuditRepo, LeasesRepo, UsersRepo
from longtail.store.repos_versions import (
    ConsensusRepo,
    DatasetVersionsRepo,
    DuplicatesRepo,
    IntegrityRepo,
)
from longtail.store.vectors import VectorSet


def lock_conflict(error: BaseException) -> bool:
    """Whether `error` is a PostgreSQL deadlock (40P01) or serialization failure
    (40001), on which the database rolled the transaction back."""
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None) in ("40P01", "40001")


class UnitOfWork:
    """Repositories bound to one connection inside one transaction.

    Made by `Store.unit_of_work()` (which commits on a normal exit and rolls back on an
    exception); `conn` is there for the store's own bulk paths (the ingest pipeline)."""

    def __init__(self, conn: Connection, root: Path):
        self.conn = conn
        self.root = Path(root)
        self.settings = SettingsRepo(conn)
        self.label_set = LabelSetRepo(conn)
        self.samples = SamplesRepo(conn, self.root)
        self.labels = LabelsRepo(conn)
        self.rounds = RoundsRepo(conn)
        self.models = ModelsRepo(conn, self.root)
        self.metrics = MetricsRepo(conn)
        self.eval_versions = EvalVersionsRepo(conn)
        self.vectors = VectorSetsRepo(conn)
        self.versions, self.consensus = DatasetVersionsRepo(conn), ConsensusRepo(conn)  # issue 20
        self.duplicates = DuplicatesRepo(conn)
        self.integrity = IntegrityRepo(conn)
        self.users = UsersRepo(conn)
        self.leases = LeasesRepo(conn)
        self.compute = ComputeRepo(conn)  # issue 29's compute ledger
        self.audit = AuditRepo(conn)  # issue 27: admin actions
        # In a batch of the service (engine/tasks.run_batch): the rounds its answers
        # touched, whose close the batch checks once at its end (None: at each answer).
        self.rounds_to_settle: set[int] | None = None

    @contextmanager
    def batch_reads(self) -> Iterator[UnitOfWork]:
        """Inside, reads that the service's task requests never change (a setting, the
        open rounds, whether a round has relabel items or a round was cancelled, a
        label already given) are read once for the transaction, not once per request:
        the group commit's batch (engine/tasks.run_batch). Writes through the
        repositories keep it true (a closed round leaves the open ones)."""
        self.conn.info[BATCH_READS] = {}
        try:
            yield self
        finally:
            self.conn.info.pop(BATCH_READS, None)

    @contextmanager
    def savepoint(self) -> Iterator[UnitOfWork]:
        """A nested transaction (SAVEPOINT): an exception inside undoes only what was
        written inside, and re-raises; the enclosing transaction goes on."""
        with self.conn.begin_nested():
            yield self

    def vector_set(self, name: str) -> VectorSet:
        """The vector set `name` with the valid row count this transaction sees."""
        info = self.vectors.info(name)
        if info is None:
            raise ProjectError(f"no vectors for encoder {name!r} yet (run `longtail embed`)")
        return VectorSet(self.root / "vectors" / name, info["dim"], info["dtype"],
                         info["n_rows"])

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.conn.dialect.name
