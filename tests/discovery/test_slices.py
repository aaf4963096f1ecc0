"""Failure slices find the part of the pool the model gets wrong and nobody labeled."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.discovery.slices import ppi_error
from longtail.errors import InputError


def test_the_unlabeled_rare_class_is_the_first_slice_by_cluster_and_by_metadata(tail_project):
    p, (X, y, source) = tail_project
    r = p.slices(limit=0, examples=3)
    top = r["slices"][0]
    assert top["flag"] and top["labeled"] == 0 and top["error_lo"] > 0.5
    by_meta = [s for s in r["slices"] if s["kind"] == "metadata:source"]
    assert by_meta[0]["value"] == "mobile" and by_meta[0]["flag"]
    assert not any(s["flag"] for s in by_meta[1:])
    clusters = [s for s in r["slices"] if s["kind"] == "cluster"]
    ids = [int(e["id"][1:]) for e in clusters[0]["examples"]]
    assert ids and all(y[i] == "d" for i in ids)  # the examples are the rare class's rows
    # well-labeled slices are not "struggling"
    assert all(not s["struggling"] for s in r["slices"] if s["labeled"] >= 10)


def test_enqueued_slice_rows_come_first_in_the_next_round_then_leave_the_queue(tail_project):
    p, (X, y, source) = tail_project
    got = p.enqueue_slice("source=mobile", 6)
    assert got["queued"] == 6 and len(p.queue()) == 6
    q = p.query(10, strategy="random")
    queued = [r for r, k in zip(q.rows, q.kinds, strict=True) if k == "queued"]
    assert len(queued) == 6 and all(source[r] == "mobile" for r in queued)
    assert q.log["queued"]["sources"] == {"slice:source=mobile": 6}
    q2 = p.query(5, strategy="random")  # queued rows are in round 1 now: not taken again
    assert "queued" not in q2.kinds


def test_bad_slice_names_are_input_errors_and_change_nothing(tail_project):
    p, _ = tail_project
    for bad in ("cluster:999", "source=tablet", "colour=red", "nonsense"):
        with pytest.raises(InputError):
            p.enqueue_slice(bad, 5)
    assert p.queue() == []


def test_ppi_error_corrects_a_miscalibrated_model_and_covers():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        true_err = 0.3
        conf_pool = np.full(2000, 0.9)  # the model claims 10% error
        correct = rng.random(60) > true_err
        est, lo, hi = ppi_error(conf_pool, correct, np.full(60, 0.9))
        covered += lo <= true_err <= hi
    assert covered >= 180  # ~95% coverage, far from the model's 10% claim


def test_slices_cli_json_and_enqueue(tail_project):
    p, _ = tail_project
    root = str(p.path)
    res = CliRunner().invoke(app, ["slices", "-p", root, "--json", "--limit", "3"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["slices"]) == 3 and out["slices"][0]["flag"]
    res = CliRunner().invoke(app, ["slices", "-p", root, "--enqueue", "cluster:abc"])
    assert res.exit_code == 2 and "cluster" in res.output
    res = CliRunner().invoke(app, ["slices", "-p", root, "--enqueue", "source=mobile", "-n", "4"])
    assert res.exit_code == 0 and "queued 4" in res.output
