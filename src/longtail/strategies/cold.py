"""Cold start: what to label when there is no model yet.

The default is kernel-herding coverage (:func:`longtail.strategies.coverage.select_coverage`):
representative (it favours dense regions) and diverse (a covered region stops paying),
never a plain random draw. Its geometry is chosen from the pool (:func:`geometry`):

* **Vectors whose variance ranks their directions** (a falling covariance spectrum, as
  sentence embeddings and unwhitened PCA features): Euclidean kNN graph, 30 neighbours,
  bandwidth from the 30th neighbour's distance — as before.
* **Vectors whose variance is spread evenly over the dimensions** (a flat spectrum, as
  whitened features, where noise dimensions weigh as much as signal ones and Euclidean
  kNN density follows the noise): cosine geometry (rows scaled to unit norm, as
  MaxHerding does) and a neighbourhood of ``⌈u/k⌉`` rows (the share of the pool each of
  the ``k`` picks stands for), with the bandwidth from that neighbour's distance.

Flatness is the covariance's participation ratio ``(Σλ)²/Σλ² / d`` on a seeded sample
of at most 5,000 rows: 1 for a perfectly flat spectrum, 1/d for one direction. The rule
and its threshold were chosen on Fashion-MNIST (a validation split of the pool, PCA 64
with and without whitening) and checked on digits and Banking77, whose geometry it
leaves unchanged (bench/first_batch.py; README).

Without vectors there is nothing to be representative of, so the draw is uniform and
the log says so. Every strategy that needs a model falls back through :func:`fallback`,
so the fallback and its log are written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from longtail.strategies._base import Context, Selection, VectorReader
from longtail.strategies._pool import read_rows, universe
from longtail.strategies.coverage import COVERAGE_KNN, select_coverage

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


def cold_start(ctx: Context) -> Selection:
    """Representative + diverse selection without a model (coverage) in the geometry
    :func:`geometry` chooses from the pool. See module doc.

    Time O(s·d²) for the spectrum, O(u²·d) once for the kNN graph (cached in ``state``
    in the Euclidean case; the cosine graph is built for this call only, so the
    Euclidean graph the later arms use is never mixed with it), then O(k·deg·log u);
    memory O(u·knn), u ≤ 40k graph rows."""
    if ctx.vectors is None:
        sel = select_coverage(ctx)
        sel.log = {"cold_start": "coverage", **sel.log}
        return sel
    geo = geometry(ctx)
    if geo["metric"] == "euclidean":
        sel = select_coverage(ctx)
    else:
        sub = dataclasses.replace(ctx, vectors=UnitRows(ctx.vectors), state=None,
                                  params={**ctx.params, "knn": geo["knn"]})
        sel = select_coverage(sub)
    sel.log = {"cold_start": "coverage", "geometry": geo, **sel.log}
    return sel


def fallback(ctx: Context, name: str) -> Selection:
    """The cold start on behalf of strategy ``name``, which needs a model there is not
    yet (``probs`` is None); the log names ``name`` and says why. Cost of
    :func:`cold_start`."""
    sel = cold_start(ctx)
    # The cold start's own "strategy" (coverage) stays under "cold_start"; the log's
    # strategy is the one asked for.
    sel.log = {**sel.log, "strategy": name, "fallback": "cold_start (no probs yet)"}
    return sel
