"""The facade: one `Project` opens the store and calls the engine's use cases. It holds
no logic of its own: each method is one call into `longtail.engine`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# `data` and `labels` load in the methods that use them: `status` and `query` (the
# commands people run most) need neither, and their typed results cost start-up time.
from longtail.engine import rounds, views
from longtail.engine.costs import ComputeRates, metered
from longtail.engine.records import QueryResult
from longtail.engine.settings import DEFAULTS, Settings, check_settings
from longtail.errors import InputError
from longtail.store import Store

if TYPE_CHECKING:
    from longtail.engine import labels
    from longtail.engine.automation import RunReport
    from longtail.engine.consensus import AnnotatorReport, ConsensusPolicy, PolicyChange
    from longtail.engine.data import EmbedReport
    from longtail.engine.duplicates import DuplicateGroups
    from longtail.engine.eval_records import (
        EvalReport,
        ForecastReport,
        LearningCurves,
        StoppingAnswer,
    )
    from longtail.engine.history import RoundRecord
    from longtail.engine.integrity import IntegrityReport
    from longtail.engine.rounds import RoundChange, RoundSummary
    from longtail.engine.simulation import Simulation
    from longtail.engine.status import StatusReport
    from longtail.engine.suspects import Suspects
    from longtail.engine.tracking import TrackingStatus
    from longtail.engine.training import ReleaseReport, TrainReport
    from longtail.engine.transfer import TransferResult
    from longtail.engine.versions import DatasetVersion, VersionDiff, VersionExport

Progress = Callable[[int, int | None], None]

__all__ = ["DEFAULTS", "Project", "QueryResult"]


class Project:
    """A longtail project: a directory with a catalog (SQLite, or PostgreSQL) and vector files.

    >>> p = Project.init("my-project")
    >>> p.ingest("pool.csv", id="id", text="text")
    >>> p.embed("minilm"); p.import_labels("labels.csv"); p.train()
    >>> p.query(100, out="batch.csv")
    """

    def __init__(self, path: str | Path = "."):
        self.path = Path(path)
        self.store = Store.open(self.path)

    @classmethod
    def init(cls, path: str | Path = ".", *, labels: Sequence[str] | None = None,
             db: str | None = None, **settings: Any) -> Project:
        """Create a project; `labels` closes the label schema, `db` puts the catalog on
        a SQLAlchemy URL (PostgreSQL) instead of SQLite in the directory."""
        check_settings(settings)
        kwargs = {"db_url": db} if db else {}
        Store.create(path, {**DEFAULTS, "hashing": 2, **settings}, **kwargs).close()
        project = cls(path)
        if labels:
            project.set_labels(labels)
        return project

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def settings(self) -> dict[str, Any]:
        return self._settings().to_dict()

    def configure(self, key: str, value: Any) -> dict[str, Any]:
        """Set one project setting (checked like `init`'s), in one transaction; returns
        the setting's old and new value. `hashing` and `pools` are not set here (they
        have their own rules and commands)."""
        if key in ("hashing", "pools", "schema_version"):
            raise InputError(f"{key!r} is not set by hand"
                             + (": use `longtail pools`" if key == "pools" else ""))
        if key not in DEFAULTS:
            raise InputError(f"unknown setting {key!r}; settings: "
                             f"{', '.join(sorted(k for k in DEFAULTS if k not in ('hashing', 'pools')))}")
        check_settings({key: value})
        with self.store.unit_of_work() as uow:
            old = uow.settings.get(key, DEFAULTS[key])
            uow.settings.set(key, value)
        return {"key": key, "old": old, "new": value}

    def _settings(self) -> Settings:
        return Settings.load(self.store)

    # -- data in -----------------------------------------------------------------------

    @metered("ingest")
    def ingest(self, path: str | Path, *, id: str = "id", text: str | None = None,
               label: str | None = None, vector: str | None = None,
               vector_prefix: str | None = None, metadata: list[str] | None = None,
               update: bool = False, vector_dtype: str | None = None,
               progress: Progress | None = None, delimiter: str | None = None,
               folder_labels: bool = False) -> Any:
        """Add a CSV, JSONL or Parquet file, or a folder of images, to the pool,
        all-or-nothing (a CSV's `delimiter` sniffed among , ; tab | unless given;
        `folder_labels`: class sub-folders become import labels)."""
        from longtail.engine import data

        return data.ingest(self.store, self._settings(), path, id=id, text=text, label=label,
                           vector=vector, vector_prefix=vector_prefix, metadata=metadata,
                           update=update, vector_dtype=vector_dtype, progress=progress,
                           delimiter=delimiter, folder_labels=folder_labels)

    @metered("embed")
    def embed(self, encoder: str = "minilm", *, batch_rows: int = 512, dtype: str | None = None,
              progress: Progress | None = None, on_phase: Callable[[str], None] | None = None,
              encoder_impl: Any = None, engine: str = "local", **params: Any) -> EmbedReport:
        """Compute vectors for every sample that has none for `encoder` (resumable);
        `engine="ray"` encodes as a Ray Data job."""
        from longtail.engine import data

        return data.embed(self.store, self._settings(), encoder, batch_rows=batch_rows,
                          dtype=dtype, progress=progress, on_phase=on_phase,
                          encoder_impl=encoder_impl, engine=engine, **params)

    @metered("import-labels")
    def import_labels(self, path: str | Path, *, id: str = "id", label: str = "label",
                      annotator: str | None = None, seconds: str | None = None,
                      source: str = "human", annotator_name: str | None = None,
                      delimiter: str | None = None) -> dict:
        """Record labels from a file (id, label[, annotator, seconds]), all-or-nothing.
        An empty label is a skip; unknown ids are an error listing them.
        `annotator_name` gives every label of the file one annotator (instead of an
        `annotator` column)."""
        from longtail.engine import labels

        return labels.import_file(self.store, path, id=id, label=label, annotator=annotator,
                                  seconds=seconds, source=source,
                                  annotator_name=annotator_name,
                                  delimiter=delimiter).to_dict()

    @metered("record-labels")
    def record_labels(self, events: Sequence[labels.LabelEvent], *, source: str = "human"
                      ) -> dict:
        """Record label events given in memory (the API and the service path)."""
        from longtail.engine import labels

        return labels.record_labels(self.store, events, source=source, where="labels").to_dict()

    def label_set(self) -> list[str] | None:
        """The allowed labels, or None for an open schema."""
        from longtail.engine import labels

        return labels.label_set(self.store)

    def set_labels(self, values: Sequence[str]) -> list[str]:
        """Close the label schema to `values`."""
        from longtail.engine import labels

        return labels.set_label_set(self.store, values)

    def add_labels(self, values: Sequence[str]) -> list[str]:
        """Add labels to the schema (closing it if it was open)."""
        from longtail.engine import labels

        return labels.set_label_set(self.store, values, add=True)

    def rename_label(self, old: str, new: str) -> dict:
        """Every sample labeled `old` gets `new`, as new label events (a typo fixed)."""
        from longtail.engine import labels

        return labels.rename_label(self.store, old, new).to_dict()

    # -- views -------------------------------------------------------------------------

    def encoder_name(self, encoder: str | None = None) -> str:
        settings = self._settings()
        with self.store.reading() as uow:
            return views.encoder_name(uow, settings, encoder)

    def vectors(self, encoder: str | None = None) -> Any:
        """The vector set of `encoder` (default: the project's), checked to cover every sample."""
        settings = self._settings()
        with self.store.reading() as uow:
            return views.vectors(uow, settings, encoder)

    def labeled(self, split: str = "pool") -> tuple[np.ndarray, np.ndarray]:
        """(rows, labels) of the samples of `split` that have a current label."""
        with self.store.reading() as uow:
            return views.labeled(uow, split)

    def candidates(self) -> np.ndarray:
        """Pool rows a strategy may pick (not labeled, not queued, never eval rows)."""
        with self.store.reading() as uow:
            return views.candidates(uow)

    # -- model -------------------------------------------------------------------------

    def model(self, model_id: int | None = None, *, round: int | None = None) -> Any:
        """A saved model loaded back (default: the latest; `round`: the model that
        round's labels trained), or None before any."""
        from longtail.engine.models import load_model

        if round is not None:
            return self.round_model(round)

        with self.store.reading() as uow:
            meta = None
            if model_id is not None:
                found = {m["id"]: m for m in uow.models.list()}
                if model_id not in found:
                    raise InputError(f"no model {model_id}")
                meta = found[model_id]
            return load_model(uow, meta)

    @metered("train")
    def train(self, *, encoder: str | None = None, warm_start: bool = True,
              learner: str | None = None, learner_params: dict | None = None,
              force: bool = False, mlflow: str | bool | None = None) -> TrainReport:
        """Fit the learner on every labeled pool sample, save it, score it on the eval set.
        `mlflow`: log the model to MLflow (True: the project's setting, else its
        mlruns/; or a directory or URI); default: the project's `mlflow` setting."""
        from longtail.engine.training import train

        return train(self.store, self._settings(), encoder=encoder, warm_start=warm_start,
                     learner=learner, learner_params=learner_params, force=force,
                     mlflow=mlflow)

    @metered("release")
    def release(self, *, encoder: str | None = None, learner: str | None = None,
                learner_params: dict | None = None, folds: int = 5) -> ReleaseReport:
        """The model to ship, fitted on every label (eval included), its accuracy by
        cross-fitting over the eval set; kept apart from the loop's models."""
        from longtail.engine.training import train_release

        return train_release(self.store, self._settings(), encoder=encoder, learner=learner,
                             learner_params=learner_params, folds=folds)

    @metered("transfer")
    def transfer(self, learner: str, *, learner_params: dict | None = None,
                 encoder: str | None = None) -> TransferResult:
        """Does selection's labeled set help another model family? Train `learner`
        (on `encoder`'s vectors, default the project's) on the selected labels and on an
        equal-size random set; the gain with its interval, recorded for status."""
        from longtail.engine.transfer import transfer

        settings = self._settings()
        with self.store.unit_of_work() as uow:  # one commit: the result it records
            return transfer(uow, settings, learner, learner_params, encoder=encoder)

    def release_model(self, release_id: int | None = None) -> Any:
        """A release model loaded back (default: the latest)."""
        from longtail.learners.persist import load
        from longtail.store.releases import list_releases, release_arrays

        if release_id is None:
            found = list_releases(self.store.root)
            if not found:
                raise InputError("no release yet: run `longtail train --release`")
            release_id = found[-1]["id"]
        arrays = release_arrays(self.store.root, release_id)
        arrays.pop("__spec__", None)
        return load(arrays)

    def curves(self, metric: str = "accuracy") -> LearningCurves:
        """Learning curves on the managed eval set ("current" and "as_of")."""
        from longtail.engine.evaluation import learning_curves

        with self.store.reading() as uow:
            return learning_curves(uow, metric)

    def forecast(self, target: float | None = None, *, next_batch: int = 100,
                 metric: str = "accuracy") -> ForecastReport:
        """How many more labels to reach `target`, and the next batch's expected gain."""
        from longtail.engine.evaluation import forecast

        settings = self._settings()
        with self.store.reading() as uow:
            return forecast(uow, settings, target=target, next_batch=next_batch, metric=metric)

    def stopping(self, *, target: float | None = None, budget: int | None = None,
                 next_batch: int = 100) -> StoppingAnswer:
        """Every stopping rule's answer for the project as it stands."""
        from longtail.engine.evaluation import stopping

        settings = self._settings()
        with self.store.reading() as uow:
            return stopping(uow, settings, target=target, budget=budget, next_batch=next_batch)

    @metered("evaluate")
    def evaluate(self, test: str | Path | None = None, *, model_id: int | None = None,
                 id: str = "id", text: str | None = "text", label: str = "label",
                 vector: str | None = None, vector_prefix: str | None = None
                 ) -> EvalReport | None:
        """Score a model on the managed eval set (default) or on a labeled file outside
        the pool, with bootstrap 95% intervals, per-class figures and a confusion matrix."""
        from longtail.engine.evaluation import evaluate

        settings = self._settings()
        with self.store.unit_of_work() as uow:  # one commit: the metrics it records
            return evaluate(uow, settings, test, model_id=model_id, id=id, text=text,
                            label=label, vector=vector, vector_prefix=vector_prefix)

    # -- rounds ------------------------------------------------------------------------

    @metered("query")
    def query(self, budget: int | None = None, *, strategy: str = "auto", out: str | Path | None = None,
              config: dict | None = None, seed: int | None = None,
              encoder: str | None = None, overwrite: bool = False,
              relabel: float = 0.0, include_duplicates: bool | None = None,
              budget_money: float | None = None, annotators: int | None = None,
              pool: str | None = None, overlap: float = 0.0,
              out_dir: str | Path | None = None, cost_aware: bool = False,
              engine: str = "local") -> QueryResult:
        """Plan a batch of `budget` samples, record it as an open round, export it.
        `relabel` (0..1): the share of the batch given to likely label errors (kind
        "relabel", see `suspects`), taken from the strategy's picks. Duplicates of
        labeled samples are left out unless `include_duplicates`. `budget_money`: the
        batch never costs more than this at predicted cost (`budget` None: about as
        many samples as it buys). `annotators` (or `pool`, one per member): work
        packages balanced by predicted time, `overlap` a share labeled twice, each
        written to `out_dir` as package-NAME.csv. `engine` "ray": pool scoring as a Ray
        Data job (margin, entropy, least_confidence)."""
        if budget is None and budget_money is None:
            budget = 100
        return rounds.plan_round(self.store, self._settings(), budget, strategy=strategy,
                                 out=out, config=config, seed=seed, encoder=encoder,
                                 overwrite=overwrite, relabel=relabel,
                                 include_duplicates=include_duplicates,
                                 budget_money=budget_money, annotators=annotators, pool=pool,
                                 overlap=overlap, out_dir=out_dir, cost_aware=cost_aware,
                                 engine=engine)

    def rounds(self) -> list[RoundSummary]:
        """Every round: id, time, strategy, status, size, labeled."""
        with self.store.reading() as uow:
            return rounds.list_rounds(uow)

    def export_round(self, round_id: int, out: str | Path, *,
                     overwrite: bool = False) -> RoundChange:
        """Write a round's batch file again (as `query(out=...)` wrote it)."""
        return rounds.export_round(self.store, self._settings(), round_id, out, overwrite=overwrite)

    def cancel_round(self, round_id: int) -> RoundChange:
        """Cancel an open round; its unlabeled samples return to the candidates."""
        with self.store.unit_of_work() as uow:
            return rounds.cancel_round(uow, round_id)

    # -- status and simulation ---------------------------------------------------------

    def status(self) -> StatusReport:
        """Counts, classes, rounds and the latest metrics, as plain data."""
        from longtail.engine.status import status

        return status(self.store, self._settings())

    @metered("simulate")
    def simulate(self, truth: str, *, strategy: str = "auto", batch: int = 100,
                 budget: int = 1000, seeds: int = 1,
                 test: str | Path | tuple[np.ndarray, np.ndarray] | None = None,
                 test_label: str = "label", test_text: str | None = "text",
                 control_share: float = 0.0, encoder: str | None = None,
                 on_round: Callable[[int, dict], None] | None = None) -> Simulation:
        """Backtest from 0 labels with an oracle answering from `truth`. Writes nothing."""
        from longtail.engine.simulation import simulate

        return simulate(self.store, self._settings(), truth, strategy=strategy, batch=batch,
                        budget=budget, seeds=seeds, test=test, test_label=test_label,
                        test_text=test_text, control_share=control_share, encoder=encoder,
                        on_round=on_round)

    # -- continuous operation (issue 20): versions, history, consensus, check, run --------

    def versions(self) -> list[DatasetVersion]:
        """Every dataset version, oldest first (each round commits one)."""
        from longtail.engine.versions import list_versions

        return list_versions(self.store)

    def commit_version(self) -> DatasetVersion:
        """Record the dataset as it stands as a new version."""
        from longtail.engine.versions import commit_version

        return commit_version(self.store)

    def version_labels(self, version: int | None = None) -> dict[int, str]:
        """row -> label of a dataset version (default: as the dataset stands)."""
        from longtail.engine.versions import version_labels

        return version_labels(self.store, version).labels

    def export(self, path: str | Path, *, version: int | None = None, format: str | None = None,
               overwrite: bool = False) -> VersionExport:
        """Write a version's labeled samples as Parquet, CSV or JSONL."""
        from longtail.engine.versions import export_version

        return export_version(self.store, path, version=version, fmt=format, overwrite=overwrite)

    def diff(self, a: int, b: int) -> VersionDiff:
        """Labels added, removed and changed from version `a` to version `b`."""
        from longtail.engine.versions import diff_versions

        return diff_versions(self.store, a, b)

    def history(self) -> list[RoundRecord]:
        """Per round: strategy and parameters, auto's decision, models with their hashes,
        metrics and timings."""
        from longtail.engine.history import run_history

        return run_history(self.store)

    def round_model(self, round_id: int) -> Any:
        """The model trained on round `round_id`'s labels, loaded back."""
        from longtail.engine.history import load_round_model

        return load_round_model(self.store, round_id)

    def consensus(self) -> ConsensusPolicy:
        """The consensus policy that gives each sample its current label."""
        from longtail.engine.consensus import get_policy

        return get_policy(self.store)

    def set_consensus(self, policy: str, annotators: Sequence[str] | None = None
                      ) -> PolicyChange:
        """Change the consensus policy (latest, majority, trusted): a new dataset version."""
        from longtail.engine.consensus import set_policy

        return set_policy(self.store, policy, annotators)

    def annotators(self, *, bootstrap: int = 1000, seed: int | None = None
                   ) -> AnnotatorReport:
        """Labels, seconds and agreement per annotator, with bootstrap intervals."""
        from longtail.engine.consensus import annotator_report

        return annotator_report(self.store, bootstrap=bootstrap,
                                seed=self.settings["seed"] if seed is None else seed)

    def check(self) -> IntegrityReport:
        """Integrity: catalog, vector counts against the catalog, model files' hashes."""
        from longtail.engine.integrity import check

        return check(self.store)

    @metered("suspects")
    def suspects(self, *, limit: int | None = None, encoder: str | None = None,
                 folds: int = 5) -> Suspects:
        """Likely label errors: cleanlab's `find_label_issues` on out-of-fold
        probabilities of the project's learner, most likely first (row, id, split,
        given, suggested, self_confidence)."""
        from longtail.engine.suspects import suspects

        return suspects(self.store, self._settings(), limit=limit, encoder=encoder, folds=folds)

    def tracking(self) -> TrackingStatus:
        """MLflow tracking: on or off, the tracking URI, the models logged so far."""
        from longtail.engine.tracking import tracking_status

        return tracking_status(self.store, self._settings())

    def set_tracking(self, value: str | None) -> TrackingStatus:
        """Log every trained model to MLflow from now on (`value`: "local" for the
        project's mlruns/, a directory or a tracking URI), or stop (None)."""
        from longtail.engine.tracking import set_tracking

        return set_tracking(self.store, value)

    @metered("duplicates")
    def duplicates(self, *, threshold: float | None = None, encoder: str | None = None,
                   near: bool = True, hash_bits: int | None = None,
                   engine: str = "local") -> DuplicateGroups:
        """Groups of exact duplicates (content hash; images: the same bytes) and
        near-duplicates (cosine >= threshold, default the project's
        `near_duplicate_threshold`; images: also dHashes within `hash_bits` bits);
        `engine="ray"` runs a search still to do with its encoding pass on Ray."""
        from longtail.engine.duplicates import duplicates

        return duplicates(self.store, self._settings(), threshold=threshold, encoder=encoder,
                          near=near, hash_bits=hash_bits, engine=engine)

    @metered("run", worth_recording=lambda result: bool(result.events))
    def run(self, watch: str | Path, **options: Any) -> RunReport:
        """The loop unattended: ingest, import, retrain, query, until a stopping rule fires."""
        from longtail.engine.automation import run

        return run(self.store, watch, **options)

    # -- money (issue 29) ----------------------------------------------------------------

    def pools(self) -> list[dict]:
        """Annotator pools: name, hourly rate, members, `where` rules, default."""
        from longtail.engine import costs

        with self.store.unit_of_work() as uow:
            return [p.to_dict() for p in costs.list_pools(uow)]

    def add_pool(self, name: str, rate: str | float | None = None, *,
                 members: Sequence[str] = (), where: Sequence[str] = (),
                 default: bool | None = None) -> dict:
        """Create or update a pool (`rate` like '20/h'; `where` like 'label=fraud')."""
        from longtail.engine import costs

        with self.store.unit_of_work() as uow:
            return costs.add_pool(uow, name, rate, members=members, where=where,
                                  default=default).to_dict()

    def remove_pool(self, name: str) -> None:
        """Remove a pool."""
        from longtail.engine import costs

        with self.store.unit_of_work() as uow:
            costs.remove_pool(uow, name)

    def set_compute_rates(self, cpu: str | float | None = None,
                          gpu: str | float | None = None) -> ComputeRates:
        """Set the compute ledger's prices per CPU-hour and GPU-hour."""
        from longtail.engine import costs

        with self.store.unit_of_work() as uow:
            return costs.set_compute_rates(uow, cpu, gpu)

    def costs(self) -> dict:
        """Labeling and compute spend per round and in total (see `longtail costs`)."""
        from longtail.engine import costs

        with self.store.unit_of_work() as uow:
            return costs.costs_report(uow, Settings.from_dict(uow.settings.all())).to_dict()

    def cost_model(self) -> dict:
        """The per-sample cost model's report: answers, unit, prior, held-out error."""
        from longtail.engine import costs

        return costs.cost_model(self.store, self._settings()).report.to_dict()

    # -- the long tail (issue 30): slices, the discovery queue, the report ----------------

    def slices(self, *, by: str = "all", limit: int = 20, examples: int = 5,
               encoder: str | None = None) -> dict:
        """Failure slices (clusters and metadata values) ranked under-represented and
        struggling first, each with its error interval and example samples."""
        from longtail.engine.discovery import slices

        return slices(self.store, self._settings(), by=by, limit=limit, examples=examples,
                      encoder=encoder).to_dict()

    def enqueue_slice(self, slice: str, n: int = 50, *, encoder: str | None = None) -> dict:
        """Queue a slice's `n` most useful unlabeled samples (least confident first) for
        the next round. `slice`: "cluster:N" or "COLUMN=VALUE"."""
        from longtail.engine.discovery import enqueue_slice

        return enqueue_slice(self.store, self._settings(), slice, n, encoder=encoder).to_dict()

    def queue(self) -> list[dict]:
        """The discovery queue: rows `query` takes first, with their source and priority."""
        from longtail.engine.discovery import read_queue

        with self.store.unit_of_work() as uow:
            return [it.to_dict() for it in read_queue(uow)]

    def report_data(self, *, encoder: str | None = None) -> dict:
        """Everything the report draws, as plain data."""
        from longtail.engine.report import report_data

        return report_data(self.store, self._settings(), encoder=encoder).to_dict()

    def report(self, out: str | Path, *, overwrite: bool = True,
               encoder: str | None = None) -> dict:
        """Write the report: one self-contained HTML file that works offline."""
        from longtail.report import render

        out = Path(out)
        if out.exists() and not overwrite:
            raise InputError(f"{out} exists: pass overwrite=True (--force) to replace it")
        if not out.parent.exists():
            raise InputError(f"no directory {out.parent} for the report")
        data = self.report_data(encoder=encoder)
        html = render(data)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
        return {"out": str(out), "bytes": len(html.encode()),
                "sections": [k for k in data if k != "project"]}

    def search(self, *, ids: Sequence[str] | None = None, text: str | None = None,
               vector: Sequence[float] | np.ndarray | None = None, k: int = 10,
               split: str = "pool", state: str = "any", where: Sequence[str] | None = None,
               encoder: str | None = None, exact: bool | None = None,
               enqueue: bool = False, priority: float | None = None) -> dict:
        """The `k` samples most similar to sample `ids`, a `text` (through the project's
        encoder) or a `vector`; filters: `split` (pool, eval, all), `state` (any,
        labeled, unlabeled), `where` (["COLUMN=VALUE", ...]). `enqueue`: queue the
        unlabeled pool hits for the next round (priority: `priority`, else similarity)."""
        from longtail.engine.discovery import enqueue_hits
        from longtail.engine.search import search

        found = search(self.store, self._settings(), ids=ids, text=text, vector=vector, k=k,
                       split=split, state=state, where=where, encoder=encoder, exact=exact)
        if enqueue:
            found.enqueued = enqueue_hits(self.store, found, priority).to_dict()
        return found.to_dict()

    def add_trigger(self, name: str, rule: str, *, priority: float = 1.0) -> dict:
        """Save a standing trigger: `rule` runs on every ingest and round (see
        `longtail.discovery.triggers` for the language); matches are queued."""
        from longtail.engine.triggers import add_trigger

        return add_trigger(self.store, name, rule, priority=priority).to_dict()

    def triggers(self) -> list[dict]:
        """Every standing trigger with its hits per run."""
        from longtail.engine.triggers import list_triggers

        return [t.to_dict() for t in list_triggers(self.store)]

    def test_trigger(self, rule: str, *, examples: int = 5) -> dict:
        """How many unlabeled pool rows `rule` (or a saved trigger's name) matches now."""
        from longtail.engine.triggers import test_rule

        return test_rule(self.store, self._settings(), rule, examples=examples).to_dict()

    def remove_trigger(self, name: str) -> dict:
        """Delete a standing trigger."""
        from longtail.engine.triggers import remove_trigger

        return remove_trigger(self.store, name).to_dict()

    def run_triggers(self) -> dict:
        """Run every trigger over the unlabeled pool now; {name: rows queued}."""
        from longtail.engine.triggers import run_triggers

        return run_triggers(self.store, self._settings(), None, "manual").hits
