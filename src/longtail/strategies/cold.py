"""Cold start: what to label when there is no model yet.

The default is kernel-herding coverage (:func:`longtail.strategies.coverage.select_coverage`):
representative (it favours dense regions) and diverse (a covered region stops paying),
never a plain random draw. Without vectors there is nothing to be representative of,
so the draw is uniform and the log says so. Every strategy that needs a model falls
back through :func:`fallback`, so the fallback and its log are written once.
"""

from __future__ import annotations

from longtail.strategies._base import Context, Selection
from longtail.strategies.coverage import select_coverage


def cold_start(ctx: Context) -> Selection:
    """Representative + diverse selection without a model (coverage). See module doc.

    Time O(u²·d) once for the kNN graph (cached in ``state``), then O(k·deg·log u);
    memory O(u·knn), u ≤ 40k graph rows."""
    sel = select_coverage(ctx)
    sel.log = {"cold_start": "coverage", **sel.log}
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
