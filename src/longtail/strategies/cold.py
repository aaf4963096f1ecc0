"""Cold start: what to label when there is no model yet.

The default maximises two coverage terms at once (:func:`cold_start`), greedily:

* **local**: kernel coverage on the pool's kNN graph
  (:mod:`longtail.strategies.coverage`, 30 neighbours, bandwidth from the 30th
  neighbour's distance): representative of dense regions, diverse at the scale of a
  neighbourhood;
* **pool-wide**: kernel herding (:mod:`longtail.strategies.herding`) over the graph's
  rows as targets (a seeded sample of 10,000 beyond that), on unit-norm rows, with the
  bandwidth of the share each pick stands for (the median distance to the
  ``⌈m/(k + labeled)⌉``-th nearest target). The local term alone gets more local as the pool grows (a fixed 30
  neighbours), and on a 20,000-row pool with ten classes it spent the batch on the
  tightest classes; the pool-wide term spreads it over the pool whatever its size.

Each term is a coverage fraction (divided by its number of rows), so neither depends on
the pool's size or scale. The rule (the second term, its unit norm and its bandwidth)
was chosen on Fashion-MNIST validation pools (20,000 training images outside the
benchmark's pool, scored on 10,000 others; the test set unread) and checked on
validation splits of digits and Banking77 (bench/first_batch.py; README). A 3,000-target
sample was tried first: the same on Fashion-MNIST, 0.8 points lower on Banking77's
validation splits, so the targets are the graph's rows up to 10,000 (a cost bound;
10,000 and all 20,000 scored alike on the Fashion-MNIST holdout pools).

The local term's geometry is chosen from the pool (:func:`geometry`):

* **Vectors whose variance ranks their directions** (a falling covariance spectrum, as
  sentence embeddings and unwhitened PCA features): Euclidean kNN graph, 30 neighbours,
  bandwidth from the 30th neighbour's distance.
* **Vectors whose variance is spread evenly over the dimensions** (a flat spectrum, as
  whitened features, where noise dimensions weigh as much as signal ones and Euclidean
  kNN density follows the noise): cosine geometry (rows scaled to unit norm, as
  MaxHerding does) and a neighbourhood of ``⌈u/k⌉`` rows (the share of the pool each of
  the ``k`` picks stands for), with the bandwidth from that neighbour's distance.

Flatness is the covariance's participation ratio ``(Σλ)²/Σλ² / d`` on a seeded sample
of at most 5,000 rows: 1 for a perfectly flat spectrum, 1/d for one direction (chosen
on whitened Fashion-MNIST, checked on digits and Banking77).

Without vectors there is nothing to be representative of, so the draw is uniform and
the log says so. Every strategy that needs a model falls back through :func:`fallback`,
so the fallback and its log are written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from longtail.strategies._base import Context, Selection, VectorReader, fill_random
from longtail.strategies._pool import candidate_positions, pool_graph, read_rows, universe
from longtail.strategies.coverage import (
    COVERAGE_KNN,
    COVERAGE_SIGMA_SCALE,
    labeled_cover,
    select_coverage,
)
from longtail.strategies.herding import (
    HERDING_TARGETS,
    HERDING_WORK,
    greedy_local_global,
    share_bandwidth,
    target_cover,
    unit,
)

FLAT_SPECTRUM = 0.5  # participation ratio / d above which the spectrum counts as flat
FLATNESS_SAMPLE = 5000
MAX_COLD_KNN = 400  # memory bound of the cosine graph: u·knn entries


class UnitRows:
    """A :class:`VectorReader` over another one, each row scaled to unit L2 norm (zero
    rows stay zero). O(rows·d) per read, no copy of the store."""

    def __init__(self, inner: VectorReader) -> None:
        self._inner = inner
        self.n_rows = int(inner.n_rows)
        self.dim = int(inner.dim)

    @staticmethod
    def _unit(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32)
        norm = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norm > 0, norm, 1.0)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Unit-norm float32 vectors of ``rows``."""
        return self._unit(self._inner.read(rows))

    def iter_chunks(self, rows: np.ndarray | None = None, chunk_rows: int = 65536
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row_numbers, unit-norm vectors)`` in chunks."""
        for r, v in self._inner.iter_chunks(rows, chunk_rows=chunk_rows):
            yield r, self._unit(v)


def spectrum_flatness(ctx: Context) -> float:
    """Participation ratio of the pool's covariance spectrum over ``d``, in (0, 1].

    A seeded sample of at most 5,000 universe rows (its own generator, so the caller's
    draws are unchanged): O(s·d²) time, O(s·d + d²) memory."""
    uni = universe(ctx)
    rng = np.random.default_rng(len(uni))
    rows = uni if len(uni) <= FLATNESS_SAMPLE else np.sort(
        rng.choice(uni, FLATNESS_SAMPLE, replace=False))
    if len(rows) < 3:
        return 0.0
    V = read_rows(ctx.vectors, rows).astype(np.float64)
    V -= V.mean(axis=0)
    # eigenvalues of the covariance = squared singular values of the centred sample
    lam = np.linalg.svd(V, compute_uv=False) ** 2
    if lam.sum() <= 0:
        return 0.0
    return float(lam.sum() ** 2 / np.sum(lam ** 2) / V.shape[1])


def geometry(ctx: Context) -> dict:
    """The cold start's geometry for this pool and batch: ``{"flatness", "metric",
    "knn"}`` (see the module doc). ``params["cold_geometry"]`` ("euclidean" or
    "cosine") overrides the choice."""
    flat = spectrum_flatness(ctx)
    forced = ctx.params.get("cold_geometry")
    cosine = forced == "cosine" if forced else flat > FLAT_SPECTRUM
    if not cosine:
        return {"flatness": round(flat, 4), "metric": "euclidean",
                "knn": int(ctx.params.get("knn", COVERAGE_KNN))}
    u = ctx.n + ctx.n_labeled
    share = int(np.ceil(u / max(ctx.k, 1)))
    return {"flatness": round(flat, 4), "metric": "cosine",
            "knn": int(np.clip(share, COVERAGE_KNN, min(MAX_COLD_KNN, max(u - 1, 1))))}


def _pool_term(ctx: Context, graph_rows: np.ndarray) -> tuple[np.ndarray, float]:
    """The wide term's targets (unit rows of the graph's rows, or of a seeded sample of
    :data:`HERDING_TARGETS` of them drawn from ``ctx.rng`` when there are more;
    ``params["pool_targets"]`` overrides the bound; fewer when ``m·(k + labeled)`` would
    pass :data:`HERDING_WORK`) and its share bandwidth
    for ``k + labeled`` picks. O(m²·d) time, O(m·d + m·block) memory."""
    picks = ctx.k + ctx.n_labeled
    bound = int(ctx.params.get("pool_targets", HERDING_TARGETS))
    m = min(len(graph_rows), bound, max(HERDING_WORK // max(picks, 1), 2))
    rows = graph_rows if m == len(graph_rows) else np.sort(
        ctx.rng.choice(graph_rows, m, replace=False))
    targets = unit(read_rows(ctx.vectors, rows))
    return targets, share_bandwidth(targets, picks)


def cold_start(ctx: Context) -> Selection:
    """Representative + diverse selection without a model: the greedy maximum of
    ``local coverage + pool coverage`` (see module doc), in the local geometry
    :func:`geometry` chooses from the pool.

    Time O(s·d²) for the spectrum, O(u²·d) once for the kNN graph (cached in ``state``
    in the Euclidean case; the cosine graph is built for this call only, so the
    Euclidean graph the later arms use is never mixed with it), O(m²·d + u·m·d) for the
    pool term (m ≤ 10,000 targets, the kernel computed in blocks), then
    O(k·(m·d + deg)·log u) for the lazy greedy; memory O(u·knn + m·block), u ≤ 40k
    graph rows."""
    if ctx.vectors is None:
        sel = select_coverage(ctx)
        sel.log = {"cold_start": "coverage", **sel.log}
        return sel
    geo = geometry(ctx)
    sub = ctx if geo["metric"] == "euclidean" else dataclasses.replace(
        ctx, vectors=UnitRows(ctx.vectors), state=None, params={**ctx.params, "knn": geo["knn"]})
    g = pool_graph(sub, knn=int(sub.params.get("knn", COVERAGE_KNN)))
    K = g.kernel(float(ctx.params.get("sigma_scale", COVERAGE_SIGMA_SCALE)))
    cover = labeled_cover(sub, g, K)
    gpos, cpos = candidate_positions(ctx, g)
    targets, sigma2 = _pool_term(ctx, g.rows)
    tcover = None
    if ctx.labeled_rows is not None and len(ctx.labeled_rows):
        lab = ctx.labeled_rows[(ctx.labeled_rows >= 0) & (ctx.labeled_rows < ctx.vectors.n_rows)]
        tcover = target_cover(targets, sigma2, unit(read_rows(ctx.vectors, lab)))
    inv = None
    if ctx.costs is not None:
        inv = np.ones(len(g.rows))
        inv[gpos] = 1.0 / ctx.costs[cpos]
    picked, gains = greedy_local_global(
        K, cover, gpos, ctx.k, ctx.rng, targets, sigma2,
        lambda pos: unit(read_rows(ctx.vectors, g.rows[pos])), tcover, inv)
    to_cand = np.full(len(g.rows), -1, dtype=np.int64)
    to_cand[gpos] = cpos
    pos = fill_random(ctx, [int(to_cand[p]) for p in picked])
    sc = np.zeros(len(pos))
    sc[: len(gains)] = gains[: len(pos)]
    return Selection(
        rows=ctx.candidates[pos],
        log={
            "strategy": "coverage",
            "cold_start": "coverage",
            "reason": "greedy local kNN-kernel coverage + pool-wide unit-norm kernel "
                      "herding (bandwidth: the share each pick stands for)",
            "geometry": geo,
            "graph_rows": len(g.rows),
            "knn": int(g.nbr.shape[1]),
            "sigma2": g.sigma2,
            "pool_targets": int(len(targets)),
            "pool_sigma2": round(float(sigma2), 6),
            "coverage_gain_first": float(gains[0]) if gains else 0.0,
            "coverage_gain_last": float(gains[-1]) if gains else 0.0,
        },
        scores=sc,
    )


def fallback(ctx: Context, name: str) -> Selection:
    """The cold start on behalf of strategy ``name``, which needs a model there is not
    yet (``probs`` is None); the log names ``name`` and says why. Cost of
    :func:`cold_start`."""
    sel = cold_start(ctx)
    # The cold start's own "strategy" (coverage) stays under "cold_start"; the log's
    # strategy is the one asked for.
    sel.log = {**sel.log, "strategy": name, "fallback": "cold_start (no probs yet)"}
    return sel
