"""Label use cases: record label events (labels, skips, unsure), and the label schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from longtail.errors import InputError

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


def record_labels(store: Any, events: Sequence[LabelEvent], *, source: str = "human",
                  where: str = "labels") -> LabelsRecorded:
    """Append label events in one transaction, all-or-nothing. Unknown ids, and labels
    outside a closed label schema, are an error naming them; a label equal to the current
    one is not recorded again, so re-importing a file changes nothing."""
    if not events:
        raise InputError(f"{where}: the file has no rows")
    for e in events:
        if e.kind not in KINDS:
            raise InputError(f"{where}: id {e.id!r}: unknown event kind {e.kind!r} "
                             f"(one of {', '.join(KINDS)})")
    rows_of = store.ids_to_rows([e.id for e in events])
    unknown = sorted({e.id for e in events if e.id not in rows_of})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise InputError(f"{where}: {len(unknown)} unknown id(s): {shown}{more}")
    with store.unit_of_work() as uow:
        allowed = uow.label_set.get()
        labels = [e.label for e in events if e.kind == "label"]
        if allowed is not None:
            bad = sorted({lab for lab in labels if lab not in set(allowed)})
            if bad:
                raise InputError(f"{where}: {len(bad)} label(s) outside the project's label set: "
                                 f"{', '.join(map(repr, bad[:10]))}; allowed: "
                                 f"{', '.join(allowed)} (`longtail labels add` extends it)")
        # Only the rows these events touch: a label request stays O(its rows), not
        # O(every label in the project).
        touched = sorted({rows_of[e.id] for e in events})
        current = uow.labels.current(touched)
        # Per annotator: a label its annotator already gave is not recorded again, while
        # another annotator's agreeing label is (agreement and majority need it).
        given = uow.consensus.by_annotator(touched)
        # A relabel item of an open round is answered even by the label it already has
        # (a second look that confirms it is an event; the round waits for it).
        awaiting = uow.rounds.awaiting_relabel(touched)
        known_classes = uow.labels.classes()
        out: list[dict] = []
        new = changed = skipped = unsure = 0
        for e in events:
            row = rows_of[e.id]
            if e.kind == "label":
                if (current.get(row) if e.annotator is None
                        else given.get((row, e.annotator))) == e.label \
                        and row not in awaiting:
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
                        "source": source})
        uow.labels.add(out)
        closed = uow.rounds.close_done()
    new_classes = sorted({lab for lab in labels if lab not in known_classes})
    warnings = []
    if new_classes and known_classes and allowed is None:
        warnings.append(_new_class_warning(new_classes, known_classes))
    return LabelsRecorded(rows=len(events), new_labels=new, changed=changed,
                          unchanged=len(events) - new - changed - skipped - unsure,
                          skipped=skipped, unsure=unsure, new_classes=new_classes,
                          closed_rounds=closed, warnings=warnings, file=where)


def _new_class_warning(new: list[str], known: set[str]) -> str:
    lower = {k.casefold(): k for k in known}
    typos = [n for n in new if n.casefold() in lower or n.strip() != n]
    msg = f"{len(new)} new class(es): {', '.join(new[:10])}"
    if typos:
        pairs = [f"{t!r} vs {lower.get(t.casefold(), t.strip())!r}" for t in typos[:5]]
        msg += f" — a typo? ({', '.join(pairs)})"
    return msg + " (fix the label set with `longtail labels set`)"


def label_set(store: Any) -> list[str] | None:
    """The project's allowed labels, or None for an open schema."""
    with store.unit_of_work() as uow:
        return uow.label_set.get()


def set_label_set(store: Any, labels: Sequence[str], *, add: bool = False) -> list[str]:
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
            raise InputError(f"labels already in use are not in the set: {', '.join(outside)}")
        uow.label_set.set(new)
    return new
