"""Strategy state as plain arrays, so that it survives between commands without pickle.

The ``state`` dict a caller hands to :func:`longtail.strategies.select` holds the pool
indexes (:class:`~longtail.strategies._pool.Graph`, :class:`~longtail.strategies._pool.Clusters`
under ``state["longtail.strategies"]``, with the record of the pool they were built on)
and ``auto``'s statistics (``state["longtail.auto"]``: remembered predictions and
proxy rewards). :func:`to_arrays` turns it into ``{name: ndarray}`` that
``np.savez`` writes and ``np.load(..., allow_pickle=False)`` reads back;
:func:`from_arrays` rebuilds the same dict. Between them::

    arrays = to_arrays(state)            # then np.savez(file, **arrays)
    state = from_arrays(np.load(file, allow_pickle=False))

Layout: every ndarray (and numpy scalar, as a 0-d array) is its own entry ``a<i>``;
the rest of the tree is one JSON string under ``__state__`` in which an array is
``{"t": "array", "a": "a<i>"}``, a dict ``{"t": "dict", "k": [...], "v": [...]}`` (so
keys keep their type and order), a tuple ``{"t": "tuple", "v": [...]}`` and a pool
index ``{"t": "Graph" | "Clusters", "f": {field: ...}}``. Arrays of Python strings
(object dtype) are stored as unicode and given back as object arrays. A value of any
other type is an :class:`~longtail.errors.InputError` naming its path: nothing is
dropped silently.

Cost: O(size of the state) time; numeric arrays are passed through, not copied.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.strategies._pool import POOL_KEY, Clusters, Graph

FORMAT = 1
TREE_KEY = "__state__"
_TYPES: dict[str, type] = {"Graph": Graph, "Clusters": Clusters}
_LEGACY_KEY = "__json__"  # the first serialiser's blob (dicts and arrays only)


def set_pool(state: dict, name: str, fingerprint: str | int | None = None) -> dict:
    """Name the pool the next :func:`~longtail.strategies.select` runs on.

    ``name``: the vector set (e.g. the encoder); ``fingerprint``: a token that changes
    when *existing* rows' vectors change (re-embedded with another model, the set
    rebuilt), not when rows are appended — appended rows join the indexes
    incrementally. A saved index built on another name or fingerprint is rebuilt and
    the log says why. Returns ``state``. O(1).
    """
    state[POOL_KEY] = {"name": str(name),
                       "fingerprint": None if fingerprint is None else str(fingerprint)}
    return state


def to_arrays(state: dict) -> dict[str, np.ndarray]:
    """``state`` as ``{name: ndarray}`` for ``np.savez`` (no object arrays, no pickle).

    Raises InputError naming the path of a value that cannot be stored. Numeric arrays
    are the state's own (not copies): write them before mutating the state. Fields of
    Graph/Clusters marked ``NOT_SAVED`` (caches, load times) are left out.
    """
    if not isinstance(state, dict):
        raise InputError(f"strategy state must be a dict, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}

    def put(arr: np.ndarray) -> dict:
        key = f"a{len(arrays)}"
        node: dict = {"t": "array", "a": key}
        if arr.dtype == object:
            if not all(isinstance(v, str) for v in arr.ravel().tolist()):
                raise TypeError("an object array holding values other than strings")
            arr = arr.astype(str) if arr.size else np.zeros(arr.shape, dtype="<U1")
            node["object"] = True
        arrays[key] = arr
        return node

    def enc(value: Any, path: str) -> Any:
        try:
            # numpy scalars first: np.float64 and np.str_ are also float and str
            if isinstance(value, np.generic):
                return {**put(np.asarray(value)), "scalar": True}
            if value is None or isinstance(value, (bool, int, float, str)):
                return value
            if isinstance(value, np.ndarray):
                return put(value)
            if isinstance(value, list):
                return [enc(v, f"{path}[{i}]") for i, v in enumerate(value)]
            if isinstance(value, tuple):
                return {"t": "tuple", "v": [enc(v, f"{path}[{i}]") for i, v in enumerate(value)]}
            if isinstance(value, dict):
                keys = list(value)
                return {"t": "dict", "k": [enc(k, f"{path}<key {k!r}>") for k in keys],
                        "v": [enc(value[k], f"{path}[{k!r}]") for k in keys]}
            name = type(value).__name__
            if _TYPES.get(name) is type(value):
                return {"t": name, "f": {f.name: enc(getattr(value, f.name), f"{path}.{f.name}")
                                         for f in dataclasses.fields(value)
                                         if f.metadata.get("saved", True)}}
            raise TypeError(f"a {name}")
        except TypeError as e:
            raise InputError(f"strategy state at {path or '<root>'} cannot be saved as "
                             f"arrays: {e}") from None

    tree = enc(state, "")
    arrays[TREE_KEY] = np.array(json.dumps({"format": FORMAT, "tree": tree}))
    return arrays


def from_arrays(arrays: Mapping[str, np.ndarray]) -> dict:
    """The state dict saved by :func:`to_arrays` (also reads the first serialiser's
    files, which held dicts and arrays only). ``arrays`` may be a lazy ``np.load``
    result: each array is read when its node is rebuilt, and each Graph/Clusters
    remembers the seconds its reading took (the selection log reports them).

    Raises InputError when ``arrays`` is not a saved state or of a newer format.
    """
    if TREE_KEY not in arrays:
        if _LEGACY_KEY in arrays:
            return _from_legacy(arrays)
        raise InputError(f"not a saved strategy state: no {TREE_KEY!r} entry "
                         f"(entries: {sorted(arrays)[:5]})")
    doc = json.loads(str(arrays[TREE_KEY][()]))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"saved strategy state has format {doc.get('format')!r}; "
                         f"this version reads format {FORMAT}")

    def dec(node: Any) -> Any:
        if isinstance(node, list):
            return [dec(v) for v in node]
        if not isinstance(node, dict):
            return node
        t = node.get("t")
        if t == "array":
            arr = np.asarray(arrays[node["a"]])
            if node.get("object"):
                arr = arr.astype(object)
            return arr[()] if node.get("scalar") else arr
        if t == "tuple":
            return tuple(dec(v) for v in node["v"])
        if t == "dict":
            return {_hashable(dec(k)): dec(v) for k, v in zip(node["k"], node["v"], strict=True)}
        if t in _TYPES:
            t0 = time.perf_counter()
            obj = _TYPES[t](**{k: dec(v) for k, v in node["f"].items()})
            obj.load_seconds = time.perf_counter() - t0
            return obj
        raise InputError(f"saved strategy state has a node of unknown type {t!r}")

    out = dec(doc["tree"])
    if not isinstance(out, dict):
        raise InputError("saved strategy state is not a dict")
    return out


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _from_legacy(arrays: Mapping[str, np.ndarray]) -> dict:
    """Read the first serialiser's layout: a JSON tree with ``{"__array__": path}``."""

    def unwalk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return np.asarray(arrays[value["__array__"]])
            return {k: unwalk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwalk(v) for v in value]
        return value

    return unwalk(json.loads(str(arrays[_LEGACY_KEY][()])))
