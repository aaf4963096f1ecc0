"""Likely label errors and the relabel queue.

`suspects` cross-fits the project's learner on every current label (pool and eval:
an eval label can be wrong too, and out-of-fold predictions never let a model score
a sample it was fitted on; the loop's models still never train on eval rows) and asks
cleanlab (`cleanlab.filter.find_label_issues`, confident learning) which given labels
the out-of-fold probabilities contradict, ranked by self-confidence (the probability
the cross-fitted model gives the given label, lowest first).

`relabel_queue` is what `query --relabel SHARE` draws from: the top suspects that are
neither queued in an open round nor already reviewed. A row is reviewed when a round
(not cancelled) queued it as a relabel item and an answer came; it is offered again
only if a newer label event arrived after that answer (someone changed it since, and
it is still suspect). The answers are ordinary label events; the consensus policy
decides the current label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.crashpoints import crashpoint
from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings, learner_spec
from longtail.errors import ProjectError
from longtail.store import Store, UnitOfWork

MIN_PER_CLASS = 2  # a class needs a label in every fold's training part


@dataclass(frozen=True)
class Suspects(Record):
    """`longtail suspects`: the labels out-of-fold predictions contradict (`suspects`:
    row, id, split, given, suggested, self_confidence; most likely error first), how many
    there are in all, and what the check ran on."""

    suspects: list[dict[str, Any]]
    n_suspects: int
    labels: int
    classes: list[str]
    left_out_classes: dict[str, int]
    folds: int
    learner: str
    encoder: str
    labels_fingerprint: str


@dataclass(frozen=True)
class RelabelPick(Record):
    """The suspects a round takes to relabel, and why there are not more."""

    rows: list[dict[str, Any]]
    reason: str


def suspects(store: Store, settings: Settings, *, limit: int | None = None,
             encoder: str | None = None, folds: int = 5, learner: str | None = None,
             learner_params: dict | None = None) -> Suspects:
    """Labeled samples whose given label the out-of-fold predictions contradict, most
    likely error first: each with its row, id, split, given label, suggested label (the
    cross-fitted model's top class) and self-confidence. Classes with fewer than 2 labels
    are left out (and listed); fewer than 2 classes left is a ProjectError saying what
    is missing. O(folds) fits on the labeled rows; memory O(labels·classes)."""
    from longtail.learners import make_learner
    from longtail.learners.crossfit import cross_fit_probs, stratified_folds

    if int(folds) < 2:
        raise ProjectError(f"suspects needs at least 2 folds, got {folds}")
    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder, complete=False)
        current = uow.labels.current()
    rows = np.array(sorted(r for r in current if r < vs.n_rows), dtype=np.int64)
    given = np.array([current[int(r)] for r in rows], dtype=object).astype(str)
    names, counts = np.unique(given, return_counts=True)
    thin = {str(c): int(n) for c, n in zip(names, counts, strict=True) if n < MIN_PER_CLASS}
    kept_classes = names[counts >= MIN_PER_CLASS]
    if len(kept_classes) < 2:
        have = ", ".join(f"{c} ({n})" for c, n in zip(names, counts, strict=True)) or "none"
        raise ProjectError(f"suspects needs labels of at least 2 classes with {MIN_PER_CLASS} or "
                           f"more labels each (labels per class: {have}); import more labels "
                           "first")
    keep = np.isin(given, kept_classes)
    rows, given = rows[keep], given[keep]
    # Each fold from scratch.
    spec = learner_spec(settings, learner, learner_params, from_scratch=True)
    spec_learner, params = spec.learner, spec.params
    k = int(min(folds, len(rows)))
    rng = np.random.default_rng([settings.seed, len(rows), 11])
    fold_of = stratified_folds(given, k, rng)
    probs = cross_fit_probs(lambda: make_learner(spec_learner, **params), vs.read(rows), given,
                            fold_of, classes=kept_classes)
    crashpoint("suspects:scored")  # a read-only command: killed anywhere, nothing changes
    labels = np.searchsorted(kept_classes, given)
    ranked = _find_label_issues(labels, probs)
    self_conf = probs[np.arange(len(rows)), labels]
    top = ranked if limit is None else ranked[:max(0, int(limit))]
    with store.reading() as uow:
        ids = _ids(uow, rows[top])
        eval_rows = uow.samples.rows_by_split("eval")
    in_eval = np.isin(rows[top], eval_rows)
    found = [{"row": int(rows[i]), "id": ids[int(rows[i])],
              "split": "eval" if in_eval[j] else "pool", "given": str(given[i]),
              "suggested": str(kept_classes[probs[i].argmax()]),
              "self_confidence": round(float(self_conf[i]), 4)}
             for j, i in enumerate(top.tolist())]
    return Suspects(suspects=found, n_suspects=int(len(ranked)), labels=int(len(rows)),
                    classes=[str(c) for c in kept_classes], left_out_classes=thin,
                    folds=k, learner=spec_learner, encoder=vs.directory.name,
                    labels_fingerprint=views.labels_fingerprint(rows, given))


def _find_label_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's confident-learning filter, ranked by self-confidence (lowest first)."""
    import warnings

    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        # cleanlab warns about thin classes in its own words; the report lists them.
        warnings.simplefilter("ignore")
        # n_jobs=1: no worker processes (the CLI and the service run it in-process).
        ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence",
                                   n_jobs=1)
    return np.asarray(ranked, dtype=np.int64)


def _ids(uow: UnitOfWork, rows: np.ndarray) -> dict[int, str]:
    return {int(b[0]): b[1] for chunk in uow.samples.iter(rows) for b in chunk}


def reviewed_rows(uow: UnitOfWork) -> set[int]:
    """Rows a relabel round (not cancelled) queued and that got an answer, with no label
    event newer than that answer; and rows queued as relabel items in an open round."""
    queued: dict[int, int] = {}  # row -> the latest queueing round's annotations_before
    for r in uow.rounds.list():
        if r["status"] == "cancelled":
            continue
        items = [row for row, _, kind in uow.rounds.items(r["id"]) if kind == "relabel"]
        before = int((r["log"] or {}).get("annotations_before") or 0)
        for row in items:
            queued[row] = max(before, queued.get(row, 0))
    if not queued:
        return set()
    out = set()
    events: dict[int, list[dict]] = {}
    for e in uow.labels.events(sorted(queued)):
        events.setdefault(int(e["row"]), []).append(e)
    for row, before in queued.items():
        after = [e["id"] for e in events.get(row, []) if e["id"] > before]
        answer = min(after) if after else None
        newer = [e["id"] for e in events.get(row, [])
                 if e["kind"] == "label" and answer is not None and e["id"] > answer]
        if not newer:
            out.add(row)
    return out


def relabel_queue(store: Store, settings: Settings, n: int, *, encoder: str | None = None
                  ) -> RelabelPick:
    """Up to `n` top suspects to relabel, most likely error first, none queued in an open
    round or already reviewed (see `reviewed_rows`), and why there are not more."""
    if n <= 0:
        return RelabelPick([], "no relabel share asked for")
    try:
        found = suspects(store, settings, encoder=encoder)
    except ProjectError as e:
        return RelabelPick([], f"no relabel rows: {e}")
    with store.reading() as uow:
        skip = set(uow.rounds.open_rows().tolist()) | reviewed_rows(uow)
    fresh = [s for s in found.suspects if s["row"] not in skip]
    reason = (f"{min(n, len(fresh))} of {found.n_suspects} suspects "
              f"({found.n_suspects - len(fresh)} queued or reviewed already)")
    return RelabelPick(fresh[:n], reason)
