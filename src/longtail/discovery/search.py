"""Similarity search over a vector reader: exact (streamed) or an IVF index whose lists
are scored exactly.

Similarity is cosine. A reader is anything with ``read(rows)`` and
``iter_chunks(rows, chunk_rows)`` (the store's VectorSet, ``ArrayVectors``).

- :func:`exact_search` streams the rows in chunks: O(n·d·m) time for m queries,
  O(chunk·d + m·k) memory; never an n×n matrix.
- :class:`Index` is an IVF partition (FAISS spherical k-means, ``nlist`` ≈ √n lists)
  with a *packed* copy of the unit vectors grouped by list (IVF-Flat, float32): a query
  scores the ``nprobe`` closest lists as contiguous slices of that copy, which the
  engine keeps memory-mapped in the project's state (a gather of ~30k scattered rows
  from the vector set per query cost ~0.5 s at 1M rows; contiguous slices cost a few
  milliseconds). No codes: product quantisers took over a minute to train on a loaded
  2-core machine. Rows appended after the pack join their closest list and are read
  from the vector set until the next pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CHUNK = 65_536
TRAIN_PER_LIST = 64  # training sample rows per coarse list
NPROBE = 48  # lists a query reads (of about √n): recall@10 at 100k 0.92 at 16, 0.953 at 32,
# 0.987 at 48, 0.997 at 64 (bench/search.py's mixture; chosen there, checked at 1M)


_CONTROLLER: list[Any] = []


def _controller() -> Any:
    """One threadpoolctl controller (making one scans the loaded libraries: ~20 ms)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C-contiguous); zero rows stay zero."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / np.maximum(n, 1e-12))


def _merge(best_s: np.ndarray, best_r: np.ndarray, s: np.ndarray, r: np.ndarray, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k highest of two (m, ·) score blocks, row ids alongside."""
    S = np.concatenate([best_s, s], axis=1)
    R = np.concatenate([best_r, r], axis=1)
    if S.shape[1] > k:
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        S, R = np.take_along_axis(S, top, 1), np.take_along_axis(R, top, 1)
    return S, R


def _sorted(S: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((R, -S), axis=1) if S.size else np.zeros(S.shape, np.int64)
    return np.take_along_axis(R, order, 1), np.take_along_axis(S, order, 1)


def exact_search(reader: Any, queries: np.ndarray, k: int, rows: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar of ``rows`` (default: every row) to each query, exactly:
    ``(rows (m, k) int64, similarities (m, k) float32)``, best first, -1 / -inf
    padding when fewer rows exist. Streams the reader in chunks of CHUNK rows."""
    Q = normalise(queries)
    m = len(Q)
    best_s = np.full((m, 0), -np.inf, np.float32)
    best_r = np.full((m, 0), -1, np.int64)
    for piece, X in reader.iter_chunks(rows, chunk_rows=CHUNK):
        s = (Q @ normalise(X).T).astype(np.float32)
        best_s, best_r = _merge(best_s, best_r, s, np.broadcast_to(piece, s.shape), k)
    R, S = _sorted(best_s, best_r)
    if R.shape[1] < k:
        pad = k - R.shape[1]
        R = np.hstack([R, np.full((m, pad), -1, np.int64)])
        S = np.hstack([S, np.full((m, pad), -np.inf, np.float32)])
    return R, S


@dataclass
class Index:
    """An IVF index over rows [0, n_rows) of a vector set: ``centroids`` (nlist, d) of a
    spherical k-means and each row's list ``assign`` (n,) int32. The vectors stay in
    the vector set: a query reads the rows of its ``nprobe`` closest lists and scores
    them exactly, so only the lists' coverage can miss a neighbour. O(n·4) bytes."""

    centroids: np.ndarray
    assign: np.ndarray
    fingerprint: str = ""
    inv_norm: np.ndarray | None = None  # 1 / |row|, so a query scores raw vectors
    _csr: tuple[np.ndarray, np.ndarray] | None = None
    # The packed copy: unit rows of ``packed_rows`` (rows [0, n_packed) grouped by list,
    # ascending within a list), list j at ``packed[packed_offsets[j]:packed_offsets[j+1]]``.
    packed: np.ndarray | None = None
    packed_rows: np.ndarray | None = None
    packed_offsets: np.ndarray | None = None
    packed_file: str = ""  # where the caller keeps the packed copy (engine: a state file)

    @property
    def n_packed(self) -> int:
        """Rows in the packed copy (rows [0, n_packed)); later rows are the unpacked tail."""
        return 0 if self.packed_rows is None else int(len(self.packed_rows))

    @property
    def n_rows(self) -> int:
        return int(len(self.assign))

    @property
    def nlist(self) -> int:
        return int(len(self.centroids))

    @classmethod
    def build(cls, reader: Any, n_rows: int, seed: int = 0, fingerprint: str = "",
              nlist: int | None = None, niter: int = 10) -> Index:
        """Spherical k-means (FAISS) on a seeded sample of TRAIN_PER_LIST rows per list,
        nlist ≈ √n, then every row assigned, streamed. O(n·nlist·d) time."""
        import faiss

        d = int(reader.dim)
        nlist = nlist or int(np.clip(np.sqrt(n_rows), 8, 4096))
        rng = np.random.default_rng(seed)
        take = np.sort(rng.choice(n_rows, min(n_rows, TRAIN_PER_LIST * nlist), replace=False))
        km = faiss.Kmeans(d, nlist, niter=niter, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=TRAIN_PER_LIST)
        km.train(normalise(reader.read(take)))
        out = cls(np.asarray(km.centroids, np.float32), np.zeros(0, np.int32), fingerprint,
                  np.zeros(0, np.float32))
        out.add(reader, n_rows)
        return out

    def pack(self, reader: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Write the unit vectors of every assigned row into ``out`` ((n_rows, d) float32,
        e.g. a memory map; default a new array), grouped by list, and use it as the
        packed copy. Streams the reader in row order: O(n·d) time, O(CHUNK·d) memory
        besides ``out``."""
        order, offsets = self.lists()
        n, d = self.n_rows, int(self.centroids.shape[1])
        if out is None:
            out = np.empty((n, d), np.float32)
        if out.shape != (n, d):
            raise ValueError(f"pack: out has shape {out.shape}, need {(n, d)}")
        where = np.empty(n, np.int64)
        where[order] = np.arange(n, dtype=np.int64)
        for piece, X in reader.iter_chunks(np.arange(n, dtype=np.int64), chunk_rows=CHUNK):
            out[where[piece]] = normalise(X)
        self.packed, self.packed_rows, self.packed_offsets = out, order.copy(), offsets.copy()
        return out

    def _quantizer(self) -> Any:
        import faiss

        q = faiss.IndexFlatIP(self.centroids.shape[1])
        q.add(self.centroids)
        return q

    def add(self, reader: Any, n_rows: int) -> int:
        """Assign rows [self.n_rows, n_rows) (rows appended since) to their closest
        list; how many."""
        start = self.n_rows
        if n_rows <= start:
            return 0
        q = self._quantizer()
        parts, inv = [self.assign], [self.inv_norm]
        for _, X in reader.iter_chunks(np.arange(start, n_rows, dtype=np.int64),
                                       chunk_rows=CHUNK):
            X = np.ascontiguousarray(X, dtype=np.float32)
            r = 1.0 / np.maximum(np.linalg.norm(X, axis=1), 1e-12)
            parts.append(q.search(np.ascontiguousarray(X * r[:, None]), 1)[1][:, 0]
                         .astype(np.int32))
            inv.append(r.astype(np.float32))
        self.assign = np.concatenate(parts)
        self.inv_norm = np.concatenate(inv)
        self._csr = None
        return n_rows - start

    def lists(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows ordered by list, offsets (nlist + 1,)): list j's rows are
        ``order[offsets[j]:offsets[j + 1]]``, ascending. O(n log n) once."""
        if self._csr is None:
            order = np.argsort(self.assign, kind="stable").astype(np.int64)
            offsets = np.searchsorted(self.assign[order], np.arange(self.nlist + 1))
            self._csr = (order, offsets)
        return self._csr

    def search(self, reader: Any, queries: np.ndarray, k: int, *, nprobe: int = NPROBE,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like :func:`exact_search` over the rows of each query's ``nprobe`` closest
        lists (``allowed``: a bool mask over rows; others are never returned). O(nprobe
        · n / nlist · d) per query."""
        Q = normalise(queries)
        npr = min(nprobe, self.nlist)
        R = np.full((len(Q), k), -1, np.int64)
        S = np.full((len(Q), k), -np.inf, np.float32)
        # Small products: one BLAS thread (a pool of spinning threads made them several
        # times slower on a loaded 2-core machine), the lists' product included.
        with _controller().limit(limits=1, user_api="blas"):
            # The closest lists by one small product: a FAISS search here would wake its
            # OpenMP pool, which spins for milliseconds per query on a loaded machine.
            sims = Q @ self.centroids.T
            probes = np.argpartition(-sims, npr - 1, axis=1)[:, :npr] if npr < self.nlist \
                else np.tile(np.arange(self.nlist), (len(Q), 1))
            for i in range(len(Q)):
                c, s = self._score(reader, Q[i], probes[i], allowed)
                if not len(c):
                    continue
                top = np.argpartition(-s, k - 1)[:k] if len(s) > k else np.arange(len(s))
                top = top[np.lexsort((c[top], -s[top]))]
                R[i, :len(top)], S[i, :len(top)] = c[top], s[top]
        return R, S

    def _score(self, reader: Any, q: np.ndarray, probes: np.ndarray,
               allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine similarities) of the rows of lists ``probes``: packed rows from
        contiguous slices of the packed copy, the unpacked tail read from ``reader``."""
        rows, sims = [], []
        m = self.n_packed
        if m:
            off = self.packed_offsets
            for j in probes:
                a, b = int(off[j]), int(off[j + 1])
                if b > a:
                    rows.append(self.packed_rows[a:b])
                    sims.append(np.asarray(self.packed[a:b], np.float32) @ q)
        if self.n_rows > m:  # rows appended since the pack: from the vector set
            tail = m + np.flatnonzero(np.isin(self.assign[m:], probes))
            if len(tail):
                rows.append(tail)
                sims.append((reader.read(tail) @ q) * self.inv_norm[tail])
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        c = np.concatenate(rows).astype(np.int64, copy=False)
        s = np.concatenate(sims).astype(np.float32, copy=False)
        if allowed is not None:
            ok = allowed[c]
            c, s = c[ok], s[ok]
        return c, s

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays, the packed copy's row order included but not the
        copy itself (the caller keeps that, e.g. as a memory-mapped file)."""
        out = {"centroids": self.centroids, "assign": self.assign.astype(np.int32),
               "inv_norm": self.inv_norm.astype(np.float32),
               "fingerprint": np.asarray(self.fingerprint)}
        if self.packed_rows is not None:
            out["packed_rows"] = self.packed_rows.astype(np.int32)
            out["packed_offsets"] = self.packed_offsets.astype(np.int64)
        return out

    @classmethod
    def from_arrays(cls, a: Any, packed: np.ndarray | None = None) -> Index:
        """The index of :meth:`to_arrays`; ``packed``: its packed copy (None: no copy,
        every row read from the vector set)."""
        out = cls(np.asarray(a["centroids"], np.float32), np.asarray(a["assign"], np.int32),
                  str(a["fingerprint"]), np.asarray(a["inv_norm"], np.float32))
        if packed is not None and "packed_rows" in a:
            rows = np.asarray(a["packed_rows"], np.int32)
            if packed.shape == (len(rows), out.centroids.shape[1]):
                out.packed, out.packed_rows = packed, rows
                out.packed_offsets = np.asarray(a["packed_offsets"], np.int64)
        return out


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k found in its approximate top-k."""
    hits = [len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum())
            for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")
