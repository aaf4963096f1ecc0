"""Duplicates in the pool: exact (same content hash) and near (cosine similarity of the
encoder's vectors at or above a threshold, found with FAISS).

Near-duplicates are found by a k-nearest-neighbour search of every row among all rows
(exact inner product on normalised vectors up to `FLAT_MAX` rows, an IVF index beyond),
then joined into groups (union-find over the pairs found): O(n·k) memory, never an
n x n matrix. Reads only; nothing in the catalog changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.settings import Settings
from longtail.errors import InputError

FLAT_MAX = 200_000  # rows up to which the search is exact (a flat index)
CHUNK = 8192  # query rows per search call


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def near_pairs(vs: Any, threshold: float, k: int = 8, seed: int = 0) -> np.ndarray:
    """(m, 2) row pairs (a < b) whose cosine similarity is >= `threshold`, among each
    row's `k` nearest neighbours. O(n·k) memory; a flat search costs O(n²·d) time, an
    IVF one (above FLAT_MAX rows) about O(n·sqrt(n)·d)."""
    import faiss

    n, d = vs.n_rows, vs.dim
    if n < 2:
        return np.zeros((0, 2), np.int64)
    if n <= FLAT_MAX:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = vs.read(np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False)))
        faiss.normalize_L2(train)
        index.train(train)
        index.nprobe = 8
    for _, X in vs.iter_chunks():
        X = np.array(X, dtype=np.float32, order="C")  # a copy: the chunk may map a read-only file
        faiss.normalize_L2(X)
        index.add(X)
    pairs = []
    for rows, X in vs.iter_chunks(chunk_rows=CHUNK):
        X = np.array(X, dtype=np.float32, order="C")  # a copy: the chunk may map a read-only file
        faiss.normalize_L2(X)
        sim, nbr = index.search(X, min(k + 1, n))
        a = np.repeat(rows, sim.shape[1])
        b, s = nbr.ravel(), sim.ravel()
        keep = (b >= 0) & (b != a) & (s >= threshold)
        pairs.append(np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], 1))
    out = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return np.unique(out, axis=0) if len(out) else out


def duplicates(store: Any, settings: Settings, *, threshold: float = 0.98,
               encoder: str | None = None, near: bool = True, k: int = 8) -> dict:
    """Groups of exact duplicates (same content hash) and of near-duplicates (cosine >=
    `threshold` on `encoder`'s vectors), each as sample ids with their current label
    (None when unlabeled)."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"--threshold must be in (0, 1], got {threshold:g}")
    current = store.current_labels()
    with store.unit_of_work() as uow:
        from longtail.store.repos_versions import DuplicatesRepo

        exact = DuplicatesRepo(uow.conn).exact_groups()
    groups_near: list[list[int]] = []
    name = None
    if near and (encoder or settings.encoder):
        vs = views.vectors(store, settings, encoder, complete=False)
        name = vs.directory.name
        pairs = near_pairs(vs, threshold, k=k, seed=settings.seed)
        parent = np.arange(vs.n_rows)
        for a, b in pairs.tolist():
            ra, rb = _find(parent, a), _find(parent, b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        members: dict[int, list[int]] = {}
        for r in np.unique(pairs).tolist():
            members.setdefault(_find(parent, r), []).append(r)
        groups_near = sorted((sorted(g) for g in members.values()), key=lambda g: g[0])
    ids = _ids(store, sorted({r for g in exact + groups_near for r in g}))

    def show(g: list[int]) -> list[dict]:
        return [{"id": ids[r], "label": current.get(r)} for r in g]

    return {"threshold": threshold, "encoder": name,
            "exact": [show(g) for g in exact], "near": [show(g) for g in groups_near],
            "counts": {"exact_groups": len(exact), "near_groups": len(groups_near),
                       "near_rows": sum(len(g) for g in groups_near),
                       "near_with_labeled": sum(any(r in current for r in g) for g in groups_near)}}


def _ids(store: Any, rows: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    if rows:
        for chunk in store.iter_samples(np.array(rows, dtype=np.int64)):
            out.update({row: ext for row, ext, _, _ in chunk})
    return out
