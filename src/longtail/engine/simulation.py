"""The simulate use case: backtest a strategy from 0 labels with an oracle that answers
from a metadata column (or the current labels). Writes nothing to the project."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.store import Store


@dataclass(frozen=True)
class Simulation(Record):
    """`longtail simulate`: one learning curve per seed (`runs`: labels, eval and test
    accuracy by round), and what was simulated on."""

    strategy: str
    batch: int
    budget: int
    seeds: int
    truth: str
    pool: int
    eval: int
    runs: list[dict[str, Any]]


def simulate(store: Store, settings: Settings, truth: str, *, strategy: str = "auto",
             batch: int = 100, budget: int = 1000, seeds: int = 1,
             test: str | Path | tuple[np.ndarray, np.ndarray] | None = None,
             test_label: str = "label", test_text: str | None = "text",
             control_share: float = 0.0, encoder: str | None = None,
             on_round: Callable[[int, dict], None] | None = None) -> Simulation:
    """Run the loop `seeds` times from 0 labels, rounds of `batch` up to `budget`
    labels paid, each batch split as `query` splits it. `truth` is the oracle: a
    metadata column holding the true label, "label" for the imported labels, or a
    label file (CSV, JSONL or Parquet with `id` and `label` columns). An unknown column
    is an error, never a fallback. Each round is scored on the held-out truth (the rows
    the run never labeled), and on `test` when given, with n beside each figure."""
    from longtail.loop.simulate import simulate_run

    for name, value, low in (("batch", batch, 1), ("budget", budget, 1), ("seeds", seeds, 1)):
        if value < low:
            raise InputError(f"--{name} must be >= {low}, got {value}")
    if not 0.0 <= control_share <= 1.0:
        raise InputError(f"control share must be between 0 and 1, got {control_share}")
    from longtail.encoders import check_not_features

    with store.reading() as uow:
        vs = views.vectors(uow, settings, encoder)
        info = uow.vectors.info(vs.directory.name)
        check_not_features(vs.directory.name, (info or {}).get("config"), [truth], role="truth")
        current = uow.labels.current() if truth == "label" else {}
        pool_rows, eval_split = uow.samples.rows_by_split("pool"), uow.samples.rows_by_split("eval")
    n = vs.n_rows
    gold = np.full(n, None, dtype=object)
    if truth == "label":
        for r, lab in current.items():
            gold[r] = lab
    elif Path(truth).suffix.lower() in (".csv", ".jsonl", ".parquet", ".tsv"):
        _truth_from_file(store, Path(truth), gold)
    else:
        seen_column = False
        with store.reading() as uow:
            for chunk in uow.samples.iter(batch_rows=8192):
                for r, _, _, meta in chunk:
                    if truth in meta:
                        seen_column = True
                        gold[r] = meta[truth]
            first = next(iter(uow.samples.iter(batch_rows=200)), [])
        if not seen_column:
            columns = sorted({k for _, _, _, m in first for k in m})
            raise InputError(f"no column {truth!r} among the samples' metadata (columns: "
                             f"{', '.join(columns) or 'none'}); use --truth label for the "
                             "imported labels")
    known = np.array([g is not None and g != "" for g in gold])
    if not known.any():
        raise InputError(f"no ground truth: no sample has a value in {truth!r}")
    gold = np.array([str(g) if g is not None else "" for g in gold], dtype=object)
    pool = np.intersect1d(pool_rows, np.flatnonzero(known))
    eval_rows = np.intersect1d(eval_split, np.flatnonzero(known))
    test_xy = None
    if isinstance(test, tuple):
        test_xy = (np.asarray(test[0], np.float32), np.asarray(test[1]).astype(str))
    elif test is not None:
        from longtail.ingest.labeled_file import read_labeled_file
        from longtail.store.files import labeled_file_cache

        X, y = read_labeled_file(test, encoder_name=vs.directory.name,
                                 encoder_config=info["config"], dim=info["dim"], id="id",
                                 text=test_text, label=test_label, vector=None,
                                 vector_prefix=None, cache=labeled_file_cache(store.root))
        test_xy = (X, y.astype(str))
    runs = []
    for seed in range(seeds):
        curve = simulate_run(
            vs, pool, gold, strategy=strategy, batch=batch, budget=budget, seed=seed,
            learner=settings.learner, learner_params=settings.learner_params or None,
            eval_rows=eval_rows, test=test_xy, control_share=control_share,
            eval_share=settings.eval_share, eval_halfwidth=settings.eval_halfwidth,
            on_round=(lambda point, s=seed: on_round(s, point)) if on_round else None)
        runs.append({"seed": seed, **curve})
    return Simulation(strategy=strategy, batch=batch, budget=budget, seeds=seeds, truth=truth,
                      pool=int(len(pool)), eval=int(len(eval_rows)), runs=runs)


def _truth_from_file(store: Store, path: Path, gold: np.ndarray) -> None:
    """Fill `gold` from a label file's `id` and `label` columns (the ids of the pool;
    unknown ids are an error naming the first few)."""
    from longtail.ingest.labels import read_label_records

    if not path.exists():
        raise InputError(f"{path}: no such truth file")
    records = [r for r in read_label_records(path) if r.kind == "label"]
    with store.unit_of_work() as uow:
        rows = uow.samples.ids_to_rows([r.id for r in records])
    unknown = [r.id for r in records if r.id not in rows]
    if unknown:
        raise InputError(f"{path}: {len(unknown)} id(s) are not in the project, e.g. "
                         f"{', '.join(map(repr, unknown[:3]))}")
    for r in records:
        if rows[r.id] < len(gold):
            gold[rows[r.id]] = r.label
