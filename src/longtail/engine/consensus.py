"""Consensus and annotators: which label a sample's events resolve to, and how far
annotators agree.

Label events stay append-only; the consensus policy (latest, majority, trusted
annotator) is a project setting that decides each sample's current label, and
changing it commits a new dataset version instead of rewriting anything.

Agreement is measured on each annotator's latest label per sample: Cohen's kappa for
every pair of annotators that labeled common samples, Krippendorff's alpha (nominal)
over all of them, and per-class agreement from alpha's coincidence matrix (the share
of a class's pairable values that another annotator matched). Intervals are 95%
bootstrap percentiles over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from longtail.crashpoints import crashpoint
from longtail.engine.records import Record
from longtail.evaluation.stopping import coded_kappa
from longtail.store import Store
from longtail.store.repos_versions import check_policy

UNATTRIBUTED = "(none)"
MIN_OVERLAP = 2  # samples two annotators must share for a kappa


@dataclass(frozen=True)
class ConsensusPolicy(Record):
    """How labels from several annotators resolve: "latest", "majority", or "trusted"
    with its `annotators`, most trusted first."""

    OPTIONAL = ("annotators",)

    policy: str
    annotators: list[str] | None = None

    @classmethod
    def of(cls, stored: dict[str, Any]) -> ConsensusPolicy:
        got = stored.get("annotators")
        return cls(str(stored["policy"]), list(got) if got is not None else None)


@dataclass(frozen=True)
class PolicyChange(Record):
    """`longtail consensus POLICY`: the policy now, whether it changed, the dataset
    version committed under it, and how many samples' current label it moved."""

    OPTIONAL = ("previous",)

    policy: dict[str, Any]
    changed: bool
    version: int | None
    relabeled: int
    previous: dict[str, Any] | None = None


@dataclass(frozen=True)
class AnnotatorReport(Record):
    """`longtail annotators`: per annotator and per pair of annotators, with Cohen's
    kappa, Krippendorff's alpha over all of them, and per-class agreement."""

    policy: dict[str, Any]
    annotators: dict[str, dict[str, Any]]
    pairs: list[dict[str, Any]]
    krippendorff: dict[str, Any] | None
    per_class: dict[str, dict[str, Any]]
    bootstrap: int


def get_policy(store: Store) -> ConsensusPolicy:
    """The project's consensus policy."""
    with store.unit_of_work() as uow:
        return ConsensusPolicy.of(uow.consensus.policy())


def set_policy(store: Store, policy: str, annotators: Sequence[str] | None = None
               ) -> PolicyChange:
    """Change the consensus policy and commit a dataset version under it (one
    transaction). The same policy again changes nothing. Returns the policy, the
    version and how many samples' current label the change moved."""
    new = check_policy(policy, annotators)
    with store.unit_of_work() as uow:
        old = uow.consensus.policy()
        if new == old:
            latest = uow.versions.latest()
            return PolicyChange(new, False, latest["id"] if latest else None, 0)
        before = uow.consensus.labels(policy=old)
        uow.consensus.set_policy(new)
        crashpoint("consensus:in_tx")  # the policy written, its version not yet
        version = uow.versions.commit("policy")
        after = uow.versions.labels(version)
    moved = sum(1 for r, lab in after.items() if before.get(r) != lab)
    return PolicyChange(new, True, version["id"], moved, old)


def _latest_by_annotator(events: list[dict]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for e in events:
        if e["kind"] == "label" and e["annotator"] is not None:
            out.setdefault(e["annotator"], {})[int(e["row"])] = e["label"]
    return out


def _kappa_boot(a: np.ndarray, b: np.ndarray, n_classes: int, rng: np.random.Generator,
                n_boot: int) -> tuple[float | None, float | None]:
    n = len(a)
    if n_boot <= 0 or n < 2:
        return None, None
    vals = []
    for _ in range(n_boot):  # O(n) each; pairs share few items, so a loop is cheap
        idx = rng.integers(0, n, n)
        k = coded_kappa(a[idx], b[idx], n_classes)
        if k is not None:
            vals.append(k)
    if not vals:
        return None, None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def _unit_counts(by: dict[str, dict[int, str]], classes: dict[str, int]) -> np.ndarray:
    """units x classes: how many annotators gave each class to each sample that two or
    more annotators labeled (the pairable units of Krippendorff's alpha)."""
    rows: dict[int, np.ndarray] = {}
    for labels in by.values():
        for r, lab in labels.items():
            rows.setdefault(r, np.zeros(len(classes), dtype=np.float64))[classes[lab]] += 1
    units = [v for v in rows.values() if v.sum() >= 2]
    return np.array(units) if units else np.zeros((0, len(classes)))


def _alpha_parts(V: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For unit weights w (B x U): observed disagreement sum and class totals n_c
    (B x C) of the coincidence matrix."""
    m = V.sum(axis=1)
    d = (m**2 - (V**2).sum(axis=1)) / (m - 1)
    return w @ d, w @ V


def krippendorff_alpha(V: np.ndarray) -> float | None:
    """Nominal Krippendorff's alpha from units x classes value counts (units with two
    or more values); None when every value is the same class. O(U·C)."""
    if len(V) == 0:
        return None
    do, nc = _alpha_parts(V, np.ones((1, len(V))))
    n = nc.sum()
    expected = n**2 - (nc**2).sum()
    return None if expected <= 0 else float(1.0 - (n - 1) * do[0] / expected)


def _alpha_boot(V: np.ndarray, rng: np.random.Generator, n_boot: int
                ) -> tuple[float | None, float | None]:
    if n_boot <= 0 or len(V) < 2:
        return None, None
    vals: list[float] = []
    for start in range(0, n_boot, 100):  # 100 resamples at a time: O(100·U·C) memory
        b = min(100, n_boot - start)
        w = rng.multinomial(len(V), np.full(len(V), 1.0 / len(V)), size=b).astype(np.float64)
        do, nc = _alpha_parts(V, w)
        n = nc.sum(axis=1)
        expected = n**2 - (nc**2).sum(axis=1)
        ok = expected > 0
        vals += (1.0 - (n[ok] - 1) * do[ok] / expected[ok]).tolist()
    if not vals:
        return None, None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def _per_class(V: np.ndarray, names: list[str]) -> dict[str, dict]:
    """Per class: its pairable values and the share another annotator matched."""
    if len(V) == 0:
        return {}
    m = V.sum(axis=1, keepdims=True)
    occ = ((V**2 - V) / (m - 1)).sum(axis=0)
    nc = V.sum(axis=0)
    return {c: {"values": int(nc[i]), "agreement": float(occ[i] / nc[i])}
            for i, c in enumerate(names) if nc[i] > 0}


def annotator_report(store: Store, *, bootstrap: int = 1000, seed: int = 0) -> AnnotatorReport:
    """Per annotator: label, skip and unsure events, samples labeled, labels per class,
    seconds (total and median), agreement with the consensus label where others also
    labeled; Cohen's kappa per pair and Krippendorff's alpha over all, each with a 95%
    bootstrap interval (`bootstrap` resamples over samples); per-class agreement.
    O(events + pairs·overlap·bootstrap) time."""
    rng = np.random.default_rng(seed)
    with store.unit_of_work() as uow:
        events = uow.labels.events()
        current = uow.labels.current()
        policy = uow.consensus.policy()
    by = _latest_by_annotator(events)
    classes = sorted({e["label"] for e in events if e["kind"] == "label"})
    code = {c: i for i, c in enumerate(classes)}
    shared = {}
    for labels in by.values():
        for r in labels:
            shared[r] = shared.get(r, 0) + 1
    people: dict[str, dict] = {}
    for e in events:
        who = e["annotator"] if e["annotator"] is not None else UNATTRIBUTED
        p = people.setdefault(who, {"labels": 0, "skips": 0, "unsure": 0, "seconds": [],
                                    "classes": {}})
        key = {"label": "labels", "skip": "skips", "unsure": "unsure"}[e["kind"]]
        p[key] += 1
        if e["kind"] == "label":
            p["classes"][e["label"]] = p["classes"].get(e["label"], 0) + 1
        if e["seconds"] is not None:
            p["seconds"].append(float(e["seconds"]))
    report: dict[str, dict] = {}
    for who, p in sorted(people.items()):
        secs = p.pop("seconds")
        mine = by.get(who, {})
        multi = [r for r in mine if shared.get(r, 0) >= 2 and r in current]
        report[who] = {**p, "samples": len(mine),
                       "seconds_total": float(sum(secs)) if secs else None,
                       "seconds_median": float(np.median(secs)) if secs else None,
                       "agreement_with_consensus": (
                           float(np.mean([mine[r] == current[r] for r in multi])) if multi else None),
                       "shared_samples": len(multi)}
    pairs = []
    for x, y in combinations(sorted(by), 2):
        common = sorted(set(by[x]) & set(by[y]))
        if len(common) < MIN_OVERLAP:
            continue
        a = np.array([code[by[x][r]] for r in common])
        b = np.array([code[by[y][r]] for r in common])
        lo, hi = _kappa_boot(a, b, len(classes), rng, bootstrap)
        pairs.append({"a": x, "b": y, "samples": len(common),
                      "agreement": float(np.mean(a == b)),
                      "kappa": coded_kappa(a, b, len(classes)), "lo": lo, "hi": hi})
    V = _unit_counts(by, code)
    alpha = None
    if len(by) >= 2 and len(V):
        lo, hi = _alpha_boot(V, rng, bootstrap)
        alpha = {"alpha": krippendorff_alpha(V), "lo": lo, "hi": hi, "samples": int(len(V)),
                 "annotators": len(by)}
    return AnnotatorReport(policy, report, pairs, alpha, _per_class(V, classes), bootstrap)
