"""An in-memory unit of work for use-case tests that are about the use case, not the
catalog: the repositories a use case touches, over plain Python lists and dicts, with
the same method names and return shapes as `longtail.store.uow.UnitOfWork`'s. The
catalog's own behaviour (SQL, transactions, both dialects) is tested in tests/store
and tests/engine on SQLite and PostgreSQL; a use case that passes here and there uses
only the repository API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class FakeSettings:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def all(self) -> dict[str, Any]:
        return dict(self.values)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


class FakeSamples:
    def __init__(self, splits: Sequence[str]) -> None:
        self.splits = list(splits)  # row -> split

    def count(self) -> int:
        return len(self.splits)

    def rows_by_split(self, split: str) -> np.ndarray:
        return np.array([r for r, s in enumerate(self.splits) if s == split], dtype=np.int64)

    def split_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.splits:
            out[s] = out.get(s, 0) + 1
        return out


class FakeLabels:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []  # (row, label), in time order

    def current(self, rows: Sequence[int] | None = None) -> dict[int, str]:
        out = {row: label for row, label in self.events}
        if rows is not None:
            wanted = {int(r) for r in rows}
            out = {r: v for r, v in out.items() if r in wanted}
        return dict(sorted(out.items()))


class FakeRounds:
    def __init__(self) -> None:
        self.rounds: list[dict] = []
        self.round_items: dict[int, list[tuple[int, int, str]]] = {}

    def add(self, strategy: str, params: dict, n_labels: int, log: dict,
            items: list[tuple[int, int, str]], model_id: int | None) -> int:
        round_id = len(self.rounds) + 1
        self.rounds.append({"id": round_id, "created_at": f"t{round_id}", "strategy": strategy,
                            "params": params, "model_id": model_id, "status": "open",
                            "n_labels": n_labels, "log": log})
        self.round_items[round_id] = list(items)
        return round_id

    def list(self) -> list[dict]:
        return [{**r, "size": len(self.round_items[r["id"]])} for r in self.rounds]

    def items(self, round_id: int) -> list[tuple[int, int, str]]:
        return list(self.round_items.get(round_id, []))

    def open_rows(self) -> np.ndarray:
        return np.array([row for r in self.rounds if r["status"] == "open"
                         for row, _, _ in self.round_items[r["id"]]], dtype=np.int64)

    def cancel(self, round_id: int) -> None:
        for r in self.rounds:
            if r["id"] == round_id and r["status"] == "open":
                r["status"] = "cancelled"


class FakeUnitOfWork:
    """Settings, samples (their splits), label events and rounds in memory."""

    def __init__(self, splits: Sequence[str], root: Path = Path(".")) -> None:
        self.root = root
        self.settings = FakeSettings()
        self.samples = FakeSamples(splits)
        self.labels = FakeLabels()
        self.rounds = FakeRounds()
