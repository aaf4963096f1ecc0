"""The Ray engine: pool scoring, the near-duplicate search's encoding pass and embedding
as Ray Data jobs over the project's files.

Scoring (`query --engine ray`: the model's probabilities of every candidate, for `auto`
and every strategy that uses them) runs over the vector chunks; embedding (`embed --engine
ray`) over the samples' column files (texts and metadata, `longtail.store.columns`),
each worker rebuilding the encoder from the vector set's saved config and calling its
own `encode`; the driver writes the vectors and commits the row count. The
near-duplicate search (`query --engine ray`, when rows arrived since the last search)
encodes rows on Ray (each gets its IVF lists and codes from
`engine.duplicates.ListEncoder`); the join of the lists and the saved state stay on
the driver.

The only module that imports Ray. Workers read the memory-mapped vector chunk files by
row range (so they need the package and read access to the project's vector directory,
e.g. on a shared path) and call the engine's own pure functions: the saved model's
`predict_proba` and a strategy score from `longtail.strategies.scores`. They return
dense float columns; the driver gathers them in row order, and the selection (top-k)
and every catalog write stay on the driver.

Cluster: `LONGTAIL_RAY_ADDRESS` (e.g. `ray://head:10001` or `auto`), else a local Ray
with `LONGTAIL_RAY_CPUS` CPUs (default 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from longtail.errors import InputError

#: Scores a worker computes beside the probabilities (`score_pool(score=...)`).
RAY_SCORES = ("margin", "entropy", "least_confidence")
#: Rows per Ray Data block (one task reads one contiguous piece of the candidates).
PIECE_ROWS = 65_536
#: Actors in the pool that scores (each holds one copy of the model).
ACTORS = 2
#: Most rows per embedding block (the encoder's batch).
EMBED_PIECE_ROWS = 512


def scoring_strategies() -> list[str]:
    """The strategies whose pool scoring (the model's probabilities of every candidate)
    the Ray engine runs: `auto` and every strategy that needs probabilities. A committee
    (`bald`, `vote_entropy`, ...) is still computed on the driver."""
    from longtail.strategies import STRATEGIES

    return sorted(n for n, s in STRATEGIES.items() if n == "auto" or "probs" in s.needs)


def check_strategy(strategy: str) -> None:
    """InputError when `strategy` scores nothing the Ray engine could run (it uses no
    probabilities); an unknown name is left to the planner, which lists the valid ones."""
    from longtail.strategies import STRATEGIES

    if strategy in STRATEGIES and strategy not in scoring_strategies():
        raise InputError(f"--engine ray runs the pool scoring of the strategies "
                         f"{', '.join(scoring_strategies())}; {strategy!r} scores nothing "
                         "(use --engine local for it)")


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise InputError("--engine ray needs Ray: pip install 'longtail[ray]'") from exc
    return ray


def ensure_ray() -> Any:
    """Connect to `LONGTAIL_RAY_ADDRESS` or start a local Ray once per process."""
    ray = _ray()
    if not ray.is_initialized():
        address = os.environ.get("LONGTAIL_RAY_ADDRESS") or None
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=int(os.environ.get("LONGTAIL_RAY_CPUS", "2")),
                     include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def _score_fn(name: str | None) -> Callable[[np.ndarray], np.ndarray] | None:
    if name is None:
        return None
    from longtail.strategies import scores as S

    return {"margin": S.margin, "entropy": S.entropy,
            "least_confidence": S.least_confidence}[name]


class _Scorer:
    """Ray Data actor: opens the vector set once, keeps one copy of the model; each call
    scores the candidate pieces of its batch."""

    def __init__(self, model: Any, directory: str, dim: int, dtype: str, n_rows: int,
                 rows: Any, score: str | None):
        from pathlib import Path

        import ray

        from longtail.store.vectors import VectorSet

        # Large arguments travel as object refs (one copy per node, not per task).
        model, rows = (ray.get(x) if isinstance(x, ray.ObjectRef) else x for x in (model, rows))
        self.model = model
        self.vs = VectorSet(Path(directory), dim, dtype, n_rows)
        self.rows = rows  # the candidates (int64, sorted), shared through the object store
        self.score = _score_fn(score)
        # Which node ran a piece, as a number (a dense column, not a string): the driver
        # counts the nodes a job used.
        self.node = np.uint64(int(ray.get_runtime_context().get_node_id()[:16], 16))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pos, probs = [], []
        for start, stop in zip(batch["start"].tolist(), batch["stop"].tolist(), strict=True):
            for piece, X in self.vs.iter_chunks(self.rows[start:stop]):
                probs.append(np.asarray(self.model.predict_proba(X), dtype=np.float32))
                pos.append(np.arange(start, start + len(piece), dtype=np.int64))
                start += len(piece)
        p = np.concatenate(probs)
        out = {"pos": np.concatenate(pos), "probs": p,
               "node": np.full(len(p), self.node, np.uint64)}
        if self.score is not None:
            out["score"] = np.asarray(self.score(p), dtype=np.float64)
        return out


def _over_rows(actor: type, vectors: Any, rows: np.ndarray, piece_rows: int, actors: int,
               **shared: Any) -> Any:
    """The one Ray Data job shape of this engine: pieces of `piece_rows` of `rows` (a
    VectorSet's row numbers) mapped by a pool of `actors` instances of `actor`, each
    opening the vector set and getting `shared` (through the object store, once per
    node); yields the finished blocks (numpy columns), in no particular order."""
    ray = ensure_ray()
    items = [{"start": s, "stop": min(s + piece_rows, len(rows))}
             for s in range(0, len(rows), piece_rows)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        actor, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={
            # objects (a model, an encoder) by reference; names (a score) as they are
            **{k: v if v is None or isinstance(v, str) else ray.put(v)
               for k, v in shared.items()},
            "directory": str(vectors.directory), "dim": int(vectors.dim),
            "dtype": str(vectors.dtype), "n_rows": int(vectors.n_rows),
            "rows": ray.put(rows)},
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(items)))))
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


class PoolScores(NamedTuple):
    """What a scoring job returns: the probabilities, the score per row (or None), and
    how many Ray nodes ran its pieces."""

    probs: np.ndarray
    scores: np.ndarray | None
    nodes: int


def score_pool(model: Any, vectors: Any, rows: np.ndarray, *, score: str | None = None,
               actors: int | None = None, piece_rows: int | None = None) -> PoolScores:
    """Class probabilities (len(rows), C) float32 of `model` for `rows` of a VectorSet,
    with `score` (a name in RAY_SCORES) that score per row (float64), and the number of
    nodes that ran the job; computed by a pool of `actors` Ray actors (default ACTORS)
    over pieces of `piece_rows` rows (default PIECE_ROWS); in `rows` order.
    Driver memory: O(len(rows)·C) for the result."""
    rows = np.asarray(rows, dtype=np.int64)
    actors, piece_rows = actors or ACTORS, piece_rows or PIECE_ROWS
    n_classes = len(model.classes_)
    probs = np.empty((len(rows), n_classes), np.float32)
    scores = np.empty(len(rows), np.float64) if score is not None else None
    if len(rows) == 0:
        return PoolScores(probs, scores, 0)
    if score is not None and score not in RAY_SCORES:
        raise InputError(f"score must be one of {', '.join(RAY_SCORES)}, got {score!r}")
    seen, nodes = 0, set()
    for batch in _over_rows(_Scorer, vectors, rows, piece_rows, actors,
                            model=model, score=score):
        pos = batch["pos"]
        nodes.update(np.unique(batch["node"]).tolist())
        probs[pos] = batch["probs"]
        if scores is not None:
            scores[pos] = batch["score"]
        seen += len(pos)
    if seen != len(rows):
        raise RuntimeError(f"the Ray job scored {seen} of {len(rows)} rows")
    return PoolScores(probs, scores, len(nodes))


class _ListEncoderActor:
    """Ray Data actor for the near-duplicate search's encoding pass: opens the vector set
    once; each call reads its pieces of the rows and gives their IVF lists and codes
    (`engine.duplicates.ListEncoder.encode`, the local engine's own function)."""

    def __init__(self, encoder: Any, directory: str, dim: int, dtype: str, n_rows: int,
                 rows: Any):
        from pathlib import Path

        import ray

        from longtail.store.vectors import VectorSet

        encoder, rows = (ray.get(x) if isinstance(x, ray.ObjectRef) else x
                         for x in (encoder, rows))
        self.encoder, self.rows = encoder, rows
        self.vs = VectorSet(Path(directory), dim, dtype, n_rows)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, lists, codes = [], [], []
        for start, stop in zip(batch["start"].tolist(), batch["stop"].tolist(), strict=True):
            for part, X in self.vs.iter_chunks(self.rows[start:stop]):
                pr, c = self.encoder.encode(X)
                rows.append(np.asarray(part, np.int64))
                lists.append(pr)
                codes.append(c)
        return {"row": np.concatenate(rows), "lists": np.concatenate(lists),
                "codes": np.concatenate(codes)}


def encode_lists(vectors: Any, rows: np.ndarray, encoder: Any, *, actors: int | None = None,
                 piece_rows: int | None = None) -> Any:
    """The near-duplicate search's encoding pass (`engine.duplicates.EncodePass`) as a
    Ray Data job: for `rows` (sorted) of a VectorSet, yields (rows, NPROBE closest lists,
    8-bit codes) per finished block, in no particular order; the join stays on the
    driver. Driver memory: O(piece_rows·(NPROBE + p)) per block in flight."""
    rows = np.asarray(rows, dtype=np.int64)
    piece_rows = piece_rows or PIECE_ROWS
    if len(rows) == 0:
        return
    for batch in _over_rows(_ListEncoderActor, vectors, rows, piece_rows, actors or ACTORS,
                            encoder=encoder):
        yield batch["row"], batch["lists"], batch["codes"]


class _Embedder:
    """Ray Data actor: rebuilds the encoder once from its saved config and opens the
    project's column files; each call encodes the texts and metadata of its pieces."""

    def __init__(self, root: str, encoder: str, config: dict, where: Any):
        from pathlib import Path

        import ray

        from longtail.encoders import get_encoder
        from longtail.store.columns import ColumnReader

        self.batch_ids, self.pos = ray.get(where) if isinstance(where, ray.ObjectRef) else where
        self.enc = get_encoder(encoder, **config)
        self.reader = ColumnReader(Path(root))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import json

        offsets, vectors = [], []
        for start, stop in zip(batch["start"].tolist(), batch["stop"].tolist(), strict=True):
            texts, metas = self.reader.read(self.batch_ids[start:stop], self.pos[start:stop])
            vecs = self.enc.encode({"text": [t or "" for t in texts],
                                    "metadata": [json.loads(m) if m else {} for m in metas]})
            vectors.append(np.asarray(vecs, dtype=np.float32))
            offsets.append(np.arange(start, stop, dtype=np.int64))
        return {"offset": np.concatenate(offsets), "vector": np.concatenate(vectors)}


def embed_rows(root: Any, encoder: str, config: dict, batch_ids: np.ndarray, pos: np.ndarray,
               *, actors: int | None = None, piece_rows: int | None = None) -> Any:
    """Vectors of the samples at (`batch_ids`, `pos`) (the column files' addresses of the
    rows to embed, in row order) by encoder `encoder` rebuilt from `config`, computed by a
    pool of `actors` Ray actors over pieces of `piece_rows` rows (at most
    EMBED_PIECE_ROWS). Yields (offsets into
    the given rows, float32 vectors) per finished block, in no particular order.
    Driver memory: O(piece_rows·dim) per block in flight."""
    batch_ids = np.asarray(batch_ids, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    piece_rows = min(piece_rows or EMBED_PIECE_ROWS, EMBED_PIECE_ROWS)
    n = len(pos)
    if n == 0:
        return
    ray = ensure_ray()
    items = [{"start": s, "stop": min(s + piece_rows, n)} for s in range(0, n, piece_rows)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(
        _Embedder, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={"root": str(root), "encoder": encoder, "config": dict(config),
                               "where": ray.put((batch_ids, pos))},
        compute=ray.data.ActorPoolStrategy(size=max(1, min(actors or ACTORS, len(items)))))
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield batch["offset"], batch["vector"]
