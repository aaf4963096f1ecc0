"""`longtail duplicates`: exact (content hash) and near (cosine on the vectors) groups."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.engine import duplicates as dup
from longtail.engine.duplicates import near_pairs
from longtail.errors import InputError
from longtail.project import Project
from tests.conftest import make_pool, write_csv
from tests.reads import read, write

runner = CliRunner()


class _Vectors:
    """An in-memory stand-in of a vector set (n_rows, dim, read, iter_chunks)."""

    def __init__(self, X):
        self.X, self.n_rows, self.dim = X, len(X), X.shape[1]

    def read(self, rows):
        return self.X[rows]

    def iter_chunks(self, rows=None, chunk_rows=65_536):
        rows = np.arange(self.n_rows) if rows is None else np.asarray(rows)
        for s in range(0, len(rows), chunk_rows):
            r = rows[s : s + chunk_rows]
            yield r, self.X[r]


def test_near_pairs_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    X[100] = X[7] * 3 + 0.01  # same direction: cosine ~1
    X[200] = X[7] + 0.05 * rng.normal(size=16)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T  # brute force, fine at 300 rows
    want = {(a, b) for a, b in zip(*np.nonzero(np.triu(S, 1) >= 0.95), strict=True)}
    got = {tuple(p) for p in near_pairs(_Vectors(X), 0.95).tolist()}
    assert got == want and {(7, 100), (7, 200)} <= got


def test_project_lists_exact_and_near_groups(project, tmp_path):
    X, y = make_pool(120, d=8, seed=2)
    X[50] = X[10] * 1.001  # a near-duplicate of row 10
    rows = [[f"s{i}", f"text {i}", *X[i].tolist()] for i in range(len(X))]
    rows.append(["copy", "text 3", *X[3].tolist()])  # same content as s3
    f = write_csv(tmp_path / "pool.csv", ["id", "text", *[f"v{j}" for j in range(8)]], rows)
    project.ingest(f, text="text", vector_prefix="v")
    project.import_labels(write_csv(tmp_path / "l.csv", ["id", "label"], [["s10", "c0"]]))
    r = project.duplicates(threshold=0.999)
    assert [[e["id"] for e in g] for g in r.exact] == [["s3", "copy"]]
    near = [[e["id"] for e in g] for g in r.near]
    assert ["s10", "s50"] in near and ["s3", "copy"] in near
    assert r.counts["near_with_labeled"] >= 1
    assert {"id": "s10", "label": "c0"} in next(g for g in r.near if g[0]["id"] == "s10")
    with pytest.raises(InputError, match="threshold"):
        project.duplicates(threshold=1.5)
    out = runner.invoke(app, ["duplicates", "-p", str(project.path), "--threshold", "0.999",
                              "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["counts"]["exact_groups"] == 1


def test_the_ivf_search_beyond_the_flat_size_finds_the_planted_pairs(monkeypatch):
    monkeypatch.setattr(dup, "FLAT_MAX", 500)
    monkeypatch.setattr(dup, "NLIST", 64)
    monkeypatch.setattr(dup, "PROJECT_DIM", 16)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    src = rng.choice(2000, size=40, replace=False)
    X[2000:2040] = X[src] + 0.02 * rng.normal(size=(40, 32))  # cosine ~0.9998
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    want = set()
    for a in range(0, 3000, 500):  # brute force in blocks, to check the IVF's recall
        S = Xn[a : a + 500] @ Xn.T
        i, j = np.nonzero(S >= 0.99)
        want |= {(min(p, q), max(p, q)) for p, q in zip((i + a).tolist(), j.tolist(),
                                                        strict=True) if p != q}
    got = {tuple(p) for p in near_pairs(_Vectors(X), 0.99).tolist()}
    assert {(int(s), 2000 + i) for i, s in enumerate(src)} <= got
    assert got == want  # re-scored exactly: nothing below the threshold either


# -- found when vectors arrive, kept, and left out of queries ------------------------

D = 32


@pytest.fixture
def proj(tmp_path, catalog_url):
    p = Project.init(tmp_path / "proj", eval_rate=0.1, db=catalog_url)
    yield p
    p.close()


def _pool_file(path, X, start=0, texts=None):
    rows = [[f"s{start + i}", texts[i] if texts else f"text {start + i}", *X[i].tolist()]
            for i in range(len(X))]
    return write_csv(path, ["id", "text", *[f"v{j}" for j in range(D)]], rows)


def _base(n, seed):
    """Isotropic vectors: two of them at cosine >= 0.98 in 32-d is a ~1e-20 event, so
    the only near-duplicates are the planted ones."""
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def _twin(x, rng):
    return (x + 1e-3 * rng.normal(size=x.shape)).astype(np.float32)


def _pool_rows(p, n):
    eval_rows = set(read(p.store, lambda u: u.samples.rows_by_split("eval")).tolist())
    return [r for r in range(n) if r not in eval_rows]


def _labels(p, tmp_path, pairs, name="l.csv"):
    return p.import_labels(write_csv(tmp_path / name, ["id", "label"],
                                     [[f"s{r}", lab] for r, lab in pairs]))


def _offered(p, **kw):
    """Every row a query can offer now (a batch as large as the pool), then cancelled."""
    q = p.query(10_000, strategy="random", **kw)
    p.cancel_round(q.round_id)
    return set(q.rows), q.log["duplicates"]


def _planted(p, tmp_path, n=300, twins=10, seed=3):
    """Ingest n rows plus `twins` near-copies (rows n.., of rows 10..) with vectors; the
    (source, twin) pairs whose rows both landed in the pool, and the ingest's report."""
    rng = np.random.default_rng(seed)
    X = _base(n, seed)
    X = np.concatenate([X, np.stack([_twin(X[10 + i], rng) for i in range(twins)])])
    report = p.ingest(_pool_file(tmp_path / "pool.csv", X), text="text", vector_prefix="v")
    pool = set(_pool_rows(p, len(X)))
    pairs = [(10 + i, n + i) for i in range(twins) if {10 + i, n + i} <= pool]
    assert len(pairs) >= 3
    return pairs, report, X


def test_near_duplicates_of_labeled_samples_are_not_offered(proj, tmp_path):
    pairs, report, X = _planted(proj, tmp_path)
    (a, twin_a), (b, twin_b) = pairs[:2]
    assert report.duplicates["searched"] == len(X)  # found at ingest, all rows new
    groups = proj.duplicates()
    assert groups.source == "saved" and groups.threshold == 0.98
    near = [[e["id"] for e in g] for g in groups.near]
    assert all([f"s{s}", f"s{t}"] in near for s, t in pairs), (near, pairs)
    _labels(proj, tmp_path, [(a, "c0")])
    offered, log = _offered(proj)
    assert twin_a not in offered and {b, twin_b} <= offered
    assert log["excluded"] == 1 and log["near"] == 1 and log["searched"] == 0
    offered, log = _offered(proj, include_duplicates=True)
    assert twin_a in offered and log["excluded"] == 0
    # Without the saved search (deleted, or a project older than it) the query redoes it.
    (proj.path / "state" / "precomputed.duplicates.npz").unlink()
    offered, log = _offered(proj)
    assert twin_a not in offered and log["fresh"] == "no saved search"
    assert log["searched"] == len(X)
    out = runner.invoke(app, ["query", "-p", str(proj.path), "-n", "5", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["log"]["duplicates"]["excluded"] == 1
    runner.invoke(app, ["rounds", "-p", str(proj.path), "--cancel", "4"])
    out = runner.invoke(app, ["query", "-p", str(proj.path), "-n", "5", "--json",
                              "--include-duplicates"])
    assert out.exit_code == 0 and json.loads(out.stdout)["log"]["duplicates"]["excluded"] == 0


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_a_later_ingest_searches_only_its_rows(proj, tmp_path, monkeypatch, index):
    if index == "ivf":  # the IVF path of a large pool, on a small one
        for name, value in (("FLAT_MAX", 100), ("NLIST", 8), ("PROJECT_DIM", 16)):
            monkeypatch.setattr(dup, name, value)
    pairs, report, X = _planted(proj, tmp_path)
    assert report.duplicates["index"] == index
    (a, twin_a), _ = pairs[:2]
    n_old = len(X)
    eval_row = int(read(proj.store, lambda u: u.samples.rows_by_split("eval"))[0])
    _labels(proj, tmp_path, [(a, "c0"), (eval_row, "c1")])
    rng = np.random.default_rng(9)
    fresh = _base(20, 11)
    # Three more twins of the labeled pool row and three of the labeled eval row.
    new = np.concatenate([fresh, np.stack([_twin(X[a], rng) for _ in range(3)]),
                          np.stack([_twin(X[eval_row], rng) for _ in range(3)])])
    report = proj.ingest(_pool_file(tmp_path / "more.csv", new, start=n_old), text="text",
                         vector_prefix="v")
    assert report.new == len(new)
    assert report.duplicates["searched"] == len(new)  # not the n_old rows searched before
    if index == "ivf":  # old rows come back from their saved codes: none read again
        assert report.duplicates["encoded"] == len(new) and "trained" not in report.duplicates
    assert report.duplicates["seconds"] >= 0
    pool = set(_pool_rows(proj, n_old + len(new)))
    twins = [r for r in range(n_old + 20, n_old + 26) if r in pool]
    assert len(twins) >= 3
    offered, log = _offered(proj)
    assert not offered & {twin_a, *twins}
    assert log["excluded"] == 1 + len(twins)
    # `--update` of one row's vectors to a copy of the labeled row: only it is searched.
    victim = next(r for r in sorted(offered) if r < n_old)
    Y = X.copy()
    Y[victim] = _twin(X[a], rng)
    report = proj.ingest(_pool_file(tmp_path / "pool2.csv", Y), text="text",
                         vector_prefix="v", update=True)
    assert report.updated == 1 and report.duplicates["searched"] == 1
    assert report.duplicates.get("encoded", 1) == 1
    offered, log = _offered(proj)
    assert victim not in offered and log["excluded"] == 2 + len(twins)


def test_exact_copies_are_left_out_with_the_near_search_off(tmp_path, catalog_url):
    p = Project.init(tmp_path / "proj", eval_rate=0.0, near_duplicate_threshold=0,
                     db=catalog_url)
    rng = np.random.default_rng(4)
    X = _base(60, 4)
    X = np.concatenate([X, X[3:4], _twin(X[3], rng)[None]])
    texts = [f"text {i}" for i in range(60)] + ["text 3", "text 3 again"]
    report = p.ingest(_pool_file(tmp_path / "pool.csv", X, texts=texts), text="text",
                      vector_prefix="v")
    assert report.duplicates is None  # no near search
    _labels(p, tmp_path, [(3, "c0")])
    offered, log = _offered(p)
    assert 60 not in offered and 61 in offered and log["excluded"] == 1
    assert log["exact"] == 1 and log["near"] == 0
    assert p.duplicates().counts["exact_groups"] == 1
    write(p.store, lambda u: u.settings.set("exclude_duplicates", False))  # the project-wide opt-out
    offered, log = _offered(p)
    assert 60 in offered and log == {"excluded": 0, "included": True}
    p.close()


def test_a_bad_threshold_is_refused_before_anything_is_made(tmp_path):
    for bad in (1.5, 0.2, -1, "high"):
        with pytest.raises(InputError, match="near-duplicate-threshold"):
            Project.init(tmp_path / "bad", near_duplicate_threshold=bad)
        assert not (tmp_path / "bad").exists()
    out = runner.invoke(app, ["init", str(tmp_path / "bad"), "--near-duplicate-threshold",
                              "0.3"])
    assert out.exit_code == 2 and "near-duplicate-threshold" in out.output
    assert not (tmp_path / "bad").exists()


def test_low_dimensional_vectors_get_no_near_search(project, tmp_path):
    X, _ = make_pool(200, d=8, seed=5)  # clustered 8-d rows: most have a row at cosine > 0.98
    f = write_csv(tmp_path / "pool.csv", ["id", *[f"v{j}" for j in range(8)]],
                  [[f"s{i}", *X[i].tolist()] for i in range(len(X))])
    report = project.ingest(f, vector_prefix="v")
    assert "below 32 dimensions" in report.duplicates["skipped"]
    _labels(project, tmp_path, [(r, "c0") for r in _pool_rows(project, 200)[:20]])
    offered, log = _offered(project)
    assert log["excluded"] == 0 and len(offered) == len(project.candidates())


class _TableEncoder:
    """An encoder that looks each text up in a table (the embed path without a model)."""

    name, needs, on_phase = "table", "text", None

    def __init__(self, table):
        self.table = table

    @property
    def dim(self):
        return D

    def encode(self, batch):
        return np.stack([self.table[t] for t in batch["text"]])

    def config(self):
        return {}


def test_embed_searches_the_rows_it_embedded(proj, tmp_path):
    rng = np.random.default_rng(6)
    X = _base(80, 6)
    table = {f"text {i}": X[i] for i in range(80)}
    table["text 5, again"] = _twin(X[5], rng)
    table["text 7, again"] = _twin(X[7], rng)
    texts = [f"text {i}" for i in range(60)] + ["text 5, again"]
    f = write_csv(tmp_path / "a.csv", ["id", "text"], [[f"s{i}", t] for i, t in enumerate(texts)])
    assert proj.ingest(f, text="text").duplicates is None  # no vectors yet
    out = proj.embed("minilm", encoder_impl=_TableEncoder(table))
    assert out.duplicates["searched"] == 61 and out.duplicates["pairs"] == 1
    more = [f"text {i}" for i in range(60, 80)] + ["text 7, again"]
    f = write_csv(tmp_path / "b.csv", ["id", "text"],
                  [[f"s{61 + i}", t] for i, t in enumerate(more)])
    proj.ingest(f, text="text")
    out = proj.embed("minilm", encoder_impl=_TableEncoder(table))
    assert out.duplicates["searched"] == 21 and out.duplicates["pairs"] == 2
    pool = set(_pool_rows(proj, 82))
    twin_rows = [r for r, src in ((60, 5), (81, 7)) if {r, src} <= pool]
    assert twin_rows
    _labels(proj, tmp_path, [(5, "c0"), (7, "c1")])
    offered, log = _offered(proj)
    assert not offered & set(twin_rows) and log["excluded"] == len(twin_rows)


def test_the_ivf_search_finds_the_same_pairs_on_any_number_of_threads(monkeypatch):
    monkeypatch.setattr(dup, "FLAT_MAX", 500)
    monkeypatch.setattr(dup, "NLIST", 64)
    monkeypatch.setattr(dup, "PROJECT_DIM", 16)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4000, 32)).astype(np.float32)
    src = rng.choice(3000, size=60, replace=False)
    X[3000:3060] = X[src] + 0.02 * rng.normal(size=(60, 32))
    got = {}
    for threads in (1, 3):
        monkeypatch.setattr(dup, "THREADS", threads)
        got[threads] = near_pairs(_Vectors(X), 0.99)
    assert np.array_equal(got[1], got[3])
    assert {(int(s), 3000 + i) for i, s in enumerate(src)} <= {tuple(p) for p in got[1].tolist()}


def test_a_bulk_ingest_leaves_the_search_to_the_next_query(proj, tmp_path, monkeypatch):
    """Above SEARCH_AT_INGEST_MAX new rows, ingest runs at the reader's speed and says
    the search is deferred; `duplicates` and the next query search those rows then, and
    the twins of labeled samples are still left out."""
    from longtail.engine import data

    monkeypatch.setattr(data, "SEARCH_AT_INGEST_MAX", 100)
    pairs, report, X = _planted(proj, tmp_path)
    assert report.duplicates["deferred"] and report.duplicates["rows"] == len(X)
    assert not (proj.path / "state" / "precomputed.duplicates.npz").exists()
    groups = proj.duplicates()
    assert groups.source == "saved, brought up to date"
    near = [[e["id"] for e in g] for g in groups.near]
    assert all([f"s{s}", f"s{t}"] in near for s, t in pairs), (near, pairs)
    (a, twin_a), _ = pairs[:2]
    _labels(proj, tmp_path, [(a, "c0")])
    offered, log = _offered(proj)
    assert twin_a not in offered and log["excluded"] == 1 and log["searched"] == 0
