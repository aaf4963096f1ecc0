"""Annotator pools: who labels at which hourly rate, and which samples need whom.

A pool has a name, a rate in money per hour, its members (annotator names as label
events record them) and requirements: `where` rules (`label=fraud`, or a metadata
`KEY=VALUE` such as `intent=fraud`) naming samples only that pool may label. One pool
may be the default, the pool of an annotator who belongs to none.

The pool that prices an event (`event_pool`): the annotator's own pool when they
belong to one (what was paid); else the pool the sample requires (an event with no
annotator, e.g. an import of a vendor's file); else the default pool; else none (the
event's seconds are counted, its money is not). Pure: no store, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from longtail.errors import InputError

__all__ = ["Pool", "parse_rate", "parse_where", "pools_from_setting", "pools_to_setting",
           "event_pool", "required_pool"]

_UNITS = {"h": 1.0, "hr": 1.0, "hour": 1.0, "min": 60.0, "m": 60.0, "minute": 60.0,
          "s": 3600.0, "sec": 3600.0, "second": 3600.0}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Pool:
    """One pool: `rate` is money per hour; `where` is a tuple of (key, value) rules, a
    sample matching any of them needs this pool."""

    name: str
    rate: float
    members: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate, "members": list(self.members),
                "where": [f"{k}={v}" for k, v in self.where], "default": self.default}


def parse_rate(text: str | float) -> float:
    """Money per hour from '20/h', '20/hour', '0.5/min', '$20/h' or a bare number (per
    hour); an InputError naming the value otherwise (negative, not a number)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, per = float(text), 1.0
    else:
        m = re.fullmatch(r"\s*\$?\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(?:/\s*([A-Za-z]+))?\s*",
                         str(text))
        unit = (m.group(2) or "h").lower().rstrip("s") if m else None
        if unit == "":  # "s" stripped to nothing
            unit = "s"
        if m is None or unit not in _UNITS:
            raise InputError(f"rate {text!r} is not a rate: write money per hour, e.g. 20/h, "
                             "80/hour or 0.5/min")
        value, per = float(m.group(1)), _UNITS[unit]
    if not math.isfinite(value) or value < 0:
        raise InputError(f"rate {text!r} must be a finite number >= 0")
    return value * per


def parse_where(text: str) -> tuple[str, str]:
    """'KEY=VALUE' as (key, value); 'label=X' means the sample's class is X."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise InputError(f"--where {text!r}: write KEY=VALUE, e.g. label=fraud or intent=fraud")
    return key.strip(), value.strip()


def check_name(name: str) -> str:
    """A pool name: letters, digits, '_', '.', '-', at most 64."""
    if not _NAME.match(name or ""):
        raise InputError(f"pool name {name!r}: use letters, digits, '_', '.' or '-' (at most 64)")
    return name


def pools_from_setting(value: Sequence[Mapping] | None) -> list[Pool]:
    """Pools as the `pools` setting keeps them (a list of dicts)."""
    out = []
    for p in value or []:
        where = tuple(parse_where(w) for w in p.get("where", []))
        out.append(Pool(name=p["name"], rate=float(p["rate"]),
                        members=tuple(p.get("members", [])), where=where,
                        default=bool(p.get("default", False))))
    return out


def pools_to_setting(pools: Sequence[Pool]) -> list[dict]:
    return [p.to_dict() for p in pools]


def _matches(rule: tuple[str, str], label: str | None, meta: Mapping[str, Any]) -> bool:
    key, value = rule
    if key == "label":
        return label is not None and label == value
    got = meta.get(key)
    return got is not None and str(got) == value


def required_pool(pools: Sequence[Pool], label: str | None,
                  meta: Mapping[str, Any] | None = None) -> Pool | None:
    """The first pool whose `where` rules match the sample (its label, its metadata)."""
    meta = meta or {}
    for p in pools:
        if any(_matches(rule, label, meta) for rule in p.where):
            return p
    return None


@dataclass
class PoolIndex:
    """Pools with their members looked up by name (one dict probe per event)."""

    pools: Sequence[Pool]
    by_member: dict[str, Pool] = field(default_factory=dict)
    default: Pool | None = None

    def __post_init__(self) -> None:
        for p in self.pools:
            for m in p.members:
                self.by_member.setdefault(m, p)
        self.default = next((p for p in self.pools if p.default), None)


def event_pool(index: PoolIndex, annotator: str | None, label: str | None,
               meta: Mapping[str, Any] | None = None) -> Pool | None:
    """The pool that prices one event (see the module docstring for the order)."""
    if annotator is not None and annotator in index.by_member:
        return index.by_member[annotator]
    return required_pool(index.pools, label, meta) or index.default
