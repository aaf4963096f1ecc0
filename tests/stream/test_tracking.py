"""MLflow tracking against a real local MLflow store: each trained model is one run with
its params, metrics, dataset version and model file."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine.labels import LabelEvent
from longtail.errors import ProjectError
from longtail.filehash import file_sha256
from longtail.project import Project
from tests.conftest import make_pool, write_pool_csv
from tests.reads import read

pytest.importorskip("mlflow", reason="MLflow is not installed (pip install 'longtail[mlflow]')")

runner = CliRunner()


@pytest.fixture
def labeled(tmp_path):
    X, y = make_pool(200, seed=3)
    p = Project.init(tmp_path / "proj", eval_rate=0.2)
    p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
    q = p.query(60, strategy="random")
    truth = dict(zip((f"s{i}" for i in range(len(y))), y, strict=True))
    # the eval set labeled too, so the model has managed-eval metrics to log
    eval_ids = [b[1] for chunk in read(p.store, lambda u: list(u.samples.iter(
        u.samples.rows_by_split("eval")))) for b in chunk]
    p.record_labels([LabelEvent(id=i, label=str(truth[i])) for i in [*q.ids, *eval_ids]])
    yield p, truth
    p.close()


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time"])


def test_train_logs_params_metrics_dataset_version_and_model(labeled):
    p, truth = labeled
    p.set_tracking("local")
    got = p.train()
    status = p.tracking()
    assert status.tracking_uri.startswith("sqlite:///") and "mlruns" in status.tracking_uri
    assert (p.path / "mlruns" / "mlflow.db").exists()
    client, runs = _runs(status.tracking_uri, status.experiment)
    assert [r.info.run_id for r in runs] == [got.mlflow_run]
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["learner"] == "linear" and params["strategy"] == "random"
    assert params["labels"] == str(got.labels) and params["settings.eval_rate"] == "0.2"
    metrics = run.data.metrics
    assert metrics["accuracy"] == pytest.approx(got.eval.accuracy["value"])
    assert metrics["accuracy_lo"] <= metrics["accuracy"] <= metrics["accuracy_hi"]
    assert "macro_f1" in metrics and "fit_seconds" in metrics
    # the eval budget's estimate: which estimator (a param) and on how many labels
    est = got.eval.estimate
    assert params["settings.eval_estimator"] == "ppi"
    assert metrics["accuracy_estimate"] == pytest.approx(est.value)
    assert metrics["accuracy_estimate_eval_labels"] == est.n_labels
    # The metric is recorded at the label count, so runs line up as a learning curve.
    hist = client.get_metric_history(run.info.run_id, "accuracy")
    assert [m.step for m in hist] == [got.labels]
    # The dataset version as an input, named and fingerprinted.
    version = p.versions()[-1]
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.name == f"dataset-v{version.id}"
    tags = {t.key: t.value for t in inp.tags}
    assert tags["longtail.version"] == str(version.id)
    assert inp.dataset.digest == tags["longtail.labels_fingerprint"][:32]
    # The model file as an artifact, and its hash as a tag.
    model = read(p.store, lambda u: u.models.latest())
    arts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
    assert arts == [f"model/{(p.path / model['path']).name}"]
    local = client.download_artifacts(run.info.run_id, arts[0], str(p.path / "dl"))
    assert file_sha256(local) == file_sha256(p.path / model["path"])
    assert run.data.tags["longtail.model_sha256"] == model["meta"]["sha256"]

    # Nothing new: nothing trained and nothing logged twice; a new round is a new run.
    again = p.train()
    assert again.skipped and again.mlflow_run == got.mlflow_run
    q = p.query(30, strategy="random")
    p.record_labels([LabelEvent(id=i, label=str(truth[i])) for i in q.ids])
    third = p.train()
    _, runs = _runs(status.tracking_uri, status.experiment)
    assert [r.info.run_id for r in runs] == [got.mlflow_run, third.mlflow_run]
    assert runs[1].data.params["round"] == str(q.round_id)
    # Money (issue 29): the spend so far, and with two models the saving and its verdict.
    money = runs[1].data.metrics
    assert {"label_money", "compute_money", "total_money"} <= set(money)
    assert money["compute_money"] > 0
    roi = p.status().roi
    assert money["money_saving"] == pytest.approx(roi["saving"])
    assert runs[1].data.tags["longtail.money_verdict"] == roi["verdict"]


def test_train_mlflow_to_a_directory_without_the_setting(labeled, tmp_path):
    p, _ = labeled
    got = p.train(mlflow=str(tmp_path / "elsewhere"))
    assert (tmp_path / "elsewhere" / "mlflow.db").exists()
    assert p.tracking().mlflow is None  # the setting stays off
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    _, runs = _runs(uri, f"longtail/{p.path.name}")
    assert [r.info.run_id for r in runs] == [got.mlflow_run]


def test_without_the_extra_train_says_what_to_install_and_changes_nothing(labeled, monkeypatch):
    p, _ = labeled
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ProjectError, match=r"pip install 'longtail\[mlflow\]'"):
        p.train(mlflow=True)
    assert read(p.store, lambda u: u.models.list()) == []


def test_cli_tracking_and_train_mlflow(labeled, tmp_path):
    p, _ = labeled
    path = str(p.path)
    res = runner.invoke(app, ["tracking", "-p", path, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["mlflow"] is None
    res = runner.invoke(app, ["train", "-p", path, "--mlflow", "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.output)["mlflow_run"]
    assert (p.path / "mlruns" / "mlflow.db").exists()
    res = runner.invoke(app, ["tracking", "local", "-p", path])
    assert res.exit_code == 0 and "mlruns" in " ".join(res.output.split())
    res = runner.invoke(app, ["train", "-p", path, "--force", "--json"])
    assert res.exit_code == 0, res.output
    second = json.loads(res.output)["mlflow_run"]
    assert second and second != run_id
    res = runner.invoke(app, ["tracking", "off", "-p", path, "--json"])
    assert json.loads(res.output)["mlflow"] is None
    res = runner.invoke(app, ["train", "-p", path, "--force", "--json"])
    assert "mlflow_run" not in json.loads(res.output)
