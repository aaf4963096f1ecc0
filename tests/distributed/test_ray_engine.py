"""The Ray engine (`query --engine ray`): pool scoring as a Ray Data job on a local Ray
(num_cpus=2) selects exactly the rows the local engine selects for the same seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from longtail.cli import app  # noqa: E402
from longtail.distributed import ray_engine  # noqa: E402
from tests.cli.test_cli_engine import _labeled_project, ok  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (its start-up takes seconds)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> str:
    return _labeled_project(tmp_path_factory.mktemp("ray"))


def _query(proj: str, *extra: str, strategy: str = "margin") -> dict:
    return json.loads(ok(["query", "-p", proj, "-n", "25", "--strategy", strategy,
                          "--seed", "7", "--json", *extra]).stdout)


def test_query_on_ray_selects_the_rows_the_local_engine_selects(local_ray, labeled,
                                                                tmp_path, monkeypatch):
    # Small pieces, so the job has several blocks spread over the actor pool.
    monkeypatch.setattr(ray_engine, "PIECE_ROWS", 40)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(labeled, local)
    shutil.copytree(labeled, on_ray)
    expected = _query(str(local))
    got = _query(str(on_ray), "--engine", "ray")
    assert got["log"].get("engine") == "ray" and "engine" not in expected["log"]
    assert got["log"]["engine_nodes"] == 1
    assert len(got["rows"]) == 25 and got["rows"] == expected["rows"]


@pytest.mark.parametrize("strategy", ["auto", "cluster_margin", "badge"])
def test_strategies_that_use_vectors_too_select_the_local_engines_rows_on_ray(
        local_ray, labeled, tmp_path, monkeypatch, strategy):
    # The pool scoring runs on Ray; the clustering, the arms and the gradient embeddings
    # run on the driver on the same probabilities, so the round is the local one.
    monkeypatch.setattr(ray_engine, "PIECE_ROWS", 40)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(labeled, local)
    shutil.copytree(labeled, on_ray)
    expected = _query(str(local), strategy=strategy)
    got = _query(str(on_ray), "--engine", "ray", strategy=strategy)
    assert got["log"].get("engine") == "ray"
    assert len(got["rows"]) == 25 and got["rows"] == expected["rows"]
    assert got["kinds"] == expected["kinds"]


def test_the_local_engine_never_imports_ray(labeled, tmp_path):
    import subprocess
    import sys

    proj = tmp_path / "p"
    shutil.copytree(labeled, proj)
    code = ("import sys\nfrom longtail.cli import app\n"
            f"try:\n    app(['query', '-p', {str(proj)!r}, '-n', '10', '--strategy', 'auto'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')),"
            " file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_workers_return_the_models_probabilities_and_scores(local_ray, labeled):
    from longtail.project import Project
    from longtail.strategies import scores as S

    p = Project(labeled)
    try:
        model, vs = _inputs(p)
        rows = np.arange(3, vs.n_rows, 2, dtype=np.int64)
        probs, scores, nodes = ray_engine.score_pool(model, vs, rows, score="entropy",
                                                     piece_rows=37)
        assert nodes == 1  # a local Ray is one node
        local = np.concatenate([model.predict_proba(X) for _, X in vs.iter_chunks(rows)])
        assert probs.dtype == np.float32 and scores.dtype == np.float64
        np.testing.assert_allclose(probs, local, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(scores, S.entropy(probs), rtol=1e-12)
    finally:
        p.close()


def _inputs(p):
    from longtail.engine import views
    from longtail.engine.models import load_model

    with p.store.reading() as uow:
        vs = views.vectors(uow, p._settings(), None, complete=False)
        return load_model(uow, uow.models.latest(), predict_only=True), vs


def test_other_strategies_on_ray_are_refused_naming_those_it_runs(tmp_path: Path):
    from tests.cli.test_cli_engine import project_with_vectors

    proj, _ = project_with_vectors(tmp_path, n=60)
    r = CliRunner().invoke(app, ["query", "-p", proj, "-n", "5", "--strategy", "coreset",
                                 "--engine", "ray"])
    assert r.exit_code == 2
    assert "scores nothing" in r.output and "coreset" in r.output
    assert all(n in r.output for n in ("auto", "cluster_margin", "margin", "entropy"))
    r = CliRunner().invoke(app, ["query", "-p", proj, "-n", "5", "--engine", "spark"])
    assert r.exit_code == 2 and "--engine must be one of local, ray" in r.output


def test_embed_on_ray_writes_the_local_engines_vectors(local_ray, tmp_path, monkeypatch):
    """`embed --engine ray`: workers read the texts and metadata from the column files
    and rebuild the encoder from its saved config; the vectors equal the local engine's."""
    from tests.conftest import make_pool, write_csv

    X, _ = make_pool(90, d=4, seed=2)
    rows = [[f"s{i}", f"text {i}", *X[i].tolist(), "web" if i % 3 else "app"] for i in range(90)]
    pool = write_csv(tmp_path / "pool.csv", ["id", "text", "f0", "f1", "f2", "f3", "source"], rows)
    proj = str(tmp_path / "p")
    ok(["init", proj])
    ok(["ingest", str(pool), "-p", proj, "--text", "text"])
    on_ray = tmp_path / "on_ray"
    shutil.copytree(proj, on_ray)
    ok(["embed", "-p", proj, "--encoder", "tabular"])
    monkeypatch.setattr(ray_engine, "EMBED_PIECE_ROWS", 16)  # several blocks, any order
    ok(["embed", "-p", str(on_ray), "--encoder", "tabular", "--engine", "ray"])
    from longtail.store import Store

    got = []
    for where in (proj, on_ray):
        store = Store.open(where)
        try:
            with store.reading() as uow:
                vs = uow.vector_set("tabular")
                assert uow.settings.get("encoder") == "tabular"
            got.append(vs.read(np.arange(vs.n_rows)))
        finally:
            store.close()
    assert got[0].shape == (90, got[0].shape[1]) and got[0].shape[1] > 0
    np.testing.assert_array_equal(got[1], got[0])


def test_the_near_duplicate_search_encodes_on_ray_and_finds_the_local_pairs(
        local_ray, tmp_path, monkeypatch):
    """A bulk ingest leaves the search to the next query; `query --engine ray` runs its
    encoding pass (IVF lists and codes per row) as a Ray job, the join on the driver:
    the saved search equals the local engine's, the planted twins among its pairs."""
    from longtail.engine import data
    from longtail.engine import duplicates as dup
    from longtail.store import Store
    from tests.conftest import write_csv

    monkeypatch.setattr(data, "SEARCH_AT_INGEST_MAX", 100)
    monkeypatch.setattr(dup, "FLAT_MAX", 500)
    monkeypatch.setattr(dup, "NLIST", 64)
    monkeypatch.setattr(dup, "PROJECT_DIM", 16)
    monkeypatch.setattr(ray_engine, "PIECE_ROWS", 700)  # several blocks, any order
    encoded_on_ray: list[int] = []
    encode_lists = ray_engine.encode_lists

    def spy(vectors, rows, encoder, **kw):
        for block in encode_lists(vectors, rows, encoder, **kw):
            encoded_on_ray.append(len(block[0]))
            yield block

    monkeypatch.setattr(ray_engine, "encode_lists", spy)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    src = rng.choice(2000, size=30, replace=False)
    X[2000:2030] = X[src] + 0.02 * rng.normal(size=(30, 32))
    rows = [[f"s{i}", *X[i].tolist()] for i in range(len(X))]
    pool = write_csv(tmp_path / "pool.csv", ["id", *[f"v{j}" for j in range(32)]], rows)
    proj = tmp_path / "p"
    ok(["init", str(proj)])
    ok(["ingest", str(pool), "-p", str(proj), "--vector-prefix", "v"])
    on_ray, listed_on_ray = tmp_path / "on_ray", tmp_path / "listed_on_ray"
    shutil.copytree(proj, on_ray)
    shutil.copytree(proj, listed_on_ray)
    # `longtail duplicates --engine ray` brings the saved search up to date the same way
    listed = json.loads(ok(["duplicates", "-p", str(listed_on_ray), "--engine", "ray",
                            "--json"]).stdout)
    assert listed["source"] == "saved, brought up to date" and len(encoded_on_ray) >= 5
    encoded_on_ray.clear()
    got = {}
    for where, extra in ((proj, []), (on_ray, ["--engine", "ray"]), (listed_on_ray, [])):
        out = json.loads(ok(["query", "-p", str(where), "-n", "10", "--strategy", "auto",
                             "--json", *extra]).stdout)
        assert out["log"]["duplicates"]["searched"] == (0 if where == listed_on_ray else 3000)
        store = Store.open(where)
        try:
            with store.reading() as uow:
                vs = uow.vector_set("precomputed")
            state = dup.load(store, vs)
            state.attach_index(dup._load_arrays(store, "precomputed.duplicates-index",
                                                lambda a: {k: a[k] for k in a.files}))
            got[str(where.name) + str(extra)] = state, out["rows"]
        finally:
            store.close()
    (local, local_rows), (ray_state, ray_rows), (listed_state, _) = got.values()
    for state in (ray_state, listed_state):
        np.testing.assert_array_equal(state.assign, local.assign)
        np.testing.assert_array_equal(state.codes, local.codes)
        np.testing.assert_array_equal(state.pairs, local.pairs)
    assert {(int(s), 2000 + i) for i, s in enumerate(src)} <= {tuple(p) for p in
                                                               local.pairs.tolist()}
    assert ray_rows == local_rows
    assert sum(encoded_on_ray) == 3000 and len(encoded_on_ray) >= 5
