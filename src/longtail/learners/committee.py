"""Committees of learners (query by bagging): bootstrap members, aligned probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.learners.base import Learner, make_learner


def bootstrap_committee(
    learner_factory: Callable[[], Learner] | str,
    X: Any,
    y: Any,
    m: int = 5,
    rng: np.random.Generator | int | None = None,
) -> list[Learner]:
    """Fit ``m`` learners, each on a bootstrap resample (n rows drawn with replacement).

    ``learner_factory`` makes a fresh unfitted learner per call (or is a name for
    ``make_learner``). ``X`` (n, d), ``y`` (n,); ``rng`` a seeded Generator (or seed).
    A member may miss rare classes; ``committee_probs`` aligns them.
    Time m × one fit; memory one resampled copy of X at a time.
    """
    if isinstance(learner_factory, str):
        name = learner_factory
        learner_factory = lambda: make_learner(name)  # noqa: E731
    if int(m) != m or m < 1:
        raise InputError(f"bootstrap_committee: m must be a positive integer, got {m!r}")
    y = np.asarray(y)
    n = y.shape[0]
    if n == 0:
        raise InputError("bootstrap_committee: no labeled samples to train on")
    if len(X) != n:
        raise InputError(f"bootstrap_committee: {len(X)} rows in X but {n} labels")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    members = []
    for _ in range(int(m)):
        rows = np.sort(rng.integers(0, n, size=n))
        members.append(learner_factory().fit(np.asarray(X[rows]), y[rows]))
    return members


def committee_probs(
    learners: Sequence[Learner],
    X: Any,
    classes: Sequence | np.ndarray | None = None,
) -> np.ndarray:
    """Each member's class probabilities on ``X`` (n, d), aligned: (m, n, C).

    Column c is ``classes[c]`` for every member; a member that never saw a class
    gives it probability 0. ``classes`` defaults to the sorted union of the
    members' ``classes_``; a member class outside ``classes`` is a ValueError.
    O(m·n·C) memory: chunk X for large pools.
    """
    if not learners:
        raise InputError("committee_probs: the committee has no members")
    if classes is None:
        classes = np.unique(np.concatenate([np.asarray(lr.classes_) for lr in learners]))
    classes = np.asarray(classes)
    position = {c: i for i, c in enumerate(classes.tolist())}
    if len(position) != classes.size:
        raise ValueError("committee_probs: classes contains duplicates")
    out: np.ndarray | None = None
    for j, learner in enumerate(learners):
        probs = np.asarray(learner.predict_proba(X))
        member_classes = np.asarray(learner.classes_).tolist()
        missing = [c for c in member_classes if c not in position]
        if missing:
            raise ValueError(f"committee_probs: member {j} predicts classes {missing} "
                             "that are not in classes")
        if out is None:
            dtype = np.float32 if probs.dtype == np.float32 else np.float64
            out = np.zeros((len(learners), probs.shape[0], classes.size), dtype=dtype)
        out[j][:, [position[c] for c in member_classes]] = probs
    return out
