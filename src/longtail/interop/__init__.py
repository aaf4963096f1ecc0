"""Files exchanged with people and other tools: the batch file handed to labelers, and
a dataset version exported as Parquet, CSV or JSONL (`longtail.interop.export`)."""

from longtail.interop.batch_file import BATCH_SUFFIXES, write_batch_file

__all__ = ["BATCH_SUFFIXES", "write_batch_file"]
