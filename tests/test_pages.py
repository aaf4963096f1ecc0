import numpy as np

from longtail.pages import release
from longtail.strategies import ArrayVectors


def _rss_file_pages_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return 0


def test_a_pass_over_a_memmap_keeps_data_and_gives_pages_back(tmp_path):
    X = np.random.default_rng(0).standard_normal((40_000, 128)).astype(np.float32)  # 20 MB
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = _rss_file_pages_kb()
    total = np.zeros(128)
    for _, chunk in ArrayVectors(mm).iter_chunks(chunk_rows=4096):
        total += chunk.astype(np.float64).sum(axis=0)
    grown = _rss_file_pages_kb() - before
    np.testing.assert_allclose(total, X.astype(np.float64).sum(axis=0), atol=1e-6)
    assert grown < 8_000  # well under the 20 MB touched
    view = mm[100:200]
    release(view)
    np.testing.assert_array_equal(view, X[100:200])  # pages come back on access
    release(X[:10])  # not a mapping: nothing happens
