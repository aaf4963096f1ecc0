"""The similarity search use case: by sample ids, free text (the project's encoder) or a
vector, over the project's rows, with filters on split, label state and metadata.

Up to EXACT_MAX rows (or when the filters leave few rows) the search is exact, streamed;
beyond, an IVF index (``longtail.discovery.search.Index``) kept in
``state/<encoder>.search-index.npz``, built on first use, extended with rows appended
since, rebuilt when the vectors were made again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store

if TYPE_CHECKING:
    from longtail.discovery.search import Index

EXACT_MAX = 50_000  # rows up to which every search is exact
FEW_ALLOWED = 0.05  # filters leaving under this share of rows: search those exactly
META_GROW = 8  # with a metadata filter, ask the index for k·8, then k·64, ... rows
_CACHE: dict[tuple, Any] = {}  # the last index loaded, by its file's path, size, mtime


def _fingerprint(store: Store, vs: Any) -> str:
    import hashlib
    import json

    with store.reading() as uow:
        info = uow.vectors.info(vs.directory.name) or {}
    made = json.dumps([info.get("dim"), info.get("dtype"), info.get("config")], sort_keys=True,
                      default=str)
    return hashlib.sha256(made.encode()).hexdigest()[:16]


REPACK = 0.1  # rows appended since the pack over this share of the pack: pack again


@dataclass
class LoadedIndex:
    """The vector set's IVF index, up to date, and what loading it did (``log``: kind,
    built / added / packed, nlist, index_seconds)."""

    index: Index
    log: dict[str, Any]


@dataclass
class SearchHit(Record):
    """One sample found: its row, id, text (first 200 characters), cosine similarity to
    the query, split, current label (None: unlabeled) and metadata."""

    row: int
    id: str
    text: str
    similarity: float
    split: str
    label: str | None
    metadata: dict[str, Any] | None = None


@dataclass
class SearchResult(Record):
    """The hits best first; ``index``: how the search answered (kind "exact" or "ivf",
    and for the index nlist, nprobe, packed rows, seconds spent loading); ``enqueued``:
    what was queued when asked (left out of ``to_dict`` while None)."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("enqueued",)

    query: str
    k: int
    hits: list[SearchHit]
    index: dict[str, Any]
    filters: dict[str, Any]
    seconds: float
    enqueued: dict[str, Any] | None = None


def load_index(store: Store, settings: Settings, vs: Any) -> LoadedIndex:
    """The vector set's IVF index, up to date (built, extended or rebuilt and saved
    here), its packed copy memory-mapped from ``state/``, and a log of what was done."""
    from longtail.discovery.search import Index
    from longtail.store.state_files import load_arrays, save_state, state_path

    t0 = time.perf_counter()
    name = f"{vs.directory.name}.search-index"
    fp = _fingerprint(store, vs)
    path = state_path(store.root, name)
    # In-process reuse: a service or a notebook searches many times over one index.
    key = (str(path), *(path.stat()[7:9] if path.exists() else ()))
    index = _CACHE.get(key)
    if index is None:
        index = load_arrays(store.root, name, lambda a: _open(store, name, a),
                            what="search index")
    log: dict[str, Any] = {"kind": "ivf"}
    changed = False
    if index is None or index.fingerprint != fp or index.n_rows > vs.n_rows:
        log["built"] = "no saved index" if index is None else "the vectors were made again"
        index = Index.build(vs, vs.n_rows, seed=settings.seed, fingerprint=fp)
        changed = True
    else:
        added = index.add(vs, vs.n_rows)
        if added:
            log["added"] = added
            changed = True
    if index.n_rows - index.n_packed > REPACK * index.n_packed:
        _pack(store, name, index, vs)
        log["packed"] = index.n_packed
        changed = True
    if changed:
        save_state(store.root, name, {**index.to_arrays(),
                                      "packed_file": np.asarray(index.packed_file)})
        from longtail.store.state_files import remove_matrices

        remove_matrices(store.root, f"{name}.", keep=index.packed_file)
    log.update({"nlist": index.nlist, "packed": index.n_packed,
                "index_seconds": round(time.perf_counter() - t0, 3)})
    _CACHE.clear()
    _CACHE[(str(path), *(path.stat()[7:9]))] = index
    return LoadedIndex(index, log)


def _open(store: Store, name: str, arrays: Any) -> Any:
    """The saved index with its packed copy memory-mapped (None: no copy, or a copy
    that does not match: the index reads every row from the vector set until packed)."""
    from longtail.discovery.search import Index
    from longtail.store.state_files import open_matrix

    file = str(arrays["packed_file"]) if "packed_file" in arrays else ""
    packed = open_matrix(store.root, file) if file.startswith(f"{name}.") else None
    index = Index.from_arrays(arrays, packed=packed)
    index.packed_file = file if index.packed is not None else ""
    return index


def _pack(store: Store, name: str, index: Any, vs: Any) -> None:
    """Write the index's packed copy to ``state/<name>.<token>.npy`` (a new file each
    time, named in the index's arrays, so a crash between the two writes leaves the old
    pair) and map it."""
    import secrets

    from longtail.store.state_files import write_matrix

    file = f"{name}.{secrets.token_hex(4)}"
    mapped = write_matrix(store.root, file, (index.n_rows, vs.dim), np.float32,
                          lambda out: index.pack(vs, out))
    index.packed = mapped
    index.packed_file = file


def _parse_where(where: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for w in where or []:
        if "=" not in w or not w.split("=", 1)[0].strip():
            raise InputError(f"--where {w!r}: write COLUMN=VALUE (a metadata column)")
        k, v = w.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _queries(store: Store, vs: Any, ids: Sequence[str] | None, text: str | None,
             vector: Sequence[float] | np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(query vectors, rows they came from, a description)."""
    given = sum(x is not None and (len(x) > 0 if not isinstance(x, str) else bool(x.strip()))
                for x in (ids, text, vector))
    if given != 1:
        raise InputError("search by exactly one of: sample ids (--id), text (--text) or a "
                         "vector (--vector)")
    if ids:
        with store.unit_of_work() as uow:
            found = uow.samples.ids_to_rows(list(ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise InputError(f"no sample with id {', '.join(map(repr, missing[:5]))}"
                             + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
        rows = np.array([found[i] for i in ids], np.int64)
        if rows.max() >= vs.n_rows:
            raise InputError(f"sample {ids[int(np.argmax(rows >= vs.n_rows))]!r} has no "
                             f"{vs.directory.name!r} vector yet: run `longtail embed`")
        return vs.read(rows), rows, "ids " + ", ".join(ids[:3]) + ("…" if len(ids) > 3 else "")
    if text is not None:
        from longtail.encoders import get_encoder

        with store.reading() as uow:
            info = uow.vectors.info(vs.directory.name) or {}
        enc = get_encoder(vs.directory.name, **(info.get("config") or {}))
        if getattr(enc, "needs", "") != "text":
            raise InputError(f"the {vs.directory.name!r} vectors are not made from text: search "
                             "by sample ids (--id) or a vector (--vector)")
        Q = np.asarray(enc.encode({"text": [text], "metadata": [{}]}), np.float32)
        return Q, np.zeros(0, np.int64), f"text {text[:40]!r}"
    try:
        Q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    except (TypeError, ValueError):
        raise InputError("--vector must be numbers (comma-separated, or a .npy file)") from None
    if Q.shape[1] != vs.dim:
        raise InputError(f"the vector has {Q.shape[1]} numbers; {vs.directory.name!r} vectors "
                         f"have {vs.dim}")
    if not np.all(np.isfinite(Q)) or not np.any(Q):
        raise InputError("the vector must be finite and not all zeros")
    return Q, np.zeros(0, np.int64), "a vector"


def _allowed(store: Store, n: int, split: str, state: str
             ) -> tuple[np.ndarray | None, dict[int, str] | None]:
    """The rows the filters allow (None: every row) and the current labels (None when
    the filters did not need them)."""
    if split not in ("pool", "eval", "all"):
        raise InputError(f"--split must be pool, eval or all, got {split!r}")
    if state not in ("any", "labeled", "unlabeled"):
        raise InputError(f"--state must be any, labeled or unlabeled, got {state!r}")
    with store.unit_of_work() as uow:
        labels = uow.labels.current() if state != "any" else None
        # The eval split is small and indexed: read it, not the pool (millions of rows).
        ev = uow.samples.rows_by_split("eval") if split != "all" else None
    ok = None
    if split == "pool" and len(ev):
        ok = np.ones(n, bool)
        ok[ev[ev < n]] = False
    elif split == "eval":
        ok = np.zeros(n, bool)
        ok[ev[ev < n]] = True
    if state != "any":
        ok = np.ones(n, bool) if ok is None else ok
        lab = np.zeros(n, bool)
        have = np.fromiter((r for r in labels if r < n), np.int64)
        lab[have] = True
        ok &= lab if state == "labeled" else ~lab
    return ok, labels


def _meta_ok(store: Store, rows: np.ndarray, where: dict[str, str]) -> np.ndarray:
    if not where or not len(rows):
        return np.ones(len(rows), bool)
    order = np.argsort(rows)
    ok = np.zeros(len(rows), bool)
    pos = 0
    with store.unit_of_work() as uow:
        for batch in uow.samples.iter(rows[order]):
            for _, _, _, meta in batch:
                ok[order[pos]] = all(str(meta.get(k)) == v for k, v in where.items())
                pos += 1
    return ok


def search(store: Store, settings: Settings, *, ids: Sequence[str] | None = None,
           text: str | None = None, vector: Sequence[float] | np.ndarray | None = None,
           k: int = 10, split: str = "pool", state: str = "any",
           where: Sequence[str] | None = None, encoder: str | None = None,
           exact: bool | None = None, nprobe: int | None = None) -> SearchResult:
    """The k rows most similar (cosine) to the query, best first, with id, text,
    similarity, split, label and metadata. Several ids: each row scored by its best
    match among them; the query rows themselves are left out. `exact`: force the exact
    search (True) or the index (False); default by size."""
    from longtail.discovery.search import NPROBE, exact_search

    t0 = time.perf_counter()
    if k <= 0:
        raise InputError(f"-k must be a positive number of results, got {k}")
    cond = _parse_where(where)
    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
    Q, own, what = _queries(store, vs, ids, text, vector)
    n = vs.n_rows
    allowed, labels = _allowed(store, n, split, state)
    if len(own):
        allowed = np.ones(n, bool) if allowed is None else allowed
        allowed[own] = False
    n_ok = n if allowed is None else int(allowed.sum())
    use_exact = exact if exact is not None else (n <= EXACT_MAX or n_ok < FEW_ALLOWED * n)
    log: dict[str, Any] = {"kind": "exact"}
    want = k
    while True:
        if use_exact:
            rows_ok = np.arange(n, dtype=np.int64) if allowed is None else np.flatnonzero(allowed)
            if cond and want > k:  # the index could not find enough: filter all, exactly
                rows_ok = rows_ok[_meta_ok(store, rows_ok, cond)]
            R, S = exact_search(vs, Q, want if not cond or want == k else k, rows=rows_ok)
        else:
            loaded = load_index(store, settings, vs)
            index, log = loaded.index, loaded.log
            log["nprobe"] = nprobe or NPROBE
            R, S = index.search(vs, Q, want, nprobe=nprobe or NPROBE, allowed=allowed)
        rows, sims = _best(R, S)
        keep = _meta_ok(store, rows, cond)
        if keep.sum() >= k or not cond or (use_exact and want > k) or want >= n_ok:
            rows, sims = rows[keep][:k], sims[keep][:k]
            break
        if use_exact or want * META_GROW > 64 * k:
            use_exact, want = True, n_ok  # metadata too rare for the index: scan exactly
        else:
            want *= META_GROW
    hits = _hits(store, rows, sims, labels)
    return SearchResult(query=what, k=k, hits=hits, index=log,
                        filters={"split": split, "state": state, "where": cond},
                        seconds=round(time.perf_counter() - t0, 3))


def _best(R: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Several queries' results merged: each row at its best similarity, best first."""
    r, s = R.ravel(), S.ravel()
    ok = r >= 0
    r, s = r[ok], s[ok]
    order = np.lexsort((r, -s))
    r, s = r[order], s[order]
    _, first = np.unique(r, return_index=True)
    first.sort()
    return r[first], s[first]


def _hits(store: Store, rows: np.ndarray, sims: np.ndarray, labels: dict[int, str] | None
          ) -> list[SearchHit]:
    if not len(rows):
        return []
    with store.unit_of_work() as uow:
        if labels is None:
            labels = uow.labels.current(rows.tolist())
        by_row = {b[0]: b for batch in uow.samples.iter(rows) for b in batch}
        eval_rows = {r for r, sp in uow.samples.splits_of(rows.tolist()).items() if sp == "eval"}
    return [SearchHit(row=int(r), id=by_row[int(r)][1], text=(by_row[int(r)][2] or "")[:200],
                      similarity=round(float(s), 4),
                      split="eval" if int(r) in eval_rows else "pool",
                      label=labels.get(int(r)), metadata=by_row[int(r)][3])
            for r, s in zip(rows.tolist(), sims.tolist(), strict=True)]
