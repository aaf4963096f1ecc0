"""Optional MLflow tracking (`pip install longtail[mlflow]`).

With the project setting `mlflow` (`init --mlflow`, `longtail tracking`) or `train
--mlflow`, every trained model becomes one MLflow run in the experiment
`longtail/<project>`: params (learner and its parameters, encoder, the strategy and
arm of the round whose labels it trained, the project's settings, the consensus
policy), metrics at step = labels (managed-eval accuracy, macro-F1, worst-class recall
with their 95% intervals, the lift verdict, fit seconds), the dataset version as an
input (name `dataset-vN`, digest from its labels fingerprint, both fingerprints as
tags) and the model file as an artifact, with its SHA-256 as a tag.

Where: `local` (the default) is the project's `mlruns/`: an SQLite store
`mlruns/mlflow.db` with artifacts in `mlruns/artifacts` (MLflow 3 refuses its old file
store unless told otherwise, and the SQLite store is what it recommends). A directory
(relative: to the project directory) gets the same layout; anything with a scheme
(`sqlite:///...`, `http://...`) is given to MLflow as is. Nothing is sent anywhere
else: no network unless the URI says so.

Which models were logged, and under which MLflow run, is kept in the setting
`mlflow_runs` (model id -> run id), so a `train` that finds nothing new logs a model
that a killed run left unlogged, and never logs one twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError, ProjectError
from longtail.store import Store
from longtail.store.files import model_file, tracking_folder

LOCAL = "local"
RUNS_KEY = "mlflow_runs"
INSTALL = "MLflow tracking needs the mlflow extra: pip install 'longtail[mlflow]'"


def require_mlflow() -> None:
    """ProjectError naming the extra to install when MLflow is not importable."""
    try:
        import mlflow  # noqa: F401  (about 2 s: only when tracking is on)
    except ImportError:
        raise ProjectError(INSTALL) from None


def resolve(root: Path, value: str | None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None) of a setting."""
    value = (value or LOCAL).strip()
    if "://" in value or value.startswith("sqlite:"):
        return value, None
    folder = tracking_folder(root, None if value == LOCAL else value)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def check_value(value: str) -> str:
    """A tracking setting as given (`local`, a directory, or a URI); InputError when empty."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("--mlflow takes 'local' (the project's mlruns/), a directory or a "
                         "tracking URI")
    return value.strip()


@dataclass(frozen=True)
class TrackingStatus(Record):
    """Whether MLflow tracking is on (`mlflow`: the setting), where runs go, and how many
    models were logged."""

    OPTIONAL = ("artifact_location", "experiment")

    mlflow: str | None
    tracking_uri: str | None
    logged_models: int
    artifact_location: str | None = None
    experiment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.mlflow is not None:  # said, even when None, once tracking is on
            out["artifact_location"] = self.artifact_location
        return out


def set_tracking(store: Store, value: str | None) -> TrackingStatus:
    """Turn tracking on (`value`: local, a directory or a URI) or off (None)."""
    if value is not None:
        value = check_value(value)
        require_mlflow()
    with store.unit_of_work() as uow:
        uow.settings.set("mlflow", value)
    return tracking_status(store, Settings.load(store))


def tracking_status(store: Store, settings: Settings) -> TrackingStatus:
    """Whether tracking is on, where to, and how many models were logged."""
    with store.reading() as uow:
        logged = uow.settings.get(RUNS_KEY) or {}
    if settings.mlflow is None:
        return TrackingStatus(None, None, len(logged))
    uri, artifacts = resolve(store.root, settings.mlflow)
    return TrackingStatus(settings.mlflow, uri, len(logged), artifacts, experiment_name(store))


def experiment_name(store: Store) -> str:
    return f"longtail/{Path(store.root).resolve().name}"


def log_model(store: Store, settings: Settings, model_id: int, report: dict,
              target: str | None = None) -> str | None:
    """Log trained model `model_id` (and what `train` reported about it) as one MLflow
    run; its run id. A model logged before is not logged again (its run id comes back).
    `target` overrides the project's setting. MLflow errors become a ProjectError."""
    value = target if target is not None else settings.mlflow
    if value is None:
        return None
    require_mlflow()
    with store.reading() as uow:
        logged = uow.settings.get(RUNS_KEY) or {}
        model = next((m for m in uow.models.list() if m["id"] == model_id), None)
        all_rounds = uow.rounds.list()
    if str(model_id) in logged:
        return logged[str(model_id)]
    from longtail.engine.versions import resolve_version

    if model is None:
        raise ProjectError(f"no model {model_id} to log")
    version = resolve_version(store, None, reason="train")
    rounds = [r for r in all_rounds if r["status"] != "cancelled"
              and r["created_at"] <= model["created_at"]]
    uri, artifacts = resolve(store.root, value)
    try:
        with _quiet():
            run_id = _log(store, settings, uri, artifacts, model, report, version,
                          rounds[-1] if rounds else None)
    except ProjectError:
        raise
    except Exception as e:  # an unreachable server, a locked store: say which
        raise ProjectError(f"MLflow ({uri}): {type(e).__name__}: {str(e).splitlines()[0]}") from e
    with store.unit_of_work() as uow:
        runs = uow.settings.get(RUNS_KEY) or {}
        runs[str(model_id)] = run_id
        uow.settings.set(RUNS_KEY, runs)
    return run_id


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log INFO lines to stderr (creating the store's tables): the
    command's own output, or its --json, is what the user reads."""
    names = ("mlflow", "alembic")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _params(settings: Settings, model: dict, report: dict, rnd: dict | None,
            policy: dict) -> dict[str, str]:
    from longtail.engine.records import RoundLog

    meta = model.get("meta") or {}
    learner_params = meta.get("params") or {}
    out: dict[str, Any] = {"learner": model["learner"], "encoder": model["encoder"],
                           "labels": model["n_labels"], "classes": len(model["classes"]),
                           "consensus": policy.get("policy"),
                           **{f"learner.{k}": v for k, v in learner_params.items()},
                           **{f"settings.{k}": v for k, v in settings.to_dict().items()
                              if k not in ("learner", "learner_params", "mlflow")}}
    if rnd is not None:
        log = RoundLog.from_dict(rnd["log"])
        out.update({"round": rnd["id"], "strategy": rnd["strategy"], "arm": log.arm,
                    "round.budget": (rnd["params"] or {}).get("budget")})
    # MLflow keeps params as strings of at most 6000 characters.
    return {k: (v if isinstance(v, str) else json.dumps(v, default=str))[:6000]
            for k, v in out.items()}


def _metrics(store: Store, model: dict, report: dict) -> dict[str, float]:
    from longtail.engine.costs import spend_summary

    with store.reading() as uow:
        metrics = uow.metrics.list()
        arm_lift = uow.settings.get("arm_lift")
        roi = uow.settings.get("roi_summary") or {}
        spend = spend_summary(uow, Settings.from_dict(uow.settings.all()))
    out: dict[str, float] = {"fit_seconds": float(model["fit_seconds"])}
    for m in metrics:
        if m["model_id"] != model["id"] or not m["eval_set"].startswith("managed"):
            continue
        out[m["name"]] = float(m["value"])
        if m["lo"] is not None:
            out[f"{m['name']}_lo"], out[f"{m['name']}_hi"] = float(m["lo"]), float(m["hi"])
    # the eval budget's accuracy, by the project's estimator (its name is the
    # eval_estimator param), and the eval labels it stood on
    est = (report.get("eval") or {}).get("estimate") or {}
    if isinstance(est.get("value"), int | float):
        out["accuracy_estimate"] = float(est["value"])
        out["accuracy_estimate_lo"], out["accuracy_estimate_hi"] = float(est["lo"]), float(est["hi"])
        out["accuracy_estimate_eval_labels"] = float(est["n_labels"])
    lift = report.get("lift") or arm_lift or {}
    for key in ("lift", "lo", "hi"):
        if isinstance(lift.get(key), int | float):
            out["lift" if key == "lift" else f"lift_{key}"] = float(lift[key])
    # Money (issue 29): the spend so far and the saving against random, with its interval.
    out.update({k: float(getattr(spend, k)) for k in ("label_money", "eval_label_money",
                                                      "compute_money", "total_money")})
    for key in ("saving", "lo", "hi"):
        if isinstance(roi.get(key), int | float):
            out["money_saving" if key == "saving" else f"money_saving_{key}"] = float(roi[key])
    return out


def _log(store: Store, settings: Settings, uri: str, artifacts: str | None, model: dict,
         report: dict, version: dict, rnd: dict | None) -> str:
    import time
    import warnings

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.tracking import MlflowClient

    from longtail.engine.consensus import get_policy

    with store.reading() as uow:
        roi = uow.settings.get("roi_summary") or {}
    if artifacts is not None:  # a local folder (the project's mlruns/): the store makes it
        tracking_folder(store.root, str(Path(uri.removeprefix("sqlite:///")).parent),
                        create=True)
    client = MlflowClient(tracking_uri=uri)
    name = experiment_name(store)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        name, artifact_location=artifacts)
    sha = (model.get("meta") or {}).get("sha256")
    tags = {"longtail.model_id": str(model["id"]), "longtail.project": str(store.root),
            "longtail.dataset_version": str(version.id),
            **({"longtail.model_sha256": sha} if sha else {}),
            **({"longtail.round": str(rnd["id"])} if rnd else {}),
            **({"longtail.money_verdict": str(verdict)[:5000]}
               if (verdict := roi.get("verdict")) else {})}
    run = client.create_run(exp_id, run_name=f"model-{model['id']}", tags=tags)
    run_id = run.info.run_id
    try:
        from mlflow.entities import DatasetInput, InputTag, Metric, Param

        step = int(model["n_labels"])
        now = int(time.time() * 1000)
        params = _params(settings, model, report, rnd, get_policy(store).to_dict())
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                         metrics=[Metric(k, v, now, step)
                                  for k, v in _metrics(store, model, report).items()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "can be interpreted in multiple ways"
            source = resolve_dataset_source(Path(store.root).resolve().as_uri())
        dataset = MetaDataset(source=source, name=f"dataset-v{version.id}",
                              digest=version.labels_fingerprint[:32])
        client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[
            InputTag("mlflow.data.context", "training"),
            InputTag("longtail.version", str(version.id)),
            InputTag("longtail.labels_fingerprint", version.labels_fingerprint),
            InputTag("longtail.samples_fingerprint", version.samples_fingerprint),
            InputTag("longtail.n_labeled", str(version.n_labeled))])])
        client.log_artifact(run_id, str(model_file(store.root, model["path"])), artifact_path="model")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
