"""Selection strategies: pure functions on arrays that pick what to label next.

Use :func:`select` with a registry name (``"auto"`` by default), or the score
functions directly on your own probabilities::

    from longtail.strategies import select, margin
    sel = select("margin", 100, candidates, rng=np.random.default_rng(0), probs=probs)

The registry (:data:`STRATEGIES`; each entry has ``.needs`` and ``.doc``):

* informative — ``margin``, ``entropy``, ``least_confidence``; committee
  ``vote_entropy``, ``mean_kl``, ``bald``, ``epig`` (from ``committee_probs``);
* representative — ``coverage`` (kernel herding on a kNN graph; the cold start;
  :mod:`~longtail.strategies.coverage`), ``typiclust``, ``probcover`` (δ from cluster purity), ``density``;
* diverse — ``coreset`` (k-center greedy), ``cluster_margin``, ``badge``
  (factorised gradient embeddings), ``margin_coverage`` (margin-weighted coverage);
* balance and combination — ``class_balance``, ``combine`` (declarative config);
* ``auto`` — the default; see :mod:`longtail.strategies.auto`;
* ``random`` — the control arm.

With no model yet (``probs=None``) informative strategies fall back to the cold start
(coverage: representative + diverse, never a plain random draw). With ``costs`` they
rank by value per unit cost. Strategies never read the store; vectors come through a
reader protocol (:class:`VectorReader`) or a plain 2-D array. Pool structures (kNN
graph, k-means) are cached in the caller's ``state`` dict, checked against the pool
on every call (reused, updated incrementally as rows arrive, or rebuilt, and the log's
``indexes`` says which and why); nothing builds an n×n matrix.
:mod:`longtail.strategies.state` turns that dict into plain arrays and back, so it
survives between processes without pickle.
"""

from longtail.strategies._base import ArrayVectors, Selection, Strategy, VectorReader
from longtail.strategies.combine import class_rarity, validate_config
from longtail.strategies.registry import STRATEGIES, register, select
from longtail.strategies.representative import typicality
from longtail.strategies.scores import (
    bald,
    confidence,
    entropy,
    epig,
    least_confidence,
    margin,
    mean_kl,
    vote_entropy,
)

__all__ = [
    "STRATEGIES",
    "ArrayVectors",
    "Selection",
    "Strategy",
    "VectorReader",
    "bald",
    "epig",
    "class_rarity",
    "confidence",
    "entropy",
    "least_confidence",
    "margin",
    "mean_kl",
    "register",
    "select",
    "typicality",
    "validate_config",
    "vote_entropy",
]
