"""Work packages: a batch split among annotators, balanced by predicted labeling time.

The batch is chosen first (for diversity, by the strategy); splitting only decides who
labels what. Longest-processing-time-first: items by predicted seconds, longest first,
each to the package with the least predicted work so far (within 4/3 of the best
possible makespan). With `overlap` (0..1), that share of the items (the first of the
batch's order, most wanted first) also goes to a second package, the least loaded
one that does not hold it, for agreement. Pure.
"""

from __future__ import annotations

import heapq

import numpy as np

from longtail.errors import InputError

__all__ = ["split_packages"]


def split_packages(seconds: np.ndarray, n_packages: int, *, overlap: float = 0.0
                   ) -> list[np.ndarray]:
    """Positions (into the batch) of each package's items, each in batch order.

    seconds : (n,) predicted seconds per item (>= 0). n_packages : >= 1.
    O(n log n) time, O(n) memory."""
    seconds = np.asarray(seconds, dtype=np.float64)
    n = len(seconds)
    if n_packages < 1:
        raise InputError(f"--annotators must be 1 or more, got {n_packages}")
    if not 0.0 <= overlap <= 1.0:
        raise InputError(f"--overlap must be a share between 0 and 1, got {overlap}")
    if n_packages > max(n, 1):
        raise InputError(f"{n_packages} packages for a batch of {n}: ask for fewer "
                         "annotators or a bigger batch")
    if overlap > 0 and n_packages < 2:
        raise InputError("--overlap needs 2 or more annotators")
    members: list[list[int]] = [[] for _ in range(n_packages)]
    load = [(0.0, k) for k in range(n_packages)]
    heapq.heapify(load)
    owner = np.empty(n, dtype=np.int64)
    for i in np.argsort(-seconds, kind="stable").tolist():
        work, k = heapq.heappop(load)
        members[k].append(i)
        owner[i] = k
        heapq.heappush(load, (work + float(seconds[i]), k))
    totals = np.zeros(n_packages)
    for k, items in enumerate(members):
        totals[k] = seconds[items].sum() if items else 0.0
    for i in range(int(round(overlap * n))):
        order = np.argsort(totals, kind="stable")
        k = int(next(j for j in order if j != owner[i]))
        members[k].append(i)
        totals[k] += seconds[i]
    return [np.sort(np.asarray(m, dtype=np.int64)) for m in members]
