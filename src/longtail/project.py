"""The facade: one `Project` wires ingest, store, encoders, learners, strategies and
evaluation together. It holds no logic of its own beyond the wiring."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longtail.encoders import get_encoder
from longtail.errors import InputError, ProjectError
from longtail.evaluation.evalset import assign_eval
from longtail.ingest import PRECOMPUTED, ColumnMapping, IngestReport, ingest_file
from longtail.ingest.mapping import column_strings, resolve, vectors_of
from longtail.ingest.readers import TableSource, file_sha256
from longtail.learners import make_learner
from longtail.store import Store
from longtail.store.repos_versions import ConsensusRepo

Progress = Callable[[int, int | None], None]

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "eval_rate": 0.05,
    "eval_cap": 5000,
    "eval_share": 0.2,
    "control_share": 0.1,
    "eval_stratify": None,
    "learner": "linear",
    "encoder": None,
    # Hash version of content and eval-split hashes: projects without the key were made
    # before version 2 and keep BLAKE2b; `init` writes 2 (see longtail.hashing).
    "hashing": 1,
}


@dataclass
class QueryResult:
    round_id: int
    rows: list[int]
    ids: list[str]
    kinds: list[str]
    log: dict
    out: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _save_state(state: dict) -> dict[str, np.ndarray]:
    """Strategy state as .npz-ready arrays: every ndarray at any depth of nested dicts
    becomes its own array (key path joined by "/"), the rest one JSON blob with
    placeholders. Values neither can hold (an index object, say) are dropped; the
    strategy rebuilds them next round. No pickle: a project directory is data."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[path] = value
            return {"__array__": path}
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                w = walk(v, f"{path}/{k}" if path else str(k))
                if w is not _DROP:
                    out[str(k)] = w
            return out
        if isinstance(value, (list, tuple)):
            items = [walk(v, f"{path}/{i}") for i, v in enumerate(value)]
            return _DROP if any(i is _DROP for i in items) else items
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return _DROP

    tree = walk(state, "")
    arrays["__json__"] = np.array(json.dumps(tree))
    return arrays


_DROP = object()


def _model_arrays(state: dict) -> dict[str, np.ndarray]:
    return {**state["arrays"], "__meta__": np.array(json.dumps(state["meta"]))}


def _load_state(arrays: dict[str, np.ndarray]) -> dict:
    def unwalk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return arrays[value["__array__"]]
            return {k: unwalk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwalk(v) for v in value]
        return value

    return unwalk(json.loads(str(arrays["__json__"])))


class Project:
    """A longtail project: a directory with a SQLite catalog and vector files.

    >>> p = Project.init("my-project")
    >>> p.ingest("pool.csv", id="id", text="text")
    >>> p.embed("minilm"); p.import_labels("labels.csv"); p.train()
    >>> p.query(100, out="batch.csv")
    """

    def __init__(self, path: str | Path = "."):
        self.path = Path(path)
        self.store = Store.open(self.path)

    @classmethod
    def init(cls, path: str | Path = ".", **settings: Any) -> Project:
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise InputError(f"unknown project settings: {', '.join(sorted(unknown))}")
        Store.create(path, {**DEFAULTS, "hashing": 2, **settings}).close()
        return cls(path)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def settings(self) -> dict[str, Any]:
        return {**DEFAULTS, **self.store.settings()}

    # -- data in -----------------------------------------------------------------------

    def ingest(self, path: str | Path, *, id: str = "id", text: str | None = None,
               label: str | None = None, vector: str | None = None,
               vector_prefix: str | None = None, metadata: list[str] | None = None,
               update: bool = False, vector_dtype: str = "float32",
               progress: Progress | None = None) -> IngestReport:
        """Add a CSV, JSONL or Parquet file to the pool, all-or-nothing."""
        mapping = ColumnMapping(id=id, text=text, label=label, vector=vector,
                                vector_prefix=vector_prefix,
                                metadata=tuple(metadata) if metadata is not None else None)
        st = self.settings

        def eval_of(ids: list[str], current: int, strata: list | None) -> np.ndarray:
            return assign_eval(ids, rate=st["eval_rate"], seed=st["seed"], current_eval=current,
                               cap=st["eval_cap"], strata=strata, hashing=st["hashing"])

        report = ingest_file(self.store, path, mapping, assign_eval=eval_of,
                             eval_strata=st["eval_stratify"], update=update,
                             vector_dtype=vector_dtype, progress=progress,
                             hashing=st["hashing"])
        if report.vector_dim and not st["encoder"]:
            self.store.set_setting("encoder", PRECOMPUTED)
        return report

    def embed(self, encoder: str = "minilm", *, batch_rows: int = 512, dtype: str = "float32",
              progress: Progress | None = None, encoder_impl: Any = None, **params: Any) -> dict:
        """Compute vectors for every sample that has none for `encoder`. Each batch
        commits, so an interrupted run resumes where it stopped."""
        n = self.store.n_samples()
        if encoder == PRECOMPUTED:
            info = self.store.vector_set_info(PRECOMPUTED)
            have = info["n_rows"] if info else 0
            if have < n:
                raise InputError(f"{n - have} samples have no precomputed vectors; ingest them "
                                 "with --vector-prefix or --vector")
            self.store.set_setting("encoder", PRECOMPUTED)
            return {"encoder": encoder, "embedded": 0, "total": n}
        info = self.store.vector_set_info(encoder)
        enc = encoder_impl or get_encoder(encoder, **(info["config"] if info else params))
        if info is None and getattr(enc, "needs", "") == "metadata" and hasattr(enc, "fit"):
            enc.fit({"text": [t for _, _, t, _ in b], "metadata": [m for _, _, _, m in b]}
                     for b in self.store.iter_samples())
        start = info["n_rows"] if info else 0
        if info is None:
            with self.store.tx() as conn:
                self.store.ensure_vector_set(conn, encoder, enc.dim, dtype, enc.config())
            info = self.store.vector_set_info(encoder)
        writer = self.store.vector_writer(encoder, info["dim"], info["dtype"])
        done = start
        t0 = time.perf_counter()
        for batch in self.store.iter_samples(start=start, batch_rows=batch_rows):
            vecs = enc.encode({"text": [t or "" for _, _, t, _ in batch],
                               "metadata": [m for _, _, _, m in batch]})
            writer.write(done, vecs)
            done += len(batch)
            with self.store.tx() as conn:
                self.store.set_vector_rows(conn, encoder, done)
            if progress:
                progress(done, n)
        self.store.set_setting("encoder", encoder)
        return {"encoder": encoder, "embedded": done - start, "total": n,
                "seconds": round(time.perf_counter() - t0, 3)}

    def import_labels(self, path: str | Path, *, id: str = "id", label: str = "label",
                      annotator: str | None = None, seconds: str | None = None,
                      source: str = "human") -> dict:
        """Record labels from a file (id, label[, annotator, seconds]), all-or-nothing.
        Unknown ids are an error listing them; a label equal to the current one is
        skipped, so re-importing a file changes nothing."""
        src = TableSource(path)
        where = str(src.path)
        mapping = ColumnMapping(id=id, label=label, annotator=annotator, seconds=seconds,
                                metadata=())
        resolve(mapping, list(src.schema.names), where)
        records: list[tuple[str, str, str | None, float | None]] = []
        row0 = 0
        for batch in src.batches():
            ids = column_strings(batch, id, where, row0, allow_null=False)
            labels = column_strings(batch, label, where, row0, allow_null=False)
            who = (column_strings(batch, annotator, where, row0, allow_null=True)
                   if annotator else [None] * len(ids))
            secs: list[float | None] = [None] * len(ids)
            if seconds:
                for i, v in enumerate(batch.column(seconds).to_pylist()):
                    try:
                        secs[i] = None if v in (None, "") else float(v)
                    except (TypeError, ValueError):
                        raise InputError(f"{where}: row {row0 + i + 1}, column {seconds!r}: {v!r} "
                                         "is not a number of seconds") from None
                    if secs[i] is not None and not (secs[i] >= 0 and np.isfinite(secs[i])):
                        raise InputError(f"{where}: row {row0 + i + 1}, column {seconds!r}: "
                                         f"{v!r} is not a non-negative number of seconds")
            for i, lab in enumerate(labels):
                if lab == "":
                    raise InputError(f"{where}: row {row0 + i + 1}, column {label!r}: empty label")
            records += list(zip(ids, labels, who, secs, strict=True))
            row0 += len(ids)
        if not records:
            raise InputError(f"{where}: the file has no rows")
        rows_of = self.store.ids_to_rows([r[0] for r in records])
        unknown = sorted({r[0] for r in records if r[0] not in rows_of})
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise InputError(f"{where}: {len(unknown)} unknown id(s): {shown}{more}")
        with self.store.tx() as conn:
            current = self.store.current_labels(conn)
            given = ConsensusRepo(conn).by_annotator()
            events = []
            for ext, lab, who_, sec in records:
                r = rows_of[ext]
                if (current.get(r) if who_ is None else given.get((r, who_))) == lab:
                    continue
                given[(r, who_)] = lab
                current[r] = lab
                events.append({"row": r, "label": lab, "annotator": who_, "seconds": sec,
                               "source": source})
            added = self.store.add_annotations(conn, events)
            closed = self.store.close_rounds_done(conn)
        return {"file": where, "rows": len(records), "new_labels": added,
                "unchanged": len(records) - added, "closed_rounds": closed}

    # -- views -------------------------------------------------------------------------

    def encoder_name(self, encoder: str | None = None) -> str:
        name = encoder or self.settings["encoder"]
        if not name:
            raise ProjectError("no vectors yet: ingest vectors (--vector-prefix) or run "
                               "`longtail embed --encoder minilm`")
        return name

    def vectors(self, encoder: str | None = None):
        """The vector set of `encoder` (default: the project's), checked to cover every sample."""
        name = self.encoder_name(encoder)
        vs = self.store.vectors(name)
        n = self.store.n_samples()
        if vs.n_rows < n:
            raise ProjectError(f"{n - vs.n_rows} samples have no {name!r} vectors yet: run "
                               f"`longtail embed --encoder {name}`")
        return vs

    def labeled(self, split: str = "pool") -> tuple[np.ndarray, np.ndarray]:
        """(rows, labels) of the samples of `split` that have a current label."""
        current = self.store.current_labels()
        in_split = set(self.store.rows_by_split(split).tolist())
        rows = np.array(sorted(r for r in current if r in in_split), dtype=np.int64)
        return rows, np.array([current[r] for r in rows], dtype=object)

    # -- model -------------------------------------------------------------------------

    def _load_model(self, model: dict | None = None) -> Any:
        from longtail.learners.linear import LinearHead

        model = model or self.store.latest_model()
        if model is None:
            return None
        arrays = self.store.load_model_arrays(model)
        meta = json.loads(str(arrays.pop("__meta__")))
        return LinearHead.from_state_dict({"meta": meta, "arrays": arrays})

    def train(self, *, encoder: str | None = None, warm_start: bool = True) -> dict:
        """Fit the learner on every labeled pool sample (eval samples never), warm-started
        from the latest model, save it, and score it on the managed eval set."""
        vs = self.vectors(encoder)
        rows, y = self.labeled("pool")
        if len(rows) == 0:
            raise ProjectError("no labeled pool samples yet: import labels first "
                               "(`longtail import-labels FILE`)")
        previous = self._load_model() if warm_start else None
        latest = self.store.latest_model()
        if previous is not None and latest["encoder"] != vs.directory.name:
            previous = None
        model = previous if previous is not None else make_learner(self.settings["learner"])
        t0 = time.perf_counter()
        model.fit(vs.read(rows), y.astype(str))
        fit_seconds = time.perf_counter() - t0
        model_id = self.store.save_model(
            self.settings["learner"], vs.directory.name, len(rows), list(model.classes_),
            _model_arrays(model.state_dict()), fit_seconds)
        report = {"model_id": model_id, "labels": int(len(rows)),
                  "classes": int(len(model.classes_)), "fit_seconds": round(fit_seconds, 4)}
        ev = self.evaluate(model_id=model_id)
        if ev is not None:
            report["eval"] = ev
            from longtail.loop import monitor

            report["stopping"] = monitor.stopping(self)["reason"]
            lifted = monitor.update_round_lifts(self)
            self.store.set_setting("arm_lift", monitor.arm_lift(self))
            summary = monitor.lift_summary(self)
            if summary:
                report["lift"] = {**summary, "new_rounds": lifted}
        return report

    def curves(self, metric: str = "accuracy") -> dict:
        """Learning curves on the managed eval set: "current" (every model re-scored on
        the latest eval version) and "as_of" (as measured when each model was trained)."""
        from longtail.loop import monitor

        return monitor.learning_curves(self, metric)

    def forecast(self, target: float | None = None, *, next_batch: int = 100,
                 metric: str = "accuracy") -> dict:
        """How many more labels to reach `target`, and the next batch's expected gain."""
        from longtail.loop import monitor

        return monitor.forecast(self, target=target, next_batch=next_batch, metric=metric)

    def stopping(self, *, target: float | None = None, budget: int | None = None,
                 next_batch: int = 100) -> dict:
        """Every stopping rule's answer (stabilising predictions, forecast gain, target,
        budget) for the project as it stands."""
        from longtail.loop import monitor

        return monitor.stopping(self, target=target, budget=budget, next_batch=next_batch)

    def evaluate(self, test: str | Path | None = None, *, model_id: int | None = None,
                 id: str = "id", text: str | None = "text", label: str = "label",
                 vector: str | None = None, vector_prefix: str | None = None) -> dict | None:
        """Score a model on the managed eval set (default) or on a labeled file outside
        the pool. Metrics carry bootstrap 95% intervals and are recorded in the catalog."""
        from longtail.loop import monitor

        models = {m["id"]: m for m in self.store.models()}
        if not models:
            raise ProjectError("no model yet: run `longtail train` first")
        meta = models[model_id] if model_id is not None else models[max(models)]
        if test is None:
            eval_set = monitor.rescore_all(self)
            if eval_set is None:
                return None
            got = {m["name"]: m for m in self.store.metrics()
                   if m["eval_set"] == eval_set and m["model_id"] == meta["id"]}
            n = next(v["n_labeled"] for v in self.store.eval_versions()
                     if f"managed:v{v['id']}" == eval_set)
            return {"eval_set": eval_set, "n": n, "model_id": meta["id"],
                    **{k: {"value": got[k]["value"], "lo": got[k]["lo"], "hi": got[k]["hi"]}
                       if k in got else None for k in monitor.SCALARS}}
        X, y = self._read_labeled_file(test, meta["encoder"], id=id, text=text, label=label,
                                       vector=vector, vector_prefix=vector_prefix)
        eval_set = f"file:{file_sha256(Path(test))[:12]}"
        result = monitor.score_model(self, meta, X, y.astype(str), eval_set)
        return {"eval_set": eval_set, "n": int(len(y)), "model_id": meta["id"],
                **{k: result[k] for k in monitor.SCALARS}}

    def _read_labeled_file(self, path: str | Path, encoder: str, *, id: str, text: str | None,
                           label: str, vector: str | None, vector_prefix: str | None
                           ) -> tuple[np.ndarray, np.ndarray]:
        src = TableSource(path)
        where = str(src.path)
        # The id column is optional in a test file; vectors make the text unnecessary.
        has_vectors = bool(vector or vector_prefix)
        mapping = ColumnMapping(id=id if id in src.schema.names else label,
                                text=None if has_vectors else text, label=label, vector=vector,
                                vector_prefix=vector_prefix, metadata=())
        resolved = resolve(mapping, list(src.schema.names), where)
        enc = None
        if encoder != PRECOMPUTED:
            info = self.store.vector_set_info(encoder)
            enc = get_encoder(encoder, **info["config"])
        Xs, ys, row0 = [], [], 0
        for batch in src.batches():
            ys += column_strings(batch, label, where, row0, allow_null=False)
            vecs = vectors_of(batch, mapping, resolved, where, row0)
            if vecs is None:
                if enc is None:
                    raise InputError(f"{where}: the project's vectors are precomputed; the test "
                                     "file needs its vectors too (--vector-prefix or --vector)")
                if not text:
                    raise InputError(f"{where}: give --text so the test file can be embedded")
                texts = column_strings(batch, text, where, row0, allow_null=False)
                vecs = enc.encode({"text": texts, "metadata": [{}] * len(texts)})
            Xs.append(vecs)
            row0 += batch.num_rows
        X = np.concatenate(Xs) if Xs else np.empty((0, 0), np.float32)
        dim = self.store.vector_set_info(encoder)["dim"]
        if X.shape[1] != dim:
            raise InputError(f"{where}: test vectors have {X.shape[1]} dimensions; the model's "
                             f"have {dim}")
        return X, np.asarray(ys, dtype=object)

    # -- selection ---------------------------------------------------------------------

    def candidates(self) -> np.ndarray:
        """Pool rows a strategy may pick: not labeled, not queued in an open round, and
        never eval rows (the store's split says which rows those are)."""
        pool = self.store.rows_by_split("pool")
        taken = np.union1d(np.fromiter(self.store.current_labels(), dtype=np.int64),
                           self.store.open_round_rows())
        return np.setdiff1d(pool, taken, assume_unique=False)

    def _state_path(self, encoder: str) -> Path:
        return self.path / "state" / f"{encoder}.npz"

    def query(self, budget: int, *, strategy: str = "auto", out: str | Path | None = None,
              config: dict | None = None, seed: int | None = None,
              encoder: str | None = None) -> QueryResult:
        """Plan a batch of `budget` samples to label, record it as an open round, and
        export it (CSV or JSONL by the file's suffix) when `out` is given."""
        from longtail.loop.round import plan_batch  # the strategies load on first use
        from longtail.loop.simulate import predict_rows

        if out is not None and Path(out).suffix.lower() not in (".csv", ".jsonl", ".ndjson", ".json"):
            raise InputError(f"{out}: export as .csv or .jsonl")
        vs = self.vectors(encoder)
        st = self.settings
        rounds = self.store.rounds()
        rng = np.random.default_rng([st["seed"] if seed is None else seed, len(rounds)])
        candidates = self.candidates()
        current = self.store.current_labels()
        eval_rows = self.store.rows_by_split("eval")
        pending_eval = np.setdiff1d(
            np.setdiff1d(eval_rows, np.fromiter(current, dtype=np.int64)),
            self.store.open_round_rows())
        latest = self.store.latest_model()
        model = self._load_model(latest) if latest and latest["encoder"] == vs.directory.name else None
        lab_rows, lab_y = self.labeled("pool")
        state_file = self._state_path(vs.directory.name)
        state = (_load_state(dict(np.load(state_file, allow_pickle=False)))
                 if state_file.exists() else {})
        history = self._history()

        def committee_for(rows: np.ndarray) -> np.ndarray:
            from longtail.learners import bootstrap_committee, committee_probs

            members = bootstrap_committee(lambda: make_learner(st["learner"]),
                                          vs.read(lab_rows), lab_y.astype(str), m=5, rng=rng)
            return np.concatenate([committee_probs(members, X, model.classes_)
                                   for _, X in vs.iter_chunks(rows)], axis=1)

        plan = plan_batch(
            budget, candidates, rng=rng, strategy=strategy, vectors=vs,
            probs_for=(lambda rows: predict_rows(model, vs, rows)) if model else None,
            classes=np.asarray(model.classes_) if model else None,
            labeled_rows=lab_rows, labeled_y=lab_y if len(lab_rows) else None,
            committee_for=committee_for if model else None,
            pending_eval=pending_eval, eval_share=st["eval_share"],
            control_share=st["control_share"], params=config, state=state, history=history)
        items = [(int(r), i, k) for i, (r, k) in enumerate(zip(plan.rows, plan.kinds, strict=True))]
        # The labels that existed before this round: the lift estimator trains on them.
        plan.log["annotations_before"] = self.store.max_annotation_id()
        with self.store.tx() as conn:
            round_id = self.store.add_round(
                conn, strategy, {"budget": budget, "config": config, "seed": seed},
                len(lab_rows), plan.log, items, latest["id"] if latest else None)
        if state:
            state_file.parent.mkdir(exist_ok=True)
            tmp = state_file.with_suffix(".tmp.npz")
            np.savez(tmp, **_save_state(state))
            tmp.replace(state_file)
        batch = [b for chunk in self.store.iter_samples(plan.rows) for b in chunk]
        result = QueryResult(round_id, [int(r) for r in plan.rows], [b[1] for b in batch],
                             list(plan.kinds), plan.log, str(out) if out else None)
        if out:
            export_batch(out, batch, plan.kinds, round_id)
        return result

    def _history(self) -> list[dict]:
        """Earlier rounds for `auto`: its arm, and managed-eval accuracy before and after."""
        acc = [(m["n_labels"], m["value"]) for m in self.store.metrics("accuracy")
               if m["eval_set"].startswith("managed")]

        def metric_at(n: int) -> float | None:
            vals = [v for k, v in acc if k == n]
            return vals[-1] if vals else None

        out = []
        rounds = self.store.rounds()
        for r, nxt in zip(rounds, rounds[1:], strict=False):
            after = nxt["n_labels"]
            out.append({"arm": r["log"].get("selection", {}).get("arm", r["strategy"]),
                        "n_labels_before": r["n_labels"], "n_labels_after": after,
                        "metric_before": metric_at(r["n_labels"]),
                        "metric_after": metric_at(after)})
        return out

    # -- status and simulation ---------------------------------------------------------

    def status(self) -> dict:
        """Counts, classes, rounds and the latest metrics, as plain data."""
        splits = self.store.split_counts()
        current = self.store.current_labels()
        eval_rows = set(self.store.rows_by_split("eval").tolist())
        labels = [lab for r, lab in current.items() if r not in eval_rows]
        classes: dict[str, int] = {}
        for lab in labels:
            classes[lab] = classes.get(lab, 0) + 1
        rounds = self.store.rounds()
        metrics = self.store.metrics()
        last: dict[str, dict] = {}
        newest = max((m["model_id"] or 0 for m in metrics), default=0)
        for m in metrics:
            if (m["model_id"] or 0) != newest:
                continue  # re-scores of older models are in the curves, not "last"
            last[m["name"]] = {"value": m["value"], "lo": m["lo"], "hi": m["hi"],
                               "eval_set": m["eval_set"], "n_labels": m["n_labels"]}
        vectors = {name: self.store.vector_set_info(name)["n_rows"]
                   for name in self.store.vector_set_names()}
        from longtail.loop import monitor

        lift = monitor.lift_summary(self)
        versions = self.store.eval_versions()
        return {
            "project": str(self.path.resolve()),
            "samples": sum(splits.values()),
            "pool": splits.get("pool", 0),
            "eval": splits.get("eval", 0),
            "labeled_pool": len(labels),
            "labeled_eval": sum(1 for r in current if r in eval_rows),
            "annotations": self.store.annotation_count(),
            "classes": dict(sorted(classes.items(), key=lambda kv: -kv[1])),
            "encoder": self.settings["encoder"],
            "vectors": vectors,
            "rounds": len(rounds),
            "open_rounds": sum(1 for r in rounds if r["status"] == "open"),
            "models": len(self.store.models()),
            "metrics": last,
            "eval_version": versions[-1]["id"] if versions else None,
            "lift": lift,
            "verdict": lift["verdict"] if lift else
            "no lift measured yet: label a batch (its control slice) and train",
        }

    def simulate(self, truth: str, *, strategy: str = "auto", batch: int = 100,
                 budget: int = 1000, seeds: int = 1,
                 test: str | Path | tuple[np.ndarray, np.ndarray] | None = None,
                 test_label: str = "label", test_text: str | None = "text",
                 control_share: float = 0.0, encoder: str | None = None,
                 on_round: Callable[[int, dict], None] | None = None) -> dict:
        """Backtest: run the loop from 0 labels with an oracle that answers from the
        metadata column (or current label) `truth`. Writes nothing to the project."""
        from longtail.loop.simulate import simulate_run

        vs = self.vectors(encoder)
        n = vs.n_rows
        gold = np.full(n, None, dtype=object)
        for batch_rows in self.store.iter_samples(batch_rows=8192):
            for r, _, _, meta in batch_rows:
                gold[r] = meta.get(truth)
        if truth == "label" or all(g is None for g in gold[: min(n, 1000)]):
            for r, lab in self.store.current_labels().items():
                gold[r] = lab
        known = np.array([g is not None and g != "" for g in gold])
        if not known.any():
            raise InputError(f"no ground truth: no sample has a {truth!r} metadata column or label")
        gold = np.array([str(g) if g is not None else "" for g in gold], dtype=object)
        pool = np.intersect1d(self.store.rows_by_split("pool"), np.flatnonzero(known))
        eval_rows = np.intersect1d(self.store.rows_by_split("eval"), np.flatnonzero(known))
        test_xy = None
        if isinstance(test, tuple):
            test_xy = (np.asarray(test[0], np.float32), np.asarray(test[1]).astype(str))
        elif test is not None:
            test_xy = self._read_labeled_file(test, vs.directory.name, id="id", text=test_text,
                                              label=test_label, vector=None, vector_prefix=None)
            test_xy = (test_xy[0], test_xy[1].astype(str))
        runs = []
        for seed in range(seeds):
            curve = simulate_run(
                vs, pool, gold, strategy=strategy, batch=batch, budget=budget, seed=seed,
                learner=self.settings["learner"], eval_rows=eval_rows, test=test_xy,
                control_share=control_share, eval_share=self.settings["eval_share"],
                on_round=(lambda point, s=seed: on_round(s, point)) if on_round else None)
            runs.append({"seed": seed, **curve})
        return {"strategy": strategy, "batch": batch, "budget": budget, "seeds": seeds,
                "truth": truth, "pool": int(len(pool)), "eval": int(len(eval_rows)), "runs": runs}

    # -- continuous operation (issue 20): versions, history, consensus, check, run --------

    def versions(self) -> list[dict]:
        """Every dataset version, oldest first (each round commits one)."""
        from longtail.engine.versions import list_versions

        return list_versions(self.store)

    def commit_version(self) -> dict:
        """Record the dataset as it stands as a new version."""
        from longtail.engine.versions import commit_version

        return commit_version(self.store)

    def version_labels(self, version: int | None = None) -> dict[int, str]:
        """row -> label of a dataset version (default: as the dataset stands)."""
        from longtail.engine.versions import version_labels

        return version_labels(self.store, version)[1]

    def export(self, path: str | Path, *, version: int | None = None, format: str | None = None,
               overwrite: bool = False) -> dict:
        """Write a version's labeled samples as Parquet, CSV or JSONL."""
        from longtail.engine.versions import export_version

        return export_version(self.store, path, version=version, fmt=format, overwrite=overwrite)

    def diff(self, a: int, b: int) -> dict:
        """Labels added, removed and changed from version `a` to version `b`."""
        from longtail.engine.versions import diff_versions

        return diff_versions(self.store, a, b)

    def history(self) -> list[dict]:
        """Per round: strategy and parameters, auto's decision, models with their hashes,
        metrics and timings."""
        from longtail.engine.history import run_history

        return run_history(self.store)

    def round_model(self, round_id: int) -> Any:
        """The model trained on round `round_id`'s labels, loaded back."""
        from longtail.engine.history import load_round_model

        return load_round_model(self.store, round_id)

    def consensus(self) -> dict:
        """The consensus policy that gives each sample its current label."""
        from longtail.engine.consensus import get_policy

        return get_policy(self.store)

    def set_consensus(self, policy: str, annotators: Sequence[str] | None = None) -> dict:
        """Change the consensus policy (latest, majority, trusted): a new dataset version."""
        from longtail.engine.consensus import set_policy

        return set_policy(self.store, policy, annotators)

    def annotators(self, *, bootstrap: int = 1000, seed: int | None = None) -> dict:
        """Labels, seconds and agreement per annotator, with bootstrap intervals."""
        from longtail.engine.consensus import annotator_report

        return annotator_report(self.store, bootstrap=bootstrap,
                                seed=self.settings["seed"] if seed is None else seed)

    def check(self) -> dict:
        """Integrity: catalog, vector counts against the catalog, model files' hashes."""
        from longtail.engine.integrity import check

        return check(self.store)

    def run(self, watch: str | Path, **options: Any) -> dict:
        """The loop unattended: ingest, import, retrain, query, until a stopping rule fires."""
        from longtail.engine.automation import run

        return run(self, watch, **options)


def export_batch(path: str | Path, batch: list[tuple], kinds: list[str], round_id: int) -> None:
    """Write a batch to label as CSV or JSONL (by suffix): id, text, kind, round, metadata."""
    path = Path(path)
    records = []
    for (row, ext, text, meta), kind in zip(batch, kinds, strict=True):
        records.append({"id": ext, "text": text, "kind": kind, "round": round_id, "row": row,
                        **{f"meta_{k}": v for k, v in meta.items()}})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with open(path, "w") as f:
            for rec in records:
                f.write(json.dumps(rec, default=str) + "\n")
    elif path.suffix.lower() == ".csv":
        fields = list(dict.fromkeys(k for rec in records for k in rec)) or ["id"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(records)
    else:
        raise InputError(f"{path}: export as .csv or .jsonl")
