"""Selection strategies: pure functions on arrays that pick what to label next.

Use :func:`select` with a registry name (``"auto"`` by default), or the score
functions directly on your own probabilities::

    from longtail.strategies import select, margin
    sel = select("margin", 100, candidates, rng=np.random.default_rng(0), probs=probs)

Strategies never read the store; vectors come through a reader protocol
(:class:`VectorReader`) or a plain 2-D array.
"""

from longtail.strategies._base import ArrayVectors, Selection, Strategy, VectorReader
from longtail.strategies.combine import class_rarity, validate_config
from longtail.strategies.registry import STRATEGIES, register, select
from longtail.strategies.representative import typicality
from longtail.strategies.scores import (
    bald,
    confidence,
    entropy,
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
