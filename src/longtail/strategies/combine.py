"""The combinator: a small declarative selection config, and the class-balance term.

A config is a plain dict (the caller loads it from YAML/JSON)::

    {
      "terms":   [{"score": "margin", "weight": 1}, {"score": "typicality", "weight": 0.5}],
      "combine": "product",                       # or "sum" (default)
      "filters": [{"score": "confidence", "lt": 0.6}],
      "balance": {"by": "predicted_class"}        # or "groups" (params["groups"])
    }

* terms: each score is computed on the candidates, normalised to [0, 1] (min-max by
  default; ``"normalize": "rank"`` or ``"none"``), then combined as
  ``sum_t w_t·s_t`` or ``prod_t (s_t + 1e-6)^w_t``. Higher = picked first.
* filters: keep candidates whose *raw* score satisfies every bound (``lt``, ``le``,
  ``gt``, ``ge``). When fewer than k pass, the rest of the batch is filled with the
  best-scoring rows that failed, so the batch still has ``min(k, n)`` rows; the log
  says how many passed.
* balance: fill the batch group by group so that (already labeled + picked) counts
  follow the target shares (uniform over the candidates' groups by default, or
  ``"target": {group: share}``). Groups are the predicted class (``by:
  predicted_class``; labeled counts from ``labeled_y``) or ``params["groups"]``, an
  array aligned with the candidates (``by: groups``; labeled counts from
  ``params["labeled_groups"]`` when given, else zero).
* costs, when given, divide the combined value (value per unit cost).

Terms or filters that need probabilities fall back to the cold start while there is
no model. Time: the sum of the terms' costs + O(n log n); memory O(n·T).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.strategies import scores as S
from longtail.strategies._base import Context, Selection, apply_costs, minmax, topk_desc
from longtail.strategies.cold import fallback
from longtail.strategies.representative import candidate_typicality


def class_rarity(
    probs: np.ndarray, classes: np.ndarray, labeled_y: np.ndarray | None
) -> np.ndarray:
    """Expected rarity of each row's class: ``sum_c p[i, c] / (1 + n_labeled[c])``.

    probs (n, C), classes (C,), labeled_y (L,) -> (n,) in (0, 1]; high for rows
    predicted in classes with few labels (the rare-class term). O(n·C + L) time.
    """
    p = np.asarray(probs, dtype=np.float64)
    counts = np.zeros(p.shape[1])
    if labeled_y is not None and len(labeled_y):
        lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
        for lab in np.asarray(labeled_y).tolist():
            i = lookup.get(lab)
            if i is not None:
                counts[i] += 1
    return p @ (1.0 / (1.0 + counts))


def _typicality_term(ctx: Context) -> np.ndarray:
    if ctx.vectors is None:
        raise InputError("score 'typicality' needs vectors")
    return candidate_typicality(ctx)


def _committee(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Context], np.ndarray]:
    def run(ctx: Context) -> np.ndarray:
        if ctx.committee_probs is None:
            raise InputError("this score needs committee_probs (m, len(candidates), C)")
        return fn(ctx.committee_probs)

    return run


# name -> (needs, function of the context returning (n,) raw values)
SCORES: dict[str, tuple[frozenset, Callable[[Context], np.ndarray]]] = {
    "margin": (frozenset({"probs"}), lambda c: S.margin(c.probs)),
    "entropy": (frozenset({"probs"}), lambda c: S.entropy(c.probs)),
    "least_confidence": (frozenset({"probs"}), lambda c: S.least_confidence(c.probs)),
    "confidence": (frozenset({"probs"}), lambda c: S.confidence(c.probs)),
    "rarity": (frozenset({"probs"}),
               lambda c: class_rarity(c.probs, c.classes, c.labeled_y)),
    "vote_entropy": (frozenset({"probs", "committee"}), _committee(S.vote_entropy)),
    "mean_kl": (frozenset({"probs", "committee"}), _committee(S.mean_kl)),
    "bald": (frozenset({"probs", "committee"}), _committee(S.bald)),
    "typicality": (frozenset({"vectors"}), _typicality_term),
    "density": (frozenset({"vectors"}), _typicality_term),
    "random": (frozenset(), lambda c: c.rng.random(c.n)),
}
_BOUNDS = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}


def validate_config(config: Any) -> dict:
    """Check a combinator config and return it with defaults filled in.

    Raises InputError naming the offending key and value. O(len(config)).
    """
    if not isinstance(config, dict):
        raise InputError(f"selection config must be a mapping, got {type(config).__name__}")
    known = {"terms", "combine", "filters", "balance", "groups", "labeled_groups"}
    extra = sorted(set(config) - known)
    if extra:
        raise InputError(f"unknown selection config key(s) {extra}; valid: {sorted(known)}")
    terms = config.get("terms", [{"score": "margin", "weight": 1.0}])
    if not isinstance(terms, list) or not terms:
        raise InputError("config 'terms' must be a non-empty list of {score, weight}")
    out_terms = []
    for i, t in enumerate(terms):
        if isinstance(t, str):
            t = {"score": t}
        if not isinstance(t, dict) or "score" not in t:
            raise InputError(f"config terms[{i}] must be a mapping with a 'score', got {t!r}")
        bad = sorted(set(t) - {"score", "weight", "normalize"})
        if bad:
            raise InputError(f"config terms[{i}] has unknown key(s) {bad}")
        if t["score"] not in SCORES:
            raise InputError(
                f"config terms[{i}].score {t['score']!r} is unknown; valid: {sorted(SCORES)}"
            )
        w = t.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) \
                or w < 0:
            raise InputError(f"config terms[{i}].weight must be a number >= 0, got {w!r}")
        norm = t.get("normalize", "minmax")
        if norm not in ("minmax", "rank", "none"):
            raise InputError(
                f"config terms[{i}].normalize must be minmax, rank or none, got {norm!r}"
            )
        out_terms.append({"score": t["score"], "weight": float(w), "normalize": norm})
    combine = config.get("combine", "sum")
    if combine not in ("sum", "product"):
        raise InputError(f"config 'combine' must be 'sum' or 'product', got {combine!r}")
    filters = config.get("filters", [])
    if not isinstance(filters, list):
        raise InputError("config 'filters' must be a list of {score, lt|le|gt|ge}")
    out_filters = []
    for i, f in enumerate(filters):
        if not isinstance(f, dict) or "score" not in f:
            raise InputError(f"config filters[{i}] must be a mapping with a 'score', got {f!r}")
        if f["score"] not in SCORES:
            raise InputError(
                f"config filters[{i}].score {f['score']!r} is unknown; valid: {sorted(SCORES)}"
            )
        bounds = {b: v for b, v in f.items() if b != "score"}
        if not bounds or set(bounds) - set(_BOUNDS):
            raise InputError(
                f"config filters[{i}] needs bounds among lt, le, gt, ge; got {sorted(bounds)}"
            )
        for b, v in bounds.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"config filters[{i}].{b} must be a number, got {v!r}")
        out_filters.append({"score": f["score"], **{b: float(v) for b, v in bounds.items()}})
    balance = config.get("balance")
    if balance is not None:
        if not isinstance(balance, dict) or balance.get("by") not in ("predicted_class",
                                                                        "groups"):
            raise InputError(
                "config 'balance' must be {'by': 'predicted_class' | 'groups', "
                f"'target': 'uniform' | {{group: share}}}}, got {balance!r}"
            )
        target = balance.get("target", "uniform")
        if target != "uniform":
            if not isinstance(target, dict) or not target or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                for v in target.values()
            ):
                raise InputError(
                    "config balance.target must be 'uniform' or a mapping group -> share >= 0,"
                    f" got {target!r}"
                )
        balance = {"by": balance["by"], "target": target}
    return {"terms": out_terms, "combine": combine, "filters": out_filters,
            "balance": balance}


def config_needs(config: dict) -> frozenset:
    """What a config needs the caller to compute: union of its scores' needs (plus
    "probs" when balancing by predicted class; "costs" is always optional)."""
    cfg = validate_config(config)
    needs: set[str] = set()
    for item in cfg["terms"] + cfg["filters"]:
        needs |= SCORES[item["score"]][0]
    if cfg["balance"] and cfg["balance"]["by"] == "predicted_class":
        needs.add("probs")
    if "probs" in needs:
        needs.add("vectors")  # the cold start (no model yet) needs vectors
    return frozenset(needs)


def _normalise(x: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return x
    if how == "rank":
        if len(x) < 2:
            return np.zeros_like(x, dtype=np.float64)
        return np.argsort(np.argsort(x, kind="stable"), kind="stable") / (len(x) - 1)
    return minmax(x)


def balanced_pick(
    ctx: Context,
    value: np.ndarray,
    group: np.ndarray,
    labeled_counts: dict,
    target: Any,
    eligible: np.ndarray,
) -> list[int]:
    """Fill ``min(k, |eligible|)`` picks so that group counts follow ``target`` shares.

    value (n,), group (n,) group key per candidate, eligible: candidate positions.
    Repeatedly serves the group with the lowest ``(labeled + picked) / share`` that still
    has candidates, taking its best remaining row by ``value``. O(n log n + k log G).
    """
    keys, inv = np.unique(group[eligible], return_inverse=True)
    if target == "uniform":
        share = np.ones(len(keys))
    else:
        share = np.array([float(target.get(kv, 0.0)) for kv in keys.tolist()])
    order = np.lexsort((-value[eligible], inv))
    inv_sorted = inv[order]
    starts = np.searchsorted(inv_sorted, np.arange(len(keys)))
    ends = np.searchsorted(inv_sorted, np.arange(len(keys)), side="right")
    nxt = starts.copy()
    count = np.array([float(labeled_counts.get(kv, 0)) for kv in keys.tolist()])
    tie = ctx.rng.random(len(keys))
    heap = [((count[g] + 1) / share[g], tie[g], g) for g in range(len(keys))
            if share[g] > 0 and ends[g] > starts[g]]
    heapq.heapify(heap)
    want = min(ctx.k, len(eligible))
    picked: list[int] = []
    while heap and len(picked) < want:
        _, t, g = heapq.heappop(heap)
        picked.append(int(eligible[order[nxt[g]]]))
        nxt[g] += 1
        count[g] += 1
        if nxt[g] < ends[g]:
            heapq.heappush(heap, ((count[g] + 1) / share[g], t, g))
    if len(picked) < want:
        # groups with share 0 only serve once every wanted group ran dry
        taken = np.zeros(ctx.n, dtype=bool)
        taken[np.asarray(picked, dtype=np.int64)] = True
        rest = eligible[~taken[eligible]]
        rest = rest[topk_desc(value[rest], want - len(picked), ctx.rng)]
        picked.extend(int(r) for r in rest)
    return picked


def select_combined(ctx: Context) -> Selection:
    """Selection by a declarative config (``params``, see the module doc).

    Time: the terms' own costs + O(n log n); memory O(n·T) for T terms."""
    config = validate_config(ctx.params)
    needs = set()
    for item in config["terms"] + config["filters"]:
        needs |= SCORES[item["score"]][0]
    if config["balance"] and config["balance"]["by"] == "predicted_class":
        needs.add("probs")
    if "probs" in needs and ctx.probs is None:
        return fallback(ctx, "combine")
    raw: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in raw:
            raw[name] = np.asarray(SCORES[name][1](ctx), dtype=np.float64)
        return raw[name]

    if config["combine"] == "sum":
        value = np.zeros(ctx.n)
        for t in config["terms"]:
            value += t["weight"] * _normalise(get(t["score"]), t["normalize"])
    else:
        value = np.ones(ctx.n)
        for t in config["terms"]:
            value *= (np.clip(_normalise(get(t["score"]), t["normalize"]), 0, None)
                      + 1e-6) ** t["weight"]
    value = apply_costs(value, ctx.costs)
    keep = np.ones(ctx.n, dtype=bool)
    for f in config["filters"]:
        x = get(f["score"])
        for b, v in f.items():
            if b != "score":
                keep &= _BOUNDS[b](x, v)
    passed = np.flatnonzero(keep)
    balance = config["balance"]
    if balance is None:
        chosen = passed[topk_desc(value[passed], ctx.k, ctx.rng)].tolist()
        info: dict = {}
    else:
        if balance["by"] == "predicted_class":
            group = np.asarray(ctx.classes)[ctx.probs.argmax(axis=1)]
            labeled_counts: dict = {}
            if ctx.labeled_y is not None:
                ks, cs = np.unique(ctx.labeled_y, return_counts=True)
                labeled_counts = dict(zip(ks.tolist(), cs.tolist(), strict=True))
        else:
            if "groups" not in ctx.params:
                raise InputError("balance by 'groups' needs params['groups'], an array "
                                 "aligned with the candidates")
            group = np.asarray(ctx.params["groups"])
            if group.shape != (ctx.n,):
                raise InputError(f"params['groups'] must have shape ({ctx.n},), "
                                 f"got {group.shape}")
            labeled_counts = {}
            if ctx.params.get("labeled_groups") is not None:
                ks, cs = np.unique(np.asarray(ctx.params["labeled_groups"]),
                                   return_counts=True)
                labeled_counts = dict(zip(ks.tolist(), cs.tolist(), strict=True))
        chosen = balanced_pick(ctx, value, group, labeled_counts, balance["target"], passed)
        info = {"groups_picked": int(len(np.unique(group[np.asarray(chosen, dtype=np.int64)])))
                if chosen else 0}
    want = min(ctx.k, ctx.n)
    n_passed = len(chosen)
    if len(chosen) < want:
        failed = np.flatnonzero(~keep)
        chosen += failed[topk_desc(value[failed], want - len(chosen), ctx.rng)].tolist()
    pos = np.asarray(chosen, dtype=np.int64)
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "combine",
            "reason": "declarative config",
            "config": config,
            "n_passed_filters": int(len(passed)),
            "n_picked_from_passed": int(n_passed),
            **info,
        },
        scores=value[pos],
    )


def select_class_balance(ctx: Context) -> Selection:
    """Rare-class balance: fill the batch class by class (predicted class), serving
    the classes with the fewest labels first; within a class, lowest margin first.
    O(n·C + n log n); cold start without probs."""
    params = {"terms": [{"score": "margin"}], "balance": {"by": "predicted_class"}}
    sub = Context(**{**ctx.__dict__, "params": params})
    sel = select_combined(sub)
    sel.log = {**sel.log, "strategy": "class_balance"}
    return sel
