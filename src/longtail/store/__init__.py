"""Catalog (SQL) and vector store: the only code that touches the project directory."""

from longtail.store.catalog import Store
from longtail.store.vectors import CHUNK_ROWS, VectorSet

__all__ = ["Store", "VectorSet", "CHUNK_ROWS"]
