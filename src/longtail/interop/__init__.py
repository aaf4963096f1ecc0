"""Files exchanged with people and other tools: the batch file handed to labelers."""

from longtail.interop.batch_file import BATCH_SUFFIXES, write_batch_file

__all__ = ["BATCH_SUFFIXES", "write_batch_file"]
