"""Discovery use cases: the pool's signals (prediction, confidence, energy, novelty),
failure slices, and the discovery queue that `query` takes its first rows from.

The queue is one project setting (``discovery_queue``: rows with the source that queued
them and a priority), so queueing is one transaction with nothing new on disk; rows that
were labeled or put in a round since are dropped whenever it is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError
from longtail.store import Store, UnitOfWork

if TYPE_CHECKING:
    from longtail.discovery.slices import Slice, SliceExample
    from longtail.engine.search import SearchResult

QUEUE_KEY = "discovery_queue"
KNN_K = 5
NOVELTY_SAMPLE = 1_000  # pool rows sampled for the pool's density (at least the labeled)
MAX_METADATA_VALUES = 50  # a metadata column with more distinct values is not a slice
METADATA_SCAN = 200_000  # metadata slices read at most this many pool rows (seeded sample)


@dataclass
class PoolSignals:
    """Per pool row (``rows``, sorted): what the latest model says and how far each row
    is from the labeled set. ``predicted``/``confidence``/``energy`` are None before a
    model; ``eval_*``: the labeled eval rows, the model's prediction and whether right."""

    rows: np.ndarray
    labeled: np.ndarray  # bool per row: has a current label
    labels: dict[int, str]
    predicted: np.ndarray | None = None
    confidence: np.ndarray | None = None
    energy: np.ndarray | None = None
    distance: np.ndarray | None = None  # kNN distance to the labeled / to a pool sample
    novelty: np.ndarray | None = None  # the distance's percentile among labeled rows'
    eval_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    eval_true: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    eval_pred: np.ndarray | None = None
    eval_confidence: np.ndarray | None = None
    eval_vectors: np.ndarray | None = None
    model_id: int | None = None
    classes: list[str] = field(default_factory=list)
    encoder: str = ""


def pool_signals(store: Store, settings: Settings, *, encoder: str | None = None,
                 novelty: bool = True) -> PoolSignals:
    """One streamed pass over the pool: the latest model's prediction, confidence and
    energy for every pool row, and each row's kNN distance to the labeled pool rows.
    O(n·(C + L)·d) time for L labeled rows, O(n) memory; no n×n matrix."""
    from longtail.discovery import signals as sig
    from longtail.learners.persist import load

    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
    with store.unit_of_work() as uow:
        labels = uow.labels.current()
        pool = uow.samples.rows_by_split("pool")
        eval_rows = uow.samples.rows_by_split("eval")
        meta = uow.models.latest()
        arrays = uow.models.arrays(meta) if meta and meta["encoder"] == vs.directory.name \
            else None
    pool = pool[pool < vs.n_rows]
    eval_rows = eval_rows[eval_rows < vs.n_rows]
    labeled = np.fromiter((int(r) in labels for r in pool), dtype=bool, count=len(pool))
    out = PoolSignals(rows=pool, labeled=labeled, labels=labels, encoder=vs.directory.name)
    model = None
    if arrays is not None:
        arrays.pop("__spec__", None)
        model = load(arrays, predict_only=True)
        out.model_id = int(meta["id"])
        out.classes = [str(c) for c in model.classes_]
    lab_rows = pool[labeled]
    scorer = NoveltyScorer(vs, pool, lab_rows, settings.seed) if novelty and len(lab_rows) \
        else None
    pred = np.empty(len(pool), dtype=np.int32)
    conf = np.empty(len(pool), dtype=np.float32)
    en = np.empty(len(pool), dtype=np.float32)
    dist = np.empty(len(pool), dtype=np.float32)
    pos = 0
    for piece, X in vs.iter_chunks(pool):
        n = len(piece)
        if model is not None:
            P = model.predict_proba(X)
            pred[pos:pos + n] = P.argmax(axis=1)
            conf[pos:pos + n] = sig.max_prob(P)
            z = sig.logits(model, X)
            en[pos:pos + n] = sig.energy(z) if z is not None else -np.log(conf[pos:pos + n])
        if scorer is not None:
            dist[pos:pos + n] = scorer.distance(X)
        pos += n
    if model is not None:
        out.predicted = np.asarray(out.classes, dtype=object)[pred]
        out.confidence, out.energy = conf, en
    if scorer is not None:
        out.distance = dist
        out.novelty = scorer.percentile(dist)
    ev = np.asarray([r for r in eval_rows.tolist() if r in labels], dtype=np.int64)
    out.eval_rows = ev
    out.eval_true = np.asarray([labels[int(r)] for r in ev], dtype=object)
    if len(ev):
        out.eval_vectors = vs.read(ev)
    if model is not None and len(ev):
        P = model.predict_proba(out.eval_vectors)
        out.eval_pred = np.asarray(out.classes, dtype=object)[P.argmax(axis=1)]
        out.eval_confidence = sig.max_prob(P)
    return out


class NoveltyScorer:
    """Novelty against the labeled set: a row's mean cosine distance to its KNN_K
    nearest labeled pool rows over its distance to as many nearest rows of a uniform
    pool sample (as large as the labeled set, at least NOVELTY_SAMPLE), so a dense
    region nobody labeled stands out and a sparse region of the pool does not; as a
    percentile of the labeled rows' own (leave-one-out) values. Chosen over the plain
    kNN distance, the energy and their rank averages on four held-out classes of
    Banking77 and of Fashion-MNIST (the novelty benchmark's data, so the benchmark is
    not an independent check of that choice)."""

    def __init__(self, vs: Any, pool: np.ndarray, labeled_rows: np.ndarray, seed: int):
        from longtail.discovery import signals as sig

        rng = np.random.default_rng([seed, 30])
        take = rng.choice(len(pool), min(len(pool), max(len(labeled_rows), NOVELTY_SAMPLE)),
                          replace=False)
        self.ref = vs.read(np.sort(labeled_rows))
        self.sample = vs.read(np.sort(pool[take]))
        self.own = np.sort(sig.relative_distance(
            sig.knn_distance(self.ref, self.ref, KNN_K, exclude_self=True),
            sig.knn_distance(self.ref, self.sample, KNN_K, skip_zero=True)))

    def distance(self, X: np.ndarray) -> np.ndarray:
        """The relative distance of rows X (n, d). O(n·(L + S)·d)."""
        from longtail.discovery import signals as sig

        return sig.relative_distance(sig.knn_distance(X, self.ref, KNN_K),
                                     sig.knn_distance(X, self.sample, KNN_K, skip_zero=True))

    def percentile(self, distance: np.ndarray) -> np.ndarray:
        from longtail.discovery import signals as sig

        return sig.novelty_score(distance, self.own)


# --------------------------------------------------------------------------- slices


def _cluster_codes(store: Store, settings: Settings, sig: PoolSignals, vs: Any
                   ) -> tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Cluster of each pool row (and eval row): the saved clustering with the most
    clusters up to 64 (the strategies' pool index), else a k-means made now. Returns the
    clustering's name, pool codes, eval codes and the centroids."""
    import faiss

    from longtail.store.state_files import load_state
    from longtail.strategies._pool import kmeans
    from longtail.strategies.state import from_arrays

    state = load_state(store.root, vs.directory.name, from_arrays) or {}
    saved = state.get("longtail.strategies") or {}
    found = [(k, v) for k, v in saved.items()
             if type(v).__name__ == "Clusters" and len(v.centroids) <= 64]
    centroids = None
    name = ""
    if found:
        name, cl = max(found, key=lambda kv: len(kv[1].centroids))
        centroids = np.asarray(cl.centroids, dtype=np.float32)
    if centroids is None or centroids.shape[1] != vs.dim:
        k = int(np.clip(round(np.sqrt(len(sig.rows) / 4)), 2, 32))
        rng = np.random.default_rng(settings.seed)
        take = np.sort(rng.choice(len(sig.rows), min(len(sig.rows), 64 * k), replace=False))
        centroids = kmeans(vs.read(sig.rows[take]), k, settings.seed)
        name = f"kmeans_{len(centroids)} (made now: no saved clustering)"
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    codes = np.empty(len(sig.rows), dtype=np.int64)
    pos = 0
    for piece, X in vs.iter_chunks(sig.rows):
        codes[pos:pos + len(piece)] = index.search(np.ascontiguousarray(X), 1)[1][:, 0]
        pos += len(piece)
    ev = index.search(np.ascontiguousarray(sig.eval_vectors), 1)[1][:, 0] \
        if sig.eval_vectors is not None else None
    return name, codes, ev, centroids


def _metadata_codes(store: Store, sig: PoolSignals, seed: int
                    ) -> list[tuple[str, np.ndarray, np.ndarray, list]]:
    """(column, pool row positions read, their value codes, values) for each metadata
    column with at most MAX_METADATA_VALUES distinct values, over at most METADATA_SCAN
    pool rows and every labeled eval row."""
    n = len(sig.rows)
    take = np.arange(n) if n <= METADATA_SCAN else np.sort(
        np.random.default_rng(seed).choice(n, METADATA_SCAN, replace=False))
    wanted = np.concatenate([sig.rows[take], sig.eval_rows])
    order = np.argsort(wanted, kind="stable")
    metas: list[dict] = [{}] * len(wanted)
    with store.unit_of_work() as uow:
        pos = 0
        for batch in uow.samples.iter(wanted[order], batch_rows=4096):
            for item in batch:
                metas[int(order[pos])] = item[3]
                pos += 1
    columns: dict[str, dict] = {}
    for m in metas:
        for k, v in m.items():
            if isinstance(v, (str, bool, int)) and not isinstance(v, float):
                seen = columns.setdefault(k, {})
                if len(seen) <= MAX_METADATA_VALUES:
                    seen.setdefault(str(v), len(seen))
    out = []
    for col, values in columns.items():
        if len(values) > MAX_METADATA_VALUES or len(values) < 2:
            continue
        codes = np.array([values.get(str(m.get(col)), -1) if col in m else -1 for m in metas],
                         dtype=np.int64)
        out.append((col, take, codes, list(values)))
    return out


@dataclass
class SliceReport(Record):
    """Failure slices ranked (``longtail.discovery.slices.Slice``, each with its
    ``examples``), how many were ranked, the pool's and labeled rows, the
    model, the eval rows labeled and their error, and notes (which clustering)."""

    slices: list[Slice]
    n_slices: int
    pool: int
    labeled: int
    model_id: int | None
    eval_labeled: int
    eval_error: float | None
    notes: list[str] = field(default_factory=list)


def slices(store: Store, settings: Settings, *, by: str = "all", limit: int = 20,
           examples: int = 5, encoder: str | None = None,
           sig: PoolSignals | None = None) -> SliceReport:
    """Failure slices: the pool's clusters and metadata values, each with its pool and
    labeled shares, mean confidence, and error (prediction-powered: the model's predicted
    error over the slice's pool rows, corrected by its labeled eval rows, with a 95%
    interval), ranked under-represented and struggling first (expected errors per label
    the slice has). `by`: "all", "cluster" or "metadata"."""
    from longtail.discovery.slices import rank_slices

    if by not in ("all", "cluster", "metadata"):
        raise InputError(f"--by must be all, cluster or metadata, got {by!r}")
    sig = sig or pool_signals(store, settings, encoder=encoder, novelty=False)
    if len(sig.rows) == 0:
        raise ProjectError("the pool is empty: ingest samples first")
    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
    correct = None
    if sig.eval_pred is not None:
        correct = (sig.eval_pred.astype(str) == sig.eval_true.astype(str))
    groups = []
    notes = []
    if by in ("all", "cluster"):
        name, codes, ev_codes, _ = _cluster_codes(store, settings, sig, vs)
        notes.append(f"clusters: {name}")
        groups.append(("cluster", np.arange(len(sig.rows)), codes, ev_codes,
                       [str(i) for i in range(int(codes.max()) + 1)]))
    if by in ("all", "metadata"):
        for col, take, codes, values in _metadata_codes(store, sig, settings.seed):
            n_take = len(take)
            groups.append((f"metadata:{col}", take, codes[:n_take], codes[n_take:], values))
    ranked = []
    for kind, take, codes, ev_codes, values in groups:
        ranked += rank_slices(
            kind, values, codes, sig.labeled[take],
            None if sig.confidence is None else sig.confidence[take],
            ev_codes, correct, None if sig.eval_confidence is None else sig.eval_confidence)
    ranked.sort(key=lambda s: (not s.flag, -s.priority))
    top = ranked[:limit] if limit else ranked
    for s in top:
        s.examples = _examples(store, sig, groups, s, examples)
    overall = None if correct is None else float(1 - correct.mean()) if len(correct) else None
    return SliceReport(slices=top, n_slices=len(ranked), pool=int(len(sig.rows)),
                       labeled=int(sig.labeled.sum()), model_id=sig.model_id,
                       eval_labeled=int(len(sig.eval_rows)), eval_error=overall, notes=notes)


def _members(groups: list, s: Slice) -> tuple[np.ndarray, Any]:
    for kind, take, codes, _, values in groups:
        if kind == s.kind:
            code = values.index(s.value)
            return take[codes == code], kind
    return np.zeros(0, np.int64), None


def _examples(store: Store, sig: PoolSignals, groups: list, s: Slice, k: int
              ) -> list[SliceExample]:
    """Up to k unlabeled members of the slice, least confident first (the ones worth
    labeling), with id, text and the model's guess."""
    from longtail.discovery.slices import SliceExample

    if k <= 0:
        return []
    pos, _ = _members(groups, s)
    pos = pos[~sig.labeled[pos]]
    if sig.confidence is not None:
        pos = pos[np.argsort(sig.confidence[pos], kind="stable")]
    pos = pos[:k]
    rows = sig.rows[pos]
    out = []
    with store.unit_of_work() as uow:
        by_row = {b[0]: b for batch in uow.samples.iter(rows) for b in batch}
    for p, r in zip(pos.tolist(), rows.tolist(), strict=True):
        b = by_row[r]
        out.append(SliceExample(
            row=r, id=b[1], text=(b[2] or "")[:200],
            predicted=None if sig.predicted is None else str(sig.predicted[p]),
            confidence=None if sig.confidence is None else round(float(sig.confidence[p]), 4)))
    return out


def slice_candidates(store: Store, settings: Settings, kind: str, value: str, n: int, *,
                     encoder: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The slice's unlabeled pool rows, least confident first (random order before a
    model), at most n, with their priorities (1 - confidence)."""
    sig = pool_signals(store, settings, encoder=encoder, novelty=False)
    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
    if kind == "cluster":
        _, codes, _, _ = _cluster_codes(store, settings, sig, vs)
        if not value.isdigit() or int(value) > int(codes.max()):
            raise InputError(f"no cluster {value!r}: clusters are 0..{int(codes.max())} "
                             "(see `longtail slices`)")
        pos = np.flatnonzero(codes == int(value))
    elif kind.startswith("metadata:"):
        col = kind.split(":", 1)[1]
        found = {c: (take, codes, values) for c, take, codes, values
                 in _metadata_codes(store, sig, settings.seed)}
        if col not in found:
            raise InputError(f"no metadata slice column {col!r} (columns: "
                             f"{', '.join(sorted(found)) or 'none'})")
        take, codes, values = found[col]
        if value not in values:
            raise InputError(f"no value {value!r} in metadata column {col!r} (values: "
                             f"{', '.join(values[:10])})")
        pos = take[codes[:len(take)] == values.index(value)]
    else:
        raise InputError(f"unknown slice kind {kind!r}: cluster:N or metadata:COLUMN=VALUE")
    pos = pos[~sig.labeled[pos]]
    if sig.confidence is not None:
        pos = pos[np.argsort(sig.confidence[pos], kind="stable")]
        prio = 1.0 - sig.confidence[pos]
    else:
        pos = np.random.default_rng(settings.seed).permutation(pos)
        prio = np.full(len(pos), 0.5, dtype=np.float32)
    return sig.rows[pos[:n]], prio[:n]


def parse_slice(text: str) -> tuple[str, str]:
    """'cluster:3' -> ("cluster", "3"); 'metadata:source=web' or 'source=web' ->
    ("metadata:source", "web")."""
    t = text.strip()
    if t.startswith("cluster:"):
        return "cluster", t.split(":", 1)[1]
    if t.startswith("metadata:"):
        t = t.split(":", 1)[1]
    if "=" in t:
        col, value = t.split("=", 1)
        return f"metadata:{col}", value
    raise InputError(f"slice {text!r}: write cluster:N or COLUMN=VALUE (see `longtail slices`)")


# --------------------------------------------------------------------------- the queue


@dataclass
class QueueItem(Record):
    """A row waiting in the discovery queue, the source that queued it (``slice:...``,
    ``search:...``, ``trigger:NAME``) and its priority."""

    row: int
    source: str
    priority: float


def read_queue(uow: UnitOfWork) -> list[QueueItem]:
    """The queued items (row, source, priority), highest priority first."""
    return [QueueItem(row=int(it["row"]), source=str(it["source"]),
                      priority=float(it["priority"]))
            for it in (uow.settings.get(QUEUE_KEY) or [])]


@dataclass
class Queued(Record):
    """What one enqueue did: rows newly queued, their source, the queue's length after."""

    queued: int
    source: str
    queue: int


def enqueue(store: Store, rows: np.ndarray, source: str, priority: np.ndarray | float = 1.0
            ) -> Queued:
    """Queue pool rows for the next round with their source (a slice, a search, a
    trigger's name); a row already queued keeps its higher priority. One transaction."""
    with store.unit_of_work() as uow:
        added, queue = enqueue_in(uow, rows, source, priority)
    return Queued(queued=added, source=source, queue=queue)


def enqueue_in(uow: UnitOfWork, rows: np.ndarray, source: str,
               priority: np.ndarray | float = 1.0) -> tuple[int, int]:
    """`enqueue` in the caller's unit of work: (rows newly queued, queue length)."""
    rows = np.asarray(rows, dtype=np.int64)
    prio = np.broadcast_to(np.asarray(priority, dtype=np.float64), rows.shape)
    labels = uow.labels.current()
    pool = set(uow.samples.rows_by_split("pool").tolist()) if len(rows) else set()
    bad = [int(r) for r in rows if int(r) not in pool]
    if bad:
        raise InputError(f"row(s) {bad[:5]} are not pool samples: only pool rows can be "
                         "queued (eval rows are labeled first anyway)")
    items = {it.row: it.to_dict() for it in read_queue(uow) if it.row not in labels}
    added = 0
    for r, p in zip(rows.tolist(), prio.tolist(), strict=True):
        if r in labels:
            continue
        old = items.get(r)
        if old is None:
            added += 1
        if old is None or p > old["priority"]:
            items[r] = {"row": r, "source": source, "priority": round(float(p), 6)}
    queue = sorted(items.values(), key=lambda it: (-it["priority"], it["row"]))
    uow.settings.set(QUEUE_KEY, queue)
    return added, len(queue)


@dataclass
class Taken(Record):
    """Queued rows a round takes (int64, highest priority first) and how many came from
    each source."""

    rows: np.ndarray
    sources: dict[str, int] = field(default_factory=dict)

    def log(self) -> dict[str, Any]:
        """The round log's entry: {} when nothing was taken."""
        return {"rows": int(len(self.rows)), "sources": self.sources} if len(self.rows) else {}


def take_queued(uow: UnitOfWork, candidates: np.ndarray, room: int) -> Taken:
    """Up to `room` queued rows that are still candidates, highest priority first, and
    how many from which sources. Reads only: the rows leave the queue by being put in
    the round (no longer candidates)."""
    if room <= 0:
        return Taken(np.zeros(0, np.int64))
    queue = read_queue(uow)
    if not queue:
        return Taken(np.zeros(0, np.int64))
    ok = set(candidates.tolist()) if len(queue) > 64 else None
    picked, sources = [], {}
    for it in queue:
        r = it.row
        if (r in ok) if ok is not None else bool(np.isin(r, candidates)):
            picked.append(r)
            sources[it.source] = sources.get(it.source, 0) + 1
            if len(picked) == room:
                break
    return Taken(np.asarray(picked, dtype=np.int64), sources)


def enqueue_hits(store: Store, found: SearchResult, priority: float | None = None
                 ) -> Queued:
    """Queue a search's unlabeled pool hits (priority: `priority`, else similarity)."""
    hits = [h for h in found.hits if h.split == "pool" and h.label is None]
    prio = np.array([priority if priority is not None else h.similarity for h in hits],
                    dtype=np.float64)
    return enqueue(store, np.array([h.row for h in hits], np.int64),
                   f"search:{found.query}", prio)


def enqueue_slice(store: Store, settings: Settings, slice: str, n: int, *,
                  encoder: str | None = None) -> Queued:
    """Queue a slice's `n` most useful unlabeled samples (least confident first)."""
    if n <= 0:
        raise InputError(f"the number of samples to queue must be positive, got {n}")
    kind, value = parse_slice(slice)
    rows, prio = slice_candidates(store, settings, kind, value, n, encoder=encoder)
    return enqueue(store, rows, f"slice:{slice}", prio)


# --------------------------------------------------------------------------- drift

DRIFT_NEW = 2_000  # new rows sampled
DRIFT_OLD = 20_000  # earlier rows sampled
DRIFT_SHARE = 0.2  # drifted: over 20% of new rows beyond the earlier rows' 95th percentile


@dataclass
class Drift(Record):
    """An ingest's drift: rows sampled, the new rows' median distance to their 5 nearest
    earlier rows and the earlier rows' own median, the share of new rows beyond the
    earlier rows' 95th percentile, and whether that is over DRIFT_SHARE."""

    new_rows_sampled: int
    earlier_rows_sampled: int
    median_distance: float
    earlier_median_distance: float
    beyond_p95: float
    drifted: bool


def ingest_drift(store: Store, settings: Settings, new_rows: np.ndarray) -> Drift | None:
    """How far an ingest's new rows lie from the rows before them: each sampled new
    row's mean cosine distance to its 5 nearest earlier rows, against the earlier rows'
    own (leave-one-out) distances; ``beyond_p95`` is the share of new rows farther than
    95% of earlier rows are from theirs (0.05 when nothing changed). None without
    vectors or without 50 earlier rows. O(s_new · s_old · d) on samples."""
    from longtail.discovery.signals import knn_distance

    new_rows = np.asarray(new_rows, np.int64)
    if not len(new_rows) or not settings.encoder:
        return None
    with store.reading() as uow:
        vs = views.vectors(uow, settings, complete=False)
    start = int(new_rows.min())
    new_rows = new_rows[new_rows < vs.n_rows]
    if start < 50 or not len(new_rows):
        return None
    rng = np.random.default_rng([settings.seed, start])
    old = np.sort(rng.choice(start, min(start, DRIFT_OLD), replace=False))
    new = np.sort(rng.choice(new_rows, min(len(new_rows), DRIFT_NEW), replace=False))
    ref = vs.read(old)
    own = knn_distance(ref, ref, KNN_K, exclude_self=True)
    dist = knn_distance(vs.read(new), ref, KNN_K)
    p95 = float(np.quantile(own, 0.95))
    beyond = float(np.mean(dist > p95))
    return Drift(new_rows_sampled=int(len(new)), earlier_rows_sampled=int(len(old)),
                 median_distance=round(float(np.median(dist)), 4),
                 earlier_median_distance=round(float(np.median(own)), 4),
                 beyond_p95=round(beyond, 4), drifted=bool(beyond > DRIFT_SHARE))
