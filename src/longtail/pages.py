"""Give back the pages of a memory-mapped array once a streaming pass is done with them.

A pass over a memory-mapped pool touches every page, and the kernel counts every page
touched in the process's resident set until the mapping goes, so a 1.5 GB pool read
once leaves 1.5 GB resident. ``MADV_DONTNEED`` on a read-only file mapping drops the
pages from this process (they stay in the page cache; reading them again just maps
them again), which keeps a pass's memory at O(chunk) as the scale rules require.
"""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["is_mapped", "release"]

_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def _root(a: np.ndarray) -> tuple[np.memmap, mmap.mmap] | None:
    b = a
    while b is not None:
        base = getattr(b, "base", None)
        if isinstance(b, np.memmap) and isinstance(base, mmap.mmap):
            return b, base
        b = base
    return None


def is_mapped(a: np.ndarray) -> bool:
    """True when `a` is (a view of) a memory-mapped file."""
    return isinstance(a, np.ndarray) and _root(a) is not None


def release(view: np.ndarray) -> None:
    """Drop the pages under `view` (a slice of a read-only np.memmap) from this
    process's resident set. No-op for anything else; never changes data."""
    if _DONTNEED is None or not isinstance(view, np.ndarray) or view.nbytes == 0:
        return
    found = _root(view)
    if found is None:
        return
    root, mm = found
    if not root.flags.c_contiguous or mm.closed:
        return
    start = root.__array_interface__["data"][0] - root.offset % mmap.ALLOCATIONGRANULARITY
    off = view.__array_interface__["data"][0] - start
    lo = off - off % mmap.PAGESIZE
    hi = min(len(mm), off + view.nbytes)
    if 0 <= lo < hi:
        try:
            mm.madvise(_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):  # a mapping the kernel refuses: keep the pages
            pass
