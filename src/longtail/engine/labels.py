"""Label use cases: record label events (labels, skips, unsure), and the label schema."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from longtail.errors import InputError
from longtail.store import Store, UnitOfWork

KINDS = ("label", "skip", "unsure")


@dataclass(frozen=True)
class LabelEvent:
    """One answer about one sample: a label, or a skip / unsure (never a class)."""

    id: str
    label: str | None
    kind: str = "label"
    annotator: str | None = None
    seconds: float | None = None


@dataclass
class LabelsRecorded:
    """What `record_labels` did: counts by outcome and what a person should look at."""

    rows: int
    new_labels: int
    changed: int
    unchanged: int
    skipped: int
    unsure: int
    new_classes: list[str] = field(default_factory=list)
    closed_rounds: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    file: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def label_key(label: str) -> str:
    """What two spellings of one label share: case, spaces, '_' and '-' ignored."""
    return re.sub(r"[\s_\-]+", "", label.casefold())


def closest_label(label: str, known: Iterable[str]) -> str | None:
    """The known label `label` is a near miss of (same but for case or spacing), else
    None."""
    key = label_key(label)
    return next((k for k in sorted(known) if k != label and label_key(k) == key), None)


class LabelNotAllowed(InputError):
    """Labels outside the project's closed label schema; `labels` the offending ones,
    `allowed` the schema (the service answers 422 with both). A label that is a near
    miss of an allowed one (case or spacing) is named with it."""

    def __init__(self, where: str, labels: list[str], allowed: list[str]):
        shown = []
        for lab in labels[:10]:
            near = closest_label(lab, allowed)
            shown.append(f"{lab!r} (did you mean {near!r}?)" if near else repr(lab))
        super().__init__(f"{where}: {len(labels)} label(s) outside the project's label set: "
                         f"{', '.join(shown)}; allowed: "
                         f"{', '.join(allowed)} (`longtail labels add` extends it)")
        self.labels = labels
        self.label = labels[0]
        self.allowed = allowed


def record_labels(store: Store | None, events: Sequence[LabelEvent], *, source: str = "human",
                  where: str = "labels", uow: UnitOfWork | None = None) -> LabelsRecorded:
    """Append label events in one transaction, all-or-nothing. Unknown ids, and labels
    outside a closed label schema, are an error naming them; a label equal to the current
    one is not recorded again, so re-importing a file changes nothing.

    With `uow`, the events are written inside that unit of work (the caller's
    transaction, which it commits or rolls back) instead of a new one."""
    if not events:
        raise InputError(f"{where}: the file has no rows")
    check_events(events, where)
    if uow is not None:
        return _record_ids(uow, events, source, where)
    if store is None:
        raise TypeError("record_labels needs a store or a unit of work")
    with store.unit_of_work() as own:
        return _record_ids(own, events, source, where)


def import_file(store: Store, path: str | Path, *, id: str = "id", label: str = "label",
                annotator: str | None = None, seconds: str | None = None,
                source: str = "human", where: str | None = None,
                annotator_name: str | None = None,
                delimiter: str | None = None) -> LabelsRecorded:
    """`longtail import-labels`: the labels of a CSV, JSONL or Parquet file (id,
    label[, annotator, seconds]; a blank label is a skip), all-or-nothing. `where`
    names the file in errors (default: its path). `annotator_name` is who gave every
    label of the file (`--annotator-name alice`), beside `annotator`, a column."""
    events = file_events(path, id=id, label=label, annotator=annotator, seconds=seconds,
                         annotator_name=annotator_name, delimiter=delimiter)
    return record_labels(store, events, source=source, where=where or str(Path(path)))


def file_events(path: str | Path, *, id: str = "id", label: str = "label",
                annotator: str | None = None, seconds: str | None = None,
                annotator_name: str | None = None,
                delimiter: str | None = None) -> list[LabelEvent]:
    """The label events of a CSV, JSONL or Parquet label file (read, not recorded: the
    service reads a file before it takes the writer). `annotator_name`: one annotator
    for every event (an error together with an `annotator` column)."""
    from longtail.ingest.labels import read_label_records

    if annotator_name is not None:
        annotator_name = annotator_name.strip()
        if not annotator_name:
            raise InputError("--annotator-name: give a name")
        if annotator is not None:
            raise InputError("--annotator (a column) and --annotator-name (one name for the "
                             "whole file): give one of them")
    records = read_label_records(path, id=id, label=label, annotator=annotator,
                                 seconds=seconds, delimiter=delimiter)
    return [LabelEvent(id=r.id, label=r.label, kind=r.kind,
                       annotator=annotator_name or r.annotator,
                       seconds=r.seconds) for r in records]


def check_events(events: Sequence[LabelEvent], where: str) -> None:
    """The checks an event passes before the catalog is read: a known kind, a label
    for a label event, a non-negative number of seconds."""
    for e in events:
        if e.kind not in KINDS:
            raise InputError(f"{where}: id {e.id!r}: unknown event kind {e.kind!r} "
                             f"(one of {', '.join(KINDS)})")
        if e.kind == "label" and not (isinstance(e.label, str) and e.label):
            raise InputError(f"{where}: id {e.id!r}: a label event needs a label")
        if e.seconds is not None and not (e.seconds >= 0 and math.isfinite(e.seconds)):
            raise InputError(f"{where}: id {e.id!r}: seconds must be a non-negative number, "
                             f"got {e.seconds}")


def _record_ids(uow: UnitOfWork, events: Sequence[LabelEvent], source: str, where: str) -> LabelsRecorded:
    rows_of = uow.samples.ids_to_rows(list({e.id: None for e in events}))
    unknown = sorted({e.id for e in events if e.id not in rows_of})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise InputError(f"{where}: {len(unknown)} unknown id(s): {shown}{more}")
    return record_rows(uow, [(rows_of[e.id], e) for e in events], source=source, where=where)


def record_rows(uow: UnitOfWork, events: Sequence[tuple[int, LabelEvent]], *, source: str = "human",
                where: str = "labels", round_id: int | None = None,
                close_rounds: bool = True) -> LabelsRecorded:
    """The one write path of label events, inside the caller's unit of work: events
    addressed by sample row (checked by `check_events` first). Labels outside a closed
    schema raise LabelNotAllowed; a label its annotator already gave the row (or, for an
    unattributed event, the row's current label) is not recorded again, while another
    annotator's agreeing label is (agreement, majority and the service's overlap count
    it). `round_id` is written on the events; `close_rounds` closes the open rounds
    with every item answered (the service closes its rounds by their task slots)."""
    # A label is its text without surrounding spaces (" class_1" is class_1).
    events = [(row, replace(e, label=e.label.strip()))
              if e.kind == "label" and isinstance(e.label, str) and e.label != e.label.strip()
              else (row, e) for row, e in events]
    allowed = uow.label_set.get()
    labels = [e.label for _, e in events if e.kind == "label"]
    if allowed is not None:
        allowed_set = set(allowed)
        bad = sorted({lab for lab in labels if lab not in allowed_set})
        if bad:
            raise LabelNotAllowed(where, bad, allowed)
    # Only the rows these events touch: a label request stays O(its rows), not
    # O(every label in the project).
    touched = sorted({row for row, _ in events})
    # Per annotator: a label its annotator already gave is not recorded again, while
    # another annotator's agreeing label is (agreement and majority need it). Both
    # from one read of the rows' events.
    current, given = uow.consensus.row_labels(touched)
    # A relabel item of an open round is answered even by the label it already has
    # (a second look that confirms it is an event; the round waits for it).
    awaiting = uow.rounds.awaiting_relabel(touched)
    out: list[dict] = []
    new = changed = skipped = unsure = 0
    for row, e in events:
        if e.kind == "label":
            if (current.get(row) if e.annotator is None
                    else given.get((row, e.annotator))) == e.label and row not in awaiting:
                continue
            awaiting.discard(row)
            if row not in current:
                new += 1
            elif current[row] != e.label:
                changed += 1
            current[row] = e.label
            given[(row, e.annotator)] = e.label
        elif e.kind == "skip":
            awaiting.discard(row)
            skipped += 1
        else:
            awaiting.discard(row)
            unsure += 1
        out.append({"row": row, "label": e.label if e.kind == "label" else "",
                    "kind": e.kind, "annotator": e.annotator, "seconds": e.seconds,
                    "source": source, "round_id": round_id})
    # Which of these labels no event gave before (new classes): asked before the
    # events are written, of these labels only (not every label in the project).
    distinct = sorted(set(labels))
    known_classes = uow.labels.seen(distinct) if distinct else set()
    # A label for a cancelled round's row is kept (it is a label), but said: the person
    # may be labeling a batch file the project gave up on.
    labeled_rows = [e["row"] for e in out if e["kind"] == "label"]
    cancelled = uow.rounds.cancelled_of(labeled_rows) if labeled_rows else {}
    uow.labels.add(out)
    closed: list[int] = []
    if close_rounds:
        # Rounds the service serves close by their task slots (overlap answers each);
        # the others when every item has an event.
        closed = uow.leases.settle_and_close(uow.rounds.planned_after(), touched)[1]
        closed += uow.rounds.close_done()
    new_classes = [lab for lab in distinct if lab not in known_classes]
    warnings = []
    if new_classes and allowed is None:
        # Against every class seen so far: only when there is something to warn about.
        everything = uow.labels.classes() - set(new_classes)
        if everything:
            warnings.append(_new_class_warning(new_classes, everything))
        warnings += _near_miss_warnings(new_classes, everything, labels)
    if cancelled:
        warnings.append(_cancelled_round_warning(cancelled))
    return LabelsRecorded(rows=len(events), new_labels=new, changed=changed,
                          unchanged=len(events) - new - changed - skipped - unsure,
                          skipped=skipped, unsure=unsure, new_classes=new_classes,
                          closed_rounds=closed, warnings=warnings, file=where)


def _cancelled_round_warning(cancelled: dict[int, int]) -> str:
    by_round: dict[int, int] = {}
    for rid in cancelled.values():
        by_round[rid] = by_round.get(rid, 0) + 1
    parts = [f"{n} for round {rid}" for rid, n in sorted(by_round.items())]
    return (f"{len(cancelled)} label(s) are for rows of a cancelled round ({', '.join(parts)}): "
            "recorded as labels, the round stays cancelled (`longtail rounds`)")


def _new_class_warning(new: list[str], known: set[str]) -> str:
    return (f"{len(new)} new class(es): {', '.join(map(repr, new[:10]))}"
            + (f" and {len(new) - 10} more" if len(new) > 10 else "")
            + " (`longtail labels set` closes the label set)")


def _near_miss_warnings(new: list[str], known: set[str], given: list[str]) -> list[str]:
    """One loud line per new class that is a near miss (case or spacing) of a known
    class, or of a more frequent new one of the same import, with the fix."""
    freq: dict[str, int] = {}
    for lab in given:
        freq[lab] = freq.get(lab, 0) + 1
    out = []
    for lab in new:
        near = closest_label(lab, known)
        if near is None:  # two spellings new together: the more frequent is the class
            peers = [o for o in new if o != lab and label_key(o) == label_key(lab)]
            near = max(peers, key=lambda o: (freq.get(o, 0), o), default=None)
            if near is not None and (freq.get(near, 0), near) < (freq.get(lab, 0), lab):
                continue  # this one is the majority spelling; the other gets the line
        if near is not None:
            out.append(f"WARNING: label {lab!r} ({freq.get(lab, 0)} row(s)) is not a known "
                       f"class but looks like {near!r} (case or spacing differs): recorded "
                       f"as a new class. If it is a typo: longtail labels rename "
                       f"{shlex.quote(lab)} {shlex.quote(near)}")
    return out


def label_set(store: Store) -> list[str] | None:
    """The project's allowed labels, or None for an open schema."""
    with store.reading() as uow:
        return uow.label_set.get()


def set_label_set(store: Store, labels: Sequence[str], *, add: bool = False) -> list[str]:
    """Close the schema to `labels` (or add them to it). Labels already given that fall
    outside the new set are an error naming them: a schema never hides existing labels."""
    labels = [str(x).strip() for x in labels]
    if not labels or any(not x for x in labels):
        raise InputError("a label set is a non-empty list of non-empty labels")
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise InputError(f"duplicate label(s) in the set: {', '.join(dup)}")
    with store.unit_of_work() as uow:
        old = uow.label_set.get() or []
        new = list(dict.fromkeys([*old, *labels])) if add else labels
        used = set(uow.labels.current().values())
        outside = sorted(used - set(new))
        if outside:
            fixes = [f"longtail labels rename {shlex.quote(o)} {shlex.quote(near)}"
                     for o in outside if (near := closest_label(o, new))]
            raise InputError(f"labels already in use are not in the set: "
                             f"{', '.join(map(repr, outside))}"
                             + (f"; to fix a typo: {'; '.join(fixes[:5])}" if fixes else ""))
        uow.label_set.set(new)
    return new


@dataclass
class LabelRenamed:
    """What `rename_label` did: the samples relabeled, the events written, the closed
    label set after it (None: open)."""

    old: str
    new: str
    samples: int
    events: int
    label_set: list[str] | None
    changed: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def rename_label(store: Store, old: str, new: str) -> LabelRenamed:
    """Every sample whose label is `old` gets `new` instead, as new label events (one per
    annotator who gave `old` as their latest answer, so history keeps both and
    per-annotator views agree), in one transaction; a closed label set has `old`
    replaced by `new`. An error when no sample has `old` as its label."""
    old, new = str(old).strip(), str(new).strip()
    if not old or not new:
        raise InputError("labels rename: give the old and the new label")
    if old == new:
        raise InputError(f"labels rename: {old!r} is already called that")
    with store.unit_of_work() as uow:
        rows = uow.labels.rows_with_label(old)
        current, given = uow.consensus.row_labels(rows) if rows else ({}, {})
        events = {(row, who) for (row, who), lab in given.items() if lab == old}
        attributed = {row for row, _ in events}
        # an unattributed label (an import without annotator) is the row's own
        events |= {(row, None) for row, lab in current.items()
                   if lab == old and row not in attributed}
        if not events:
            known = sorted(uow.labels.classes())
            near = closest_label(old, known)
            raise InputError(f"labels rename: no sample is labeled {old!r}"
                             + (f" (did you mean {near!r}?)" if near else "")
                             + f"; labels in use: {', '.join(map(repr, known[:20]))}")
        allowed = uow.label_set.get()
        if allowed is not None:
            uow.label_set.set(list(dict.fromkeys(new if a == old else a for a in allowed))
                              + ([new] if new not in allowed and old not in allowed else []))
        ids = {r: e for chunk in uow.samples.iter(sorted({r for r, _ in events}))
               for r, e, _, _ in chunk}
        done = record_rows(uow, [(row, LabelEvent(id=ids[row], label=new, annotator=who))
                                 for row, who in sorted(events, key=lambda x: (x[0], x[1] or ""))],
                           source="rename", where=f"labels rename {old} {new}")
    return LabelRenamed(old=old, new=new, samples=len({r for r, _ in events}),
                        events=len(events), label_set=None if allowed is None else
                        list(dict.fromkeys(new if a == old else a for a in allowed)),
                        changed=done.changed)
