"""Tests read the catalog as the product does: through one `store.reading()` snapshot
(or write through one `store.unit_of_work()`), with the repositories of its unit of work.

    assert read(store, lambda u: u.samples.count()) == 10
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from longtail.store import Store, UnitOfWork

T = TypeVar("T")


def read(store: Store, fn: Callable[[UnitOfWork], T]) -> T:
    """`fn` of one read snapshot (nothing committed)."""
    with store.reading() as uow:
        return fn(uow)


def write(store: Store, fn: Callable[[UnitOfWork], T]) -> T:
    """`fn` in one transaction, committed."""
    with store.unit_of_work() as uow:
        return fn(uow)
