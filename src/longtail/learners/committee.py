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
    """Fit ``m`` learners, each on a class-stratified bootstrap resample: each class's
    rows drawn with replacement as many times as it has rows, so every member sees every
    labeled class.

    A plain bootstrap misses a class with k labels with probability about e^-k; the
    member then gives that class probability 0 everywhere, and disagreement scores (mean
    KL, BALD) rank easy samples of thinly labeled classes first. ``learner_factory``
    makes a fresh unfitted learner per call (or is a name for ``make_learner``). ``X``
    (n, d), ``y`` (n,); ``rng`` a seeded Generator (or seed). Time m × one fit; memory
    one resampled copy of X at a time.
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
    _, codes = np.unique(y, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(codes.max() + 1))
    # per position in `order`: where its class starts there and how many rows it has
    class_start = starts[sorted_codes]
    class_size = np.diff(np.append(starts, n))[sorted_codes]
    members = []
    for _ in range(int(m)):
        # a draw from each row's own class: the class's start plus a uniform offset in it
        offsets = (rng.random(n) * class_size).astype(np.int64)
        rows = np.sort(order[class_start + offsets])
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
