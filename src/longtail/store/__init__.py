"""Catalog (SQL) and vector store: the only code that touches the project directory.

New code opens `Store.unit_of_work()` and uses its repositories (`longtail.store.uow`).
"""

from longtail.store.catalog import Store
from longtail.store.uow import UnitOfWork, lock_conflict
from longtail.store.vectors import CHUNK_ROWS, VectorSet

__all__ = ["Store", "UnitOfWork", "VectorSet", "CHUNK_ROWS", "lock_conflict"]
