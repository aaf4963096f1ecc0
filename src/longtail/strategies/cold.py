"""Cold start: what to label when there is no model yet.

The default is kernel-herding coverage (:func:`representative.select_coverage`):
representative (it favours dense regions) and diverse (a covered region stops paying),
never a plain random draw. Without vectors there is nothing to be representative of,
so the draw is uniform and the log says so.
"""

from __future__ import annotations

from longtail.strategies._base import Context, Selection


def cold_start(ctx: Context) -> Selection:
    """Representative + diverse selection without a model (coverage). See module doc.

    Time O(u²·d) once for the kNN graph (cached in ``state``), then O(k·deg·log u);
    memory O(u·knn), u ≤ 40k graph rows."""
    from longtail.strategies.representative import select_coverage

    sel = select_coverage(ctx)
    sel.log = {"cold_start": "coverage", **sel.log}
    return sel
