"""``auto``'s arms: how an arm is registered, when it is allowed, and how it is rewarded.

An *arm* is a selector ``fn(ctx: Context) -> Selection`` that ``auto``'s bandit may
play. Each round ``auto`` builds a :class:`Situation` (phase, labels per class, pool
size, what the caller passed), keeps the registered arms whose ``allowed(situation)``
is true, and plays the one with the highest upper confidence bound on its reward; an
allowed arm never measured gets one try, and ties (or no reward yet) go to the
allowed arm with the lowest ``rank``.

Adding an arm is one call, next to the selector (no edit of ``auto.py``)::

    from longtail.strategies.arms import register_arm

    register_arm(
        "cost_margin", select_cost_margin, family="informative", rank=25,
        allowed=lambda s: s.phase in ("transition", "informative") and s.has("costs"),
        doc="margin per predicted second of labeling",
    )

and an import of its module where the registry is built (``strategies/registry.py``
imports the strategy modules, so an arm registered there is known to ``auto``).

- ``family``: "representative" (coverage-like: what pays with few labels) or
  "informative" (model-driven); ``auto``'s phase decides which families are open (see
  ``auto.py``); "any" is open whenever a model exists.
- ``allowed``: a pure predicate of the :class:`Situation`; use it for what the arm
  needs (``s.has("costs")``, ``s.has("committee")``) and for pool-size limits (``s.large``).
- ``rank``: the preference among allowed arms before any reward is measured (lower
  first; the built-in arms use 10-40).
- ``reward``: a function of one history entry (a round) to a float or None (not
  measurable). Every arm's rewards are compared with each other, so they must share a
  scale: the default :func:`gain_per_efold` (metric gained per e-fold of labels). An arm
  with its own reward must keep that scale (e.g. gain per e-fold of *money* when every
  arm is rewarded per money; then register all arms' reward through
  :func:`set_default_reward`).

The registry is module state, written only at import (like :data:`STRATEGIES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from longtail.strategies._base import Context, Selection

FAMILIES = ("representative", "informative", "any")


@dataclass(frozen=True)
class Situation:
    """What an arm's ``allowed`` predicate may look at this round.

    phase : "cold_start" | "no_vectors" | "representative" | "transition" | "informative".
    labels_per_class : labeled rows / classes. large : the pool is over the kNN-graph
    sample (coverage arms then see a sample). ctx : the round's full context (read only).
    """

    phase: str
    labels_per_class: float
    large: bool
    ctx: Context = field(repr=False)

    def has(self, need: str) -> bool:
        """Whether the caller passed ``need`` ("probs", "vectors", "committee", "costs")."""
        attr = {"committee": "committee_probs"}.get(need, need)
        return getattr(self.ctx, attr, None) is not None


def gain_per_efold(entry: dict) -> float | None:
    """A round's measured reward: ``(metric_after - metric_before) / ln(n_after /
    n_before)``, metric gained per e-fold of labels (comparable across rounds because
    learning curves are roughly linear in log labels); None when not measurable."""
    try:
        before, after = entry.get("metric_before"), entry.get("metric_after")
        n0, n1 = int(entry.get("n_labels_before", 0)), int(entry.get("n_labels_after", 0))
    except (TypeError, ValueError):
        return None
    if before is None or after is None or n0 <= 0 or n1 <= n0:
        return None
    if not (math.isfinite(float(before)) and math.isfinite(float(after))):
        return None
    return (float(after) - float(before)) / math.log(n1 / n0)


Reward = Callable[[dict], "float | None"]


@dataclass(frozen=True)
class Arm:
    """One registered arm (see the module doc)."""

    name: str
    fn: Callable[[Context], Selection]
    family: str
    allowed: Callable[[Situation], bool]
    rank: int
    doc: str
    reward: Reward | None = None  # None: the registry's default reward

    def reward_of(self, entry: dict) -> float | None:
        return (self.reward or _DEFAULT_REWARD[0])(entry)


ARMS: dict[str, Arm] = {}
_DEFAULT_REWARD: list[Reward] = [gain_per_efold]


def register_arm(name: str, fn: Callable[[Context], Selection], *, family: str,
                 allowed: Callable[[Situation], bool] | None = None, rank: int = 50,
                 doc: str = "", reward: Reward | None = None) -> Arm:
    """Make ``fn`` an arm of ``auto`` (see the module doc). Re-registering a name
    replaces it. ``allowed`` None: allowed whenever its family is open."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    arm = Arm(name=name, fn=fn, family=family, allowed=allowed or (lambda s: True),
              rank=int(rank), doc=doc, reward=reward)
    ARMS[name] = arm
    return arm


def set_default_reward(reward: Reward) -> None:
    """Replace the reward of every arm registered without its own (one scale for all)."""
    _DEFAULT_REWARD[0] = reward


def allowed_arms(situation: Situation, open_families: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the arms allowed in ``situation`` whose family is open, by rank."""
    out = [a for a in ARMS.values()
           if (a.family in open_families or a.family == "any" and situation.phase not in
               ("cold_start",)) and a.allowed(situation)]
    return tuple(a.name for a in sorted(out, key=lambda a: (a.rank, a.name)))


def arm_reward(entry: dict) -> float | None:
    """The reward of one history entry under its arm's reward (None: unknown arm or not
    measurable)."""
    arm = ARMS.get(entry.get("arm", ""))
    return None if arm is None else arm.reward_of(entry)
