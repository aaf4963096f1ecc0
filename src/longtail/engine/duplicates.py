"""Duplicates in the pool: exact (same content hash) and near (cosine similarity of the
encoder's vectors at or above a threshold, found with FAISS).

Near-duplicates are found when vectors arrive (ingest of precomputed vectors, `embed`)
and incrementally: only the rows new since the last search, and rows whose vectors an
`ingest --update` replaced, are searched, each among all rows. The pairs found are
kept in ``state/<encoder>.duplicates.npz`` (plain arrays, no pickle) with the number of
rows searched, the threshold, and what the IVF index needs to be rebuilt without
training again (projection, coarse centroids, the list of each row, code ranges).

Up to `FLAT_MAX` rows the search is exact (a flat inner-product range search).
Beyond, an IVF partition (k-means lists, 8-bit codes) of the vectors' top
`PROJECT_DIM` principal directions proposes, for each searched row, its `RESCORE`
closest rows within the L2 radius that cosine >= t implies (no pair is lost to the
projection), and each proposal is scored exactly from the vectors. One chunked pass
reads and encodes the rows not encoded yet and gives each its `NPROBE` closest lists;
then each list's rows are joined with the searched rows probing it in one matrix
product of decoded codes (BLAS on threads, first over half the directions: a lower
bound), not a scan per row. Cost per search: reading the new rows once plus
O(new rows · (nlist + nprobe · n / nlist) · p), nlist = 2·sqrt(n); memory O(n · p)
bytes of codes. Never an n x n matrix. Vectors of fewer than `MIN_DIM`
dimensions get no near search (cosine 0.98 there joins neighbours, not copies).

`query` leaves out, by default, the candidates that duplicate a labeled sample
(`exclude_labeled_twins`): the same content hash as one, or a near pair with one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings, near_threshold
from longtail.errors import InputError
from longtail.store import Store, VectorSet

FLAT_MAX = 8192  # rows up to which the search is exact (a flat index)
NLIST = 4096  # most IVF lists; a pool of n rows gets LISTS_PER_SQRT_N·sqrt(n)
LISTS_PER_SQRT_N = 2.0  # evens the lists' assignment and the join's costs
THREADS = None  # threads assigning and joining lists (None: one per core)
JOIN_CELLS = 1 << 22  # most distances the join holds at once (16 MiB of float32)
CHUNK = 8192  # query rows per search call
K = 64  # twins kept per searched row (its closest): bounds a clump of copies' pairs
NPROBE = 4  # lists probed per row: 98-100% of planted twins found (2 lists: 92-97%)
MIN_DIM = 32  # below this many dimensions a cosine of 0.98 is a neighbour, not a copy
PROJECT_DIM = 64  # the IVF searches the vectors' top principal directions, then re-scores
RESCORE = 16  # the closest rows in the projection re-scored per row
CODE_SLACK = 0.01  # squared L2 that 8-bit codes may add to a projected distance
EPS = 1e-6  # float32 rounding: a copy's cosine with its original can read 0.99999994
RETRAIN_GROWTH = 4  # lists trained again (every row re-encoded) once the pool is 4x theirs
FORMAT = 1


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def near_pairs(vs: Any, threshold: float, k: int = K, seed: int = 0) -> np.ndarray:
    """(m, 2) row pairs (a < b) whose cosine similarity is >= `threshold` (each row's
    `k` closest such rows at most), searching every row: what `NearState` keeps for
    the rows searched so far. O(n·k) memory; see the module docstring for time."""
    state = NearState(threshold=float(threshold))
    _search(vs, state, np.arange(vs.n_rows, dtype=np.int64), k=k, seed=seed)
    return state.pairs


# -- the saved state ----------------------------------------------------------------


def _empty_pairs() -> np.ndarray:
    return np.zeros((0, 2), np.int64)


@dataclass
class NearState:
    """What the searches so far found, as saved in ``state/<encoder>.duplicates.npz``.

    `pairs` (m, 2) int64 with a < b and `sims` (m,) float32: every pair at cosine >=
    `threshold` (each row's `K` closest) of rows [0, n_rows) and of rows whose vectors
    changed since. `centroids` (nlist, p) and `assign` (n_rows,) are the IVF index's
    coarse centroids and each row's list, `code_ranges` its 8-bit codes' fitted ranges,
    `mean` and `projection` (d, p) the principal directions it searches in (all empty
    below FLAT_MAX rows).
    `exact_rows`/`exact_first`: rows in exact groups and each one's group (its first
    row), as of the catalog's ingest batches `exact_token`."""

    threshold: float = float("nan")
    n_rows: int = 0
    fingerprint: str = ""
    pairs: np.ndarray = field(default_factory=_empty_pairs)
    sims: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    assign: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    trained_rows: int = 0
    code_ranges: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    projection: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    exact_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exact_first: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exact_token: str = ""

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The pairs and exact groups (what `query` reads), without the index."""
        return {"format": np.asarray(FORMAT), "threshold": np.asarray(self.threshold),
                "n_rows": np.asarray(self.n_rows), "fingerprint": np.asarray(self.fingerprint),
                "pairs": self.pairs.astype(np.int64), "sims": self.sims.astype(np.float32),
                "exact_rows": self.exact_rows.astype(np.int64),
                "exact_first": self.exact_first.astype(np.int64),
                "exact_token": np.asarray(self.exact_token)}

    def index_arrays(self) -> dict[str, np.ndarray]:
        """What rebuilds the IVF index without training or reading old rows again:
        O(n · PROJECT_DIM) bytes of codes, kept in a file of their own."""
        return {"n_rows": np.asarray(self.n_rows), "centroids": self.centroids.astype(np.float32),
                "assign": self.assign.astype(np.int32),
                "trained_rows": np.asarray(self.trained_rows),
                "code_ranges": self.code_ranges.astype(np.float32),
                "mean": self.mean.astype(np.float32),
                "projection": self.projection.astype(np.float32),
                "codes": self.codes.astype(np.uint8)}

    @classmethod
    def from_arrays(cls, a: Any) -> NearState:
        if int(a["format"]) != FORMAT:
            raise ValueError(f"format {int(a['format'])}, not {FORMAT}")
        return cls(threshold=float(a["threshold"]), n_rows=int(a["n_rows"]),
                   fingerprint=str(a["fingerprint"]), pairs=np.asarray(a["pairs"], np.int64),
                   sims=np.asarray(a["sims"], np.float32),
                   exact_rows=np.asarray(a["exact_rows"], np.int64),
                   exact_first=np.asarray(a["exact_first"], np.int64),
                   exact_token=str(a["exact_token"]))

    def attach_index(self, a: Any) -> NearState:
        """Take the index arrays `a` when they were saved with the same rows searched
        (a command killed between the two files leaves them apart: the index is then
        trained again)."""
        if a is not None and int(a["n_rows"]) == self.n_rows:
            self.centroids = np.asarray(a["centroids"], np.float32)
            self.assign = np.asarray(a["assign"], np.int64)
            self.trained_rows = int(a["trained_rows"])
            self.code_ranges = np.asarray(a["code_ranges"], np.float32)
            self.mean = np.asarray(a["mean"], np.float32)
            self.projection = np.asarray(a["projection"], np.float32)
            self.codes = np.asarray(a["codes"], np.uint8)
        return self

    def near_at(self, threshold: float | None) -> np.ndarray:
        """The pairs at cosine >= `threshold` (none when it is None)."""
        if not threshold:
            return _empty_pairs()
        return self.pairs[self.sims >= threshold - EPS]


def _exact_token(store: Store) -> str:
    with store.reading() as uow:
        return uow.versions.samples_state()[2]


def _exact_groups(store: Store) -> list[list[int]]:
    with store.reading() as uow:
        return uow.duplicates.exact_groups()


def _load_arrays(store: Store, name: str, decode: Any) -> Any:
    from longtail.store.state_files import load_arrays

    return load_arrays(store.root, name, decode, what="duplicate groups")


def load(store: Store, vs: Any) -> NearState | None:
    """The saved pairs and exact groups of `vs`'s vector set (not the index), or None."""
    return _load_arrays(store, f"{vs.directory.name}.duplicates", NearState.from_arrays)


@dataclass(frozen=True)
class DuplicateSearch(Record):
    """What bringing the saved near-duplicate search up to date did: the threshold (None
    when off or `skipped`, with why), rows searched now, the pairs, groups and rows in
    groups it holds, whether the saved file changed, the seconds; `fresh` says why the
    search started over; `index` the search's index and its timings (flat or IVF, nlist,
    ...). `to_dict()` is flat, as the ingest, embed and round logs keep it."""

    OPTIONAL = ("skipped", "fresh")

    threshold: float | None
    searched: int
    pairs: int
    groups: int
    rows_in_groups: int
    updated: bool
    seconds: float
    skipped: str | None = None
    fresh: str | None = None
    index: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        return {**out.pop("index"), **out}


@dataclass(frozen=True)
class TwinExclusion(Record):
    """Candidates a round left out as duplicates of labeled samples: in all, as near
    pairs and as exact copies; `included` when the round kept them (asked to); the
    search brought up to date first. `to_dict()` is flat, as the round log keeps it."""

    excluded: int
    near: int = 0
    exact: int = 0
    included: bool = False
    search: DuplicateSearch | None = None
    perceptual: int = 0  # images left out as near-copies (dHash) of another (`one_image_per_group`)

    def to_dict(self) -> dict[str, Any]:
        if self.included:
            return {"excluded": 0, "included": True}
        search = self.search.to_dict() if self.search is not None else {}
        return {**search, "excluded": self.excluded, "near": self.near, "exact": self.exact,
                **({"perceptual": self.perceptual} if self.perceptual else {})}


def refresh(store: Store, settings: Settings, encoder: str | None = None, *,
            changed_rows: np.ndarray | None = None) -> DuplicateSearch:
    """Search the rows of `encoder`'s vectors (default: the project's) not searched yet,
    and `changed_rows` again, for near-duplicates; update the exact groups when an
    ingest changed the catalog; save the result. Returns what it did: rows searched,
    pairs and groups, seconds (the ingest's and embed's duplicates phase)."""
    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
    return _refresh(store, settings, vs, changed_rows)[1]


def up_to_date(store: Store, settings: Settings, vs: VectorSet,
               encode_pass: EncodePass | None = None) -> tuple[NearState, DuplicateSearch]:
    """The state of `vs`, brought up to date first when rows arrived since (an ingest
    without vectors then `embed` interrupted, a project made before this search)."""
    return _refresh(store, settings, vs, None, encode_pass)


def _refresh(store: Store, settings: Settings, vs: VectorSet, changed_rows: np.ndarray | None,
              encode_pass: EncodePass | None = None
             ) -> tuple[NearState, DuplicateSearch]:
    from longtail.store.state_files import save_state

    t0 = time.perf_counter()
    threshold = near_threshold(settings.near_duplicate_threshold)
    saved = load(store, vs)
    state = saved or NearState()
    searched, skipped, fresh, index = 0, None, None, {}
    dirty = False
    if threshold and vs.dim < MIN_DIM:
        skipped = (f"{vs.dim}-d vectors: below {MIN_DIM} dimensions a cosine of "
                   f"{threshold:g} joins neighbours, not copies")
        threshold = None
    if threshold:
        with store.reading() as uow:
            fp = views.vectors_fingerprint(uow, vs.directory.name)
        why = None if saved is not None else "no saved search"
        if saved is not None and not state.threshold <= threshold:
            why = f"the threshold went down to {threshold:g} from {state.threshold:g}"
        elif saved is not None and state.fingerprint != fp:
            why = "the vectors were made again"
        elif saved is not None and state.n_rows > vs.n_rows:
            why = "the vector set is shorter than the rows searched"
        if why is not None:
            state = NearState(threshold=threshold, fingerprint=fp,
                              exact_rows=state.exact_rows, exact_first=state.exact_first,
                              exact_token=state.exact_token)
            fresh = why
        todo = np.arange(state.n_rows, vs.n_rows, dtype=np.int64)
        if changed_rows is not None and len(changed_rows) and why is None:
            changed = np.unique(np.asarray(changed_rows, np.int64))
            changed = changed[changed < state.n_rows]
            if len(changed):
                gone = np.zeros(vs.n_rows, bool)
                gone[changed] = True
                keep = ~(gone[state.pairs[:, 0]] | gone[state.pairs[:, 1]])
                state.pairs, state.sims = state.pairs[keep], state.sims[keep]
                todo = np.concatenate([changed, todo])
        if len(todo):
            if why is None and vs.n_rows > FLAT_MAX:
                state.attach_index(_load_arrays(store, f"{vs.directory.name}.duplicates-index",
                                                lambda a: {k: a[k] for k in a.files}))
            index = _search(vs, state, todo, seed=settings.seed, encode_pass=encode_pass)
            index.pop("seconds", None)  # the whole step's seconds are the record's
            searched = len(todo)
            dirty = True
    token = _exact_token(store)
    if token != state.exact_token:
        groups = _exact_groups(store)
        state.exact_rows = np.array([r for g in groups for r in g], np.int64)
        state.exact_first = np.array([g[0] for g in groups for _ in g], np.int64)
        state.exact_token = token
        dirty = True
    if dirty:
        if len(state.codes):  # the index first: the main file's n_rows commits both
            save_state(store.root, f"{vs.directory.name}.duplicates-index",
                       state.index_arrays())
        save_state(store.root, f"{vs.directory.name}.duplicates", state.to_arrays())
    nodes, rep = groups_of(state, threshold)
    return state, DuplicateSearch(
        threshold=threshold if skipped is None else near_threshold(
            settings.near_duplicate_threshold),
        searched=int(searched), pairs=int(len(state.near_at(threshold))),
        groups=int(len(np.unique(rep))), rows_in_groups=int(len(nodes)), updated=dirty,
        seconds=round(time.perf_counter() - t0, 3), skipped=skipped, fresh=fresh, index=index)


# -- the search ---------------------------------------------------------------------


def _normalised(X: np.ndarray) -> np.ndarray:
    import faiss

    X = np.array(X, dtype=np.float32, order="C")  # a copy: the chunk may map a read-only file
    faiss.normalize_L2(X)
    return X


def _top_k(q: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """Mask keeping, for each value of `q`, the `k` entries of smallest `key`."""
    order = np.lexsort((key, q))
    ranks = np.empty(len(q), np.int64)
    sq = q[order]
    ranks[order] = np.arange(len(q)) - np.searchsorted(sq, sq, side="left")
    return ranks < k


def _search(vs: Any, state: NearState, todo: np.ndarray, *, k: int = K, seed: int = 0,
            encode_pass: EncodePass | None = None) -> dict:
    """Search rows `todo` among all `vs.n_rows` rows; add their pairs at cosine >=
    state.threshold (each row's `k` closest; `RESCORE` with the IVF index) to `state`
    and mark rows up to vs.n_rows searched. Returns the index used and timings."""
    t0 = time.perf_counter()
    todo = np.unique(todo)
    info: dict[str, Any] = {}
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if vs.n_rows <= FLAT_MAX:
        _search_flat(vs, state, todo, k, found)
        state.centroids = np.zeros((0, 0), np.float32)
        state.assign = np.zeros(0, np.int64)
        info["index"] = "flat"
    else:
        _search_ivf(vs, state, todo, seed, info, found, encode_pass)
    if found:
        pairs = np.concatenate([state.pairs, *[np.stack([a, b], 1) for a, b, _ in found]])
        sims = np.concatenate([state.sims, *[s for _, _, s in found]])
        key = pairs[:, 0] * np.int64(vs.n_rows) + pairs[:, 1]
        _, first = np.unique(key, return_index=True)
        state.pairs, state.sims = pairs[first], sims[first]
    state.n_rows = vs.n_rows
    info["seconds"] = round(time.perf_counter() - t0, 3)
    return info


def _keep_pairs(rows: np.ndarray, q: np.ndarray, b: np.ndarray, s: np.ndarray,
                threshold: float, k: int, found: list) -> None:
    """Append to `found` the pairs (rows[q], b) at cosine s >= threshold, each row's
    `k` closest (a clump of copies keeps O(n·k) pairs), as (low row, high row, sim)."""
    keep = (b != rows[q]) & (s >= threshold - EPS)
    q, b, s = q[keep], b[keep], s[keep]
    keep = _top_k(q, -s, k)
    a, b, s = rows[q[keep]], b[keep], s[keep]
    found.append((np.minimum(a, b), np.maximum(a, b), s.astype(np.float32)))


def _search_flat(vs: Any, state: NearState, todo: np.ndarray, k: int, found: list) -> None:
    """Exact: every row of `todo` against every row (a flat inner-product index)."""
    import faiss

    index = faiss.IndexFlatIP(vs.dim)
    for _, X in vs.iter_chunks():
        index.add(_normalised(X))
    for rows, X in vs.iter_chunks(rows=todo, chunk_rows=CHUNK):
        # Every row within the threshold, not a fixed number of neighbours: a sample is
        # excluded for being a twin of a labeled one, so each pair must be found directly.
        lims, s, b = index.range_search(_normalised(X), state.threshold - EPS)
        q = np.repeat(np.arange(len(rows)), np.diff(lims.astype(np.int64)))
        _keep_pairs(rows, q, b, s, state.threshold, k, found)


def _sample(vs: Any, size: int, seed: int) -> np.ndarray:
    """About `size` normalised rows of `vs`, every k-th row from a seeded offset: a
    sequential read of the chunk files (random rows would fault in a page each)."""
    step = max(1, vs.n_rows // max(size, 1))
    start = int(np.random.default_rng(seed).integers(step))
    return _normalised(vs.read(np.arange(start, vs.n_rows, step, dtype=np.int64)[:size]))


def _project(Xn: np.ndarray, state: NearState | ListEncoder) -> np.ndarray:
    return np.ascontiguousarray((Xn - state.mean) @ state.projection, dtype=np.float32)


def _fit_projection(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (d, p) basis): the top `PROJECT_DIM` principal directions of `sample`,
    the directions in which rows differ most. O(s·d²) for s sample rows."""
    mean = sample.mean(axis=0)
    centred = sample - mean
    _, vecs = np.linalg.eigh(centred.T @ centred)
    p = min(PROJECT_DIM, sample.shape[1])
    return mean.astype(np.float32), np.ascontiguousarray(vecs[:, ::-1][:, :p], dtype=np.float32)


def _train_ivf(vs: Any, state: NearState, want: int, seed: int) -> None:
    """Fit the projection, the coarse centroids (k-means) and the codes' ranges on a
    sample of `vs`; every row is assigned again afterwards."""
    import faiss

    sample = _sample(vs, 16 * want, seed)
    state.mean, state.projection = _fit_projection(sample)
    z = _project(sample, state)
    # A few iterations do: the lists only need to keep twins together.
    km = faiss.Kmeans(z.shape[1], want, niter=3, seed=seed, max_points_per_centroid=16,
                      min_points_per_centroid=8, verbose=False)
    km.train(z)
    state.centroids = km.centroids.astype(np.float32)
    state.assign = np.zeros(0, np.int64)
    state.trained_rows = vs.n_rows
    sq = faiss.ScalarQuantizer(z.shape[1], faiss.ScalarQuantizer.QT_8bit)
    sq.train(z)
    state.code_ranges = faiss.vector_to_array(sq.trained).astype(np.float32)


@dataclass
class ListEncoder:
    """What encoding a row needs, as plain arrays (so a Ray worker gets a copy): the
    projection (`mean`, `projection`), the IVF lists' `centroids` and the codes'
    `code_ranges`. `encode(X)` gives rows' `NPROBE` closest lists and 8-bit codes."""

    mean: np.ndarray
    projection: np.ndarray
    centroids: np.ndarray
    code_ranges: np.ndarray

    @classmethod
    def of(cls, state: NearState) -> ListEncoder:
        return cls(state.mean, state.projection, state.centroids, state.code_ranges)

    def encode(self, X: np.ndarray, pool: ThreadPoolExecutor | None = None,
               threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(NPROBE closest lists (m, NPROBE) int64, codes (m, p) uint8) of rows X; with
        a `pool`, the list search runs on `threads` pieces."""
        import faiss
        from threadpoolctl import threadpool_limits

        p = self.projection.shape[1]
        quantizer = faiss.IndexFlatL2(p)
        quantizer.add(self.centroids)
        sq = faiss.ScalarQuantizer(p, faiss.ScalarQuantizer.QT_8bit)
        faiss.copy_array_to_vector(self.code_ranges, sq.trained)
        z = _project(_normalised(X), self)
        # The closest lists on threads of our own, one OpenMP thread each: faiss's own
        # pool spin-waits, 2x slower on a loaded 2-core machine.
        pieces = [np.ascontiguousarray(z[r]) for r in np.array_split(np.arange(len(z)), threads)]
        with threadpool_limits(1):
            found = (pool.map(lambda zz: quantizer.search(zz, NPROBE)[1], pieces) if pool
                     else [quantizer.search(zz, NPROBE)[1] for zz in pieces])
            pr = np.concatenate(list(found))
        return pr.astype(np.int64, copy=False), sq.compute_codes(z)


#: An encoding pass: (vectors, sorted rows, encoder) -> (rows, lists, codes) per block,
#: in any order. The local one reads chunks here; `--engine ray` hands one in.
EncodePass = Callable[[Any, np.ndarray, ListEncoder],
                      Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]


def encode_pass_for(engine: str) -> EncodePass | None:
    """The encoding pass of `engine`: None (this process) for "local", the Ray Data job
    for "ray" (Ray imported only then)."""
    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be one of local, ray, got {engine!r}")
    if engine == "local":
        return None
    from longtail.distributed.ray_engine import encode_lists

    return encode_lists


def _local_pass(pool: ThreadPoolExecutor, threads: int) -> EncodePass:
    def run(vs: Any, rows: np.ndarray, enc: ListEncoder
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for part, X in vs.iter_chunks(rows=rows) if len(rows) else ():
            yield (part, *enc.encode(X, pool, threads))
    return run


def _search_ivf(vs: Any, state: NearState, todo: np.ndarray, seed: int, info: dict,
                found: list, encode_pass: EncodePass | None = None) -> None:
    """An IVF partition (k-means lists) of every row of `vs` projected on its top
    principal directions, with 8-bit codes. Rows searched before come back from their
    saved lists and codes (no read, no training); the rest (new rows, rows an
    `--update` replaced, every row after training) are read in one chunked pass,
    encoded and assigned their `NPROBE` closest lists. Then, list by list, the rows of
    `todo` probing it are compared with the rows living in it in one matrix product of
    decoded codes (BLAS, not a scan per row): proposals are each row's `RESCORE`
    closest within the L2 radius that cosine >= t implies, scored exactly from the
    vectors, read in row order. Training (first, then each time the pool has grown
    4x, up to `NLIST` lists) encodes every row again. `encode_pass` runs the encoding
    elsewhere (the Ray engine); the join stays here."""
    from threadpoolctl import threadpool_limits

    n, n_old = vs.n_rows, state.n_rows
    # A centroid costs about twice a list member (both BLAS; the centroids' top-NPROBE
    # selection is the dearer part): nlist = 2·sqrt(n) evens the assignment and the join.
    want = int(min(NLIST, max(64, LISTS_PER_SQRT_N * np.sqrt(n)), n // 16))
    have = (len(state.centroids) > 0 and len(state.codes) == n_old
            and len(state.assign) == n_old)
    if not have or (len(state.centroids) < want
                    and n >= RETRAIN_GROWTH * state.trained_rows):
        t_train = time.perf_counter()
        # Small products again (a 384² eigenproblem, k-means on a sample): one thread
        # each; threaded, they took 0.2-2.7 s on a loaded 2-core machine.
        with threadpool_limits(1):
            _train_ivf(vs, state, want, seed)
        state.codes = np.zeros((0, state.projection.shape[1]), np.uint8)
        info.update({"trained": True, "train_seconds": round(time.perf_counter() - t_train, 3)})
    nlist, p = state.centroids.shape
    # faiss's 8-bit decode, in numpy (ScalarQuantizer.decode costs ~6 ms a call here).
    lo_, step_ = state.code_ranges[:p], state.code_ranges[p:] / np.float32(255.0)

    def decode(c: np.ndarray) -> np.ndarray:
        return (c.astype(np.float32) + np.float32(0.5)) * step_ + lo_

    # Unit vectors at cosine >= t are at most sqrt(2(1 - t)) apart, and so are their
    # projections (a projection never lengthens a difference): this radius loses no
    # pair to the projection. Distances here are squared.
    radius = 2.0 * (1.0 - state.threshold) + CODE_SLACK

    t0 = time.perf_counter()
    assign = np.full(n, -1, np.int64)
    codes = np.zeros((n, p), np.uint8)
    old = len(state.codes)  # rows whose list and code were saved (0 after training)
    assign[:old], codes[:old] = state.assign[:old], state.codes
    assign[todo] = -1
    encode = np.flatnonzero(assign < 0)  # sorted: new rows, changed rows, all after training
    probes = np.zeros((len(todo), NPROBE), np.int64)  # todo is sorted and inside `encode`
    threads = THREADS or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        run = encode_pass or _local_pass(pool, threads)
        for rows, pr, rows_codes in run(vs, encode, ListEncoder.of(state)):
            assign[rows], codes[rows] = pr[:, 0], rows_codes
            at = np.searchsorted(todo, rows)
            hit = (at < len(todo)) & (todo[np.minimum(at, len(todo) - 1)] == rows)
            probes[at[hit]] = pr[hit]
        t_pass = time.perf_counter()

        # The join: rows of each list (CSR by list) against the searched rows probing it.
        home = np.argsort(assign, kind="stable")
        home_at = np.searchsorted(assign[home], np.arange(nlist + 1))
        probe_list = probes.ravel()
        probe_q = np.argsort(probe_list, kind="stable")  # // NPROBE: the index into todo
        probe_at = np.searchsorted(probe_list[probe_q], np.arange(nlist + 1))
        h = (p + 1) // 2

        def join(lst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            members = home[home_at[lst]:home_at[lst + 1]]
            # Squared distances over the first `h` directions straight out of one product,
            # [q, |q|², 1]·[-2m, 1, |m|²]: a lower bound of the full distance, so the few
            # rows within the radius there are the only ones checked in all directions.
            M = decode(codes[members])
            m_lo = M[:, :h]
            m_aug = np.hstack([-2.0 * m_lo, np.ones((len(M), 1), np.float32),
                               np.einsum("ij,ij->i", m_lo, m_lo)[:, None]]).T.copy()
            qs = probe_q[probe_at[lst]:probe_at[lst + 1]] // NPROBE
            step = max(1, JOIN_CELLS // len(members))  # bounds the distance block's memory
            out_q, out_b, out_d = [], [], []
            for lo in range(0, len(qs), step):
                qq = qs[lo:lo + step]
                Q = decode(codes[todo[qq]])
                q_lo = Q[:, :h]
                d = np.hstack([q_lo, np.einsum("ij,ij->i", q_lo, q_lo)[:, None],
                               np.ones((len(Q), 1), np.float32)]) @ m_aug
                f = np.flatnonzero(d.ravel() <= radius)  # not a 2-d nonzero: 6x faster here
                i, j = np.divmod(f, len(members))
                rest = Q[i, h:] - M[j, h:]
                dist = d.ravel()[f] + np.einsum("ij,ij->i", rest, rest)
                keep = (dist <= radius) & (members[j] != todo[qq[i]])
                out_q.append(qq[i[keep]])
                out_b.append(members[j[keep]])
                out_d.append(dist[keep])
            return np.concatenate(out_q), np.concatenate(out_b), np.concatenate(out_d)

        lists = np.flatnonzero((np.diff(probe_at) > 0) & (np.diff(home_at) > 0)).tolist()
        # Small products: a BLAS thread pool costs more in wake-ups than it saves (13x
        # slower on a loaded 2-core machine); the lists go to threads instead (numpy lets
        # go of the GIL in the products), one BLAS thread each.
        with threadpool_limits(1, user_api="blas"):
            got = list(pool.map(join, lists))
    got_q, got_b, got_d = [g[0] for g in got], [g[1] for g in got], [g[2] for g in got]
    q = np.concatenate(got_q) if got_q else np.zeros(0, np.int64)
    b = np.concatenate(got_b) if got_b else np.zeros(0, np.int64)
    dist = np.concatenate(got_d) if got_d else np.zeros(0, np.float32)
    keep = _top_k(q, dist, RESCORE)
    q, b = q[keep], b[keep]
    t_join = time.perf_counter()
    if len(q):
        # Exact scores, every vector read once and in row order (not one proposal at
        # a time).
        need = np.unique(np.concatenate([todo[q], b]))
        Xn = _normalised(vs.read(need))
        s = np.einsum("ij,ij->i", Xn[np.searchsorted(need, todo[q])],
                      Xn[np.searchsorted(need, b)])
        _keep_pairs(todo, q, b, s, state.threshold, RESCORE, found)
    state.assign, state.codes = assign, codes
    info.update({"index": "ivf", "nlist": nlist, "nprobe": NPROBE, "projected_dim": p,
                 "encoded": int(len(encode)), "proposals": int(len(q)),
                 "pass_seconds": round(t_pass - t0, 3),
                 "join_seconds": round(t_join - t_pass, 3),
                 "rescore_seconds": round(time.perf_counter() - t_join, 3)})


# -- groups and the candidates they remove ------------------------------------------


def groups_of(state: NearState, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, group): every row in a near pair at `threshold` or an exact group, sorted,
    and the first row of its group (connected components of the pairs and the exact
    groups). O(rows in groups) time; nothing the size of the pool."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    exact = np.stack([state.exact_first, state.exact_rows], 1)
    edges = np.concatenate([state.near_at(threshold), exact])
    if len(edges) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    nodes, idx = np.unique(edges, return_inverse=True)
    idx = idx.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(idx), np.int8), (idx[:, 0], idx[:, 1])),
                       shape=(len(nodes), len(nodes)))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, comp, nodes)
    return nodes, first[comp]


def exclude_labeled_twins(store: Store, settings: Settings, vs: VectorSet,
                          candidates: np.ndarray, current: dict[int, str], *,
                          include: bool | None = None, encode_pass: EncodePass | None = None
                          ) -> tuple[np.ndarray, TwinExclusion]:
    """`candidates` (sorted) without the rows that duplicate a labeled sample, eval rows
    included: the same content (its exact group), or vectors at cosine >= the project's
    threshold with it (a near pair; not transitively: a chain of small steps can
    reach a different sample). Unless `include` (default: the project's
    `exclude_duplicates` setting, on). Returns (candidates, log for the round).
    O(candidates + pairs) with masks; the saved search is brought up to date first
    (its encoding pass by `encode_pass` when given: the Ray engine's)."""
    if include is None:
        include = not settings.exclude_duplicates
    if include:
        return candidates, TwinExclusion(excluded=0, included=True)
    state, log = up_to_date(store, settings, vs, encode_pass)
    threshold = None if log.skipped else near_threshold(settings.near_duplicate_threshold)
    pairs = state.near_at(threshold)
    if not current or len(candidates) == 0 or (len(pairs) == 0 and len(state.exact_rows) == 0):
        return candidates, TwinExclusion(excluded=0, search=log)
    labeled = np.fromiter(current, dtype=np.int64, count=len(current))
    top = int(max(candidates[-1], labeled.max(), pairs.max(initial=0),
                  state.exact_rows.max(initial=0))) + 1
    is_labeled = np.zeros(top, bool)
    is_labeled[labeled] = True
    near = np.zeros(top, bool)
    near[pairs[is_labeled[pairs[:, 0]], 1]] = True
    near[pairs[is_labeled[pairs[:, 1]], 0]] = True
    exact = np.zeros(top, bool)
    hit = np.unique(state.exact_first[is_labeled[state.exact_rows]])
    exact[state.exact_rows[np.isin(state.exact_first, hit)]] = True
    near_c, exact_c = near[candidates], exact[candidates]
    keep = ~(near_c | exact_c)
    return candidates[keep], TwinExclusion(excluded=int((~keep).sum()), near=int(near_c.sum()),
                                           exact=int(exact_c.sum()), search=log)


def one_image_per_group(store: Store, settings: Settings, vs: VectorSet,
                        candidates: np.ndarray, held: np.ndarray, log: TwinExclusion
                        ) -> tuple[np.ndarray, TwinExclusion]:
    """In an image pool, `candidates` less the near-copies a batch should not offer:
    images whose difference hashes are within `perceptual.QUERY_BITS` bits and whose
    vectors correlate at >= `perceptual.CONFIRM`, paired with a `held` (labeled or
    queued) image or with another offered one (`perceptual.one_per_group`). Nothing
    changes when the round includes duplicates (`log.included`). O(images) to read
    the hashes plus the bucket pairs and their vectors."""
    if log.included or settings.media_root is None or not len(candidates):
        return candidates, log
    from longtail.engine.perceptual import (
        QUERY_BITS,
        close_pairs,
        confirmed,
        hash_words,
        one_per_group,
    )

    rows, _, dh = _image_hashes(store)
    pos, words = hash_words(dh)
    pairs = rows[pos][close_pairs(words, QUERY_BITS)]
    pairs = np.unique(np.sort(pairs[(pairs < vs.n_rows).all(axis=1)], axis=1), axis=0)
    if not len(pairs):
        return candidates, log
    used, inv = np.unique(pairs, return_inverse=True)
    pairs = used[confirmed(inv.reshape(-1, 2), vs.read(used))]
    keep = one_per_group(candidates, pairs, held)
    dropped = int((~keep).sum())
    if not dropped:
        return candidates, log
    return candidates[keep], replace(log, excluded=log.excluded + dropped, perceptual=dropped)


# -- `longtail duplicates` ----------------------------------------------------------


@dataclass(frozen=True)
class DuplicateGroups(Record):
    """`longtail duplicates`: groups of exact and of near-duplicates, each a list of
    {id, label} (label None when unlabeled), at `threshold` on `encoder`'s vectors, where
    they came from (`source`: saved, searched now, ...) and their counts. In an image pool
    `exact` also holds the images with the same bytes (SHA-256) and `perceptual` the
    groups whose difference hashes (dHash) are within `hash_bits` bits."""

    threshold: float | None
    encoder: str | None
    source: str
    exact: list[list[dict[str, Any]]]
    near: list[list[dict[str, Any]]]
    counts: dict[str, int]
    perceptual: list[list[dict[str, Any]]] = field(default_factory=list)
    hash_bits: int | None = None


def _image_hashes(store: Store) -> tuple[np.ndarray, list[str | None], list[str | None]]:
    """(rows, sha256, dhash) of the samples whose metadata has a ``dhash`` (images),
    read chunk by chunk."""
    rows: list[int] = []
    sha: list[str | None] = []
    dh: list[str | None] = []
    with store.reading() as uow:
        for chunk in uow.samples.iter(None, 0, 4096):
            for row, _, _, meta in chunk:
                if isinstance(meta, dict) and "dhash" in meta:
                    rows.append(row)
                    sha.append(meta.get("sha256"))
                    dh.append(meta.get("dhash"))
    return np.asarray(rows, np.int64), sha, dh


def image_groups(store: Store, bits: int | None
                 ) -> tuple[list[list[int]], list[list[int]], int]:
    """(groups of images with the same bytes, groups whose dHashes are within `bits`
    bits (none when `bits` is None), the number of images), as sorted rows. O(images) plus the bucket pairs
    (`longtail.engine.perceptual`)."""
    from longtail.engine.perceptual import close_pairs, hash_words

    rows, sha, dh = _image_hashes(store)
    same: dict[str, list[int]] = {}
    for r, h in zip(rows.tolist(), sha, strict=True):
        if h:
            same.setdefault(h, []).append(r)
    exact = sorted((g for g in same.values() if len(g) > 1), key=lambda g: g[0])
    if bits is None or not len(rows):
        return exact, [], len(rows)
    pos, words = hash_words(dh)
    pairs = close_pairs(words, bits)
    return exact, _components(rows[pos][pairs]) if len(pairs) else [], len(rows)


def _merge(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    """The groups of `a` and `b` joined where they share a row."""
    edges = [(g[0], r) for g in a + b for r in g[1:]]
    return _components(np.asarray(edges, np.int64).reshape(-1, 2))


def duplicates(store: Store, settings: Settings, *, threshold: float | None = None,
               encoder: str | None = None, near: bool = True, k: int = K,
               hash_bits: int | None = None, engine: str = "local") -> DuplicateGroups:
    """Groups of exact duplicates (same content hash; for images, the same bytes) and of
    near-duplicates (cosine >= `threshold`, default the project's
    `near_duplicate_threshold`, on `encoder`'s vectors), each as sample ids with their
    current label (None when unlabeled). Reads the groups saved at ingest/embed when
    they cover the pool at that threshold; otherwise searches now (nothing saved). In
    an image pool, also the perceptual groups: dHashes within `hash_bits` bits (default
    `perceptual.DEFAULT_BITS`; none with `near` off). `engine` "ray" runs a search the
    saved one lacks (rows a bulk ingest left to later) with its encoding pass on Ray."""
    from longtail.engine.perceptual import DEFAULT_BITS, MAX_BITS

    encode_pass = encode_pass_for(engine)

    if threshold is None:
        threshold = near_threshold(settings.near_duplicate_threshold) or 0.98
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"--threshold must be in (0, 1], got {threshold:g}")
    if hash_bits is None:
        hash_bits = DEFAULT_BITS
    if not 0 <= hash_bits <= MAX_BITS:
        raise InputError(f"--hash-bits must be in 0..{MAX_BITS}, got {hash_bits}")
    with store.reading() as uow:
        current_labels = uow.labels.current()
    exact = _exact_groups(store)
    same_bytes, perceptual, n_images = image_groups(store, hash_bits if near else None)
    if same_bytes:
        exact = _merge(exact, same_bytes)
    groups_near: list[list[int]] = []
    name, source = None, None
    if near and (encoder or settings.encoder):
        with store.reading() as uow:
            vs = views.vectors(uow, settings, encoder, complete=False)
            made = views.vectors_fingerprint(uow, vs.directory.name)
        name = vs.directory.name
        saved = load(store, vs)
        project = near_threshold(settings.near_duplicate_threshold)
        if (saved is not None and saved.n_rows == vs.n_rows and saved.threshold <= threshold
                and saved.fingerprint == made and k == K):
            pairs, source = saved.near_at(threshold), "saved"
        elif project is not None and project <= threshold and k == K and vs.dim >= MIN_DIM:
            # Behind (a bulk ingest left the search to later): search the rows not
            # searched yet, save, and answer from the saved pairs.
            state, _ = up_to_date(store, settings, vs, encode_pass)
            pairs, source = state.near_at(threshold), "saved, brought up to date"
        else:
            pairs, source = near_pairs(vs, threshold, k=k, seed=settings.seed), "searched now"
        groups_near = _components(pairs)
    ids = _ids(store, sorted({r for g in exact + groups_near + perceptual for r in g}))

    def show(g: list[int]) -> list[dict]:
        return [{"id": ids[r], "label": current_labels.get(r)} for r in g]

    images = near and n_images > 0
    return DuplicateGroups(
        threshold=threshold, encoder=name, source=source, exact=[show(g) for g in exact],
        near=[show(g) for g in groups_near],
        counts={"exact_groups": len(exact), "near_groups": len(groups_near),
                "near_rows": sum(len(g) for g in groups_near),
                "near_with_labeled": sum(any(r in current_labels for r in g)
                                         for g in groups_near),
                **({"perceptual_groups": len(perceptual),
                    "perceptual_rows": sum(len(g) for g in perceptual)} if images else {})},
        perceptual=[show(g) for g in perceptual], hash_bits=hash_bits if images else None)



def _components(pairs: np.ndarray) -> list[list[int]]:
    """Groups (sorted rows, by first row) joined by `pairs`."""
    if len(pairs) == 0:
        return []
    nodes = np.unique(pairs)
    parent = np.arange(len(nodes))
    for a, b in np.searchsorted(nodes, pairs).tolist():
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i, r in enumerate(nodes.tolist()):
        members.setdefault(_find(parent, i), []).append(r)
    return sorted(members.values(), key=lambda g: g[0])


def _ids(store: Store, rows: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    if rows:
        with store.reading() as uow:
            for chunk in uow.samples.iter(np.array(rows, dtype=np.int64)):
                out.update({row: ext for row, ext, _, _ in chunk})
    return out
