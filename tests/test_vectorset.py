"""The chunked vector files: appended rows, reads across chunks, a reader that outlives a write."""

import numpy as np

from longtail.store import vectors as V
from longtail.store.vectors import VectorSet


def test_appended_rows_read_back_across_chunks_and_after_growth(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "CHUNK_ROWS", 100)
    X = np.random.default_rng(0).standard_normal((250, 6)).astype(np.float32)
    vs = VectorSet(tmp_path / "v", 6)
    vs.write(0, X[:30])
    vs.sync()
    vs.n_rows = 30
    np.testing.assert_array_equal(vs.read(np.arange(30)), X[:30])  # maps the short chunk
    # the file grows after the reader mapped it; the reader sees the new rows
    vs.write(30, X[30:250])
    vs.sync()
    vs.n_rows = 250
    rows = np.random.default_rng(1).permutation(250)
    np.testing.assert_array_equal(vs.read(rows), X[rows])
    got = np.concatenate([c for _, c in vs.iter_chunks(chunk_rows=64)])
    np.testing.assert_array_equal(got, X)
    # a chunk file holds only what was written (no pre-sized holes), and loads as .npy
    sizes = sorted(p.stat().st_size for p in (tmp_path / "v").glob("chunk-*.npy"))
    assert sizes[0] < sizes[-1]
    full = np.load(tmp_path / "v" / "chunk-000000.npy", mmap_mode="r")
    np.testing.assert_array_equal(full, X[:100])


def test_iter_chunks_of_sorted_rows_across_chunk_files_gives_the_rows_read_gives(tmp_path):
    from longtail.store.vectors import CHUNK_ROWS, VectorSet

    n = CHUNK_ROWS + 5000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    vs = VectorSet(tmp_path / "v", 3, "float32", 0)
    vs.write(0, X)
    vs = VectorSet(tmp_path / "v", 3, "float32", n)
    rows = np.sort(rng.choice(n, size=n // 2, replace=False))
    got_rows, got = zip(*vs.iter_chunks(rows, chunk_rows=10_000), strict=True)
    np.testing.assert_array_equal(np.concatenate(got_rows), rows)
    np.testing.assert_array_equal(np.concatenate(got), X[rows])
    assert max(len(r) for r in got_rows) <= 10_000
    unsorted = rows[::-1].copy()
    back = np.concatenate([v for _, v in vs.iter_chunks(unsorted, chunk_rows=10_000)])
    np.testing.assert_array_equal(back, X[unsorted])
