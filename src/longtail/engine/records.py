"""Typed records the use cases return and the catalog keeps (round logs, history)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


class Record:
    """Base of the engine's typed results (dataclasses): `to_dict()` is the JSON form the
    CLI's --json prints and the service returns; the fields are the Python API. Fields
    named in `OPTIONAL` are left out of `to_dict()` while None (parts a result has only
    sometimes, such as a forecast's target)."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)  # type: ignore[call-overload]
        for name in self.OPTIONAL:
            if out.get(name) is None:
                out.pop(name, None)
        return out


@dataclass
class RoundLog:
    """What a round's log holds: the batch split, the strategy's own log, the labels that
    existed before it (the lift estimator trains on them), and its lift once measured."""

    strategy: str
    eval: int = 0
    control: int = 0
    selection: dict[str, Any] = field(default_factory=dict)
    annotations_before: int | None = None
    lift: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)  # why eval / control got their rows

    @property
    def arm(self) -> str:
        """The arm that picked the selected slice (auto's choice, or the strategy)."""
        return str(self.selection.get("arm", self.strategy))

    @classmethod
    def from_dict(cls, log: dict[str, Any] | None) -> RoundLog:
        log = dict(log or {})
        return cls(strategy=str(log.get("strategy", "")), eval=int(log.get("eval", 0)),
                   control=int(log.get("control", 0)), selection=dict(log.get("selection") or {}),
                   annotations_before=log.get("annotations_before"), lift=log.get("lift"),
                   warnings=list(log.get("warnings") or []), split=dict(log.get("split") or {}))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["lift"] is None:
            del out["lift"]
        return out


@dataclass(frozen=True)
class ArmOutcome:
    """One earlier round as `auto` sees it: its arm and the managed-eval metric before
    and after its labels were trained on (None when unmeasured)."""

    arm: str
    n_labels_before: int
    n_labels_after: int
    metric_before: float | None
    metric_after: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryResult:
    """A planned round: its rows in order with their kinds, the log, where it was written."""

    round_id: int
    rows: list[int]
    ids: list[str]
    kinds: list[str]
    log: dict
    out: str | None
    warnings: list[str] = field(default_factory=list)
    # Rows of kind "relabel": a label already given that cleanlab doubts (row, id,
    # given, suggested, self_confidence), to be labeled again.
    relabel: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)
