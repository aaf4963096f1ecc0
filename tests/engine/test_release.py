"""`train --release`: the model to ship trains on every label, eval rows included, and
its accuracy comes from cross-fitting; the loop's models never see an eval row."""

from __future__ import annotations

import numpy as np

from tests.conftest import write_csv
from tests.reads import read


def _label_all(p, tmp_path, n=120):
    truth = {ext: meta["truth"] for b in read(p.store,
                                              lambda u: list(u.samples.iter())) for _, ext, _, meta in b}
    eval_ids = [f"s{r}" for r in read(p.store, lambda u: u.samples.rows_by_split("eval"))[:20]]
    pool_ids = [f"s{r}" for r in p.candidates()[:n]]
    p.import_labels(write_csv(tmp_path / "l.csv", ["id", "label"],
                              [[i, truth[i]] for i in eval_ids + pool_ids]))
    return eval_ids, pool_ids


def test_release_trains_on_eval_labels_too_and_stays_apart_from_the_loop(loaded, tmp_path):
    eval_ids, pool_ids = _label_all(loaded, tmp_path)
    loop = loaded.train()
    rel = loaded.release()
    assert rel.labels == len(eval_ids) + len(pool_ids) == loop.labels + len(eval_ids)
    assert rel.eval_labels == len(eval_ids) and "cross-fitting" in rel.estimate
    acc = rel.metrics["accuracy"]
    assert acc["lo"] <= acc["value"] <= acc["hi"] and acc["value"] > 0.8  # separable blobs
    # The loop's latest model is still the loop's; the release loads on its own.
    assert read(loaded.store, lambda u: u.models.latest())["id"] == loop.model_id
    assert len(read(loaded.store, lambda u: u.models.list())) == 1
    X = loaded.vectors().read(np.arange(10))
    assert loaded.release_model(rel.release_id).predict_proba(X).shape == (10, 3)


def test_cli_train_release(loaded, tmp_path):
    from typer.testing import CliRunner

    from longtail.cli import app

    _label_all(loaded, tmp_path)
    result = CliRunner().invoke(app, ["train", "--release", "-p", str(loaded.path)])
    assert result.exit_code == 0, result.output
    assert "release 1:" in result.output and "cross-fitting" in result.output
