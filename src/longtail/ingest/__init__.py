"""Readers, validation and de-duplication of incoming data."""

from longtail.ingest.mapping import ColumnMapping
from longtail.ingest.pipeline import PRECOMPUTED, IngestReport, ingest_file

__all__ = ["ColumnMapping", "IngestReport", "ingest_file", "PRECOMPUTED"]
