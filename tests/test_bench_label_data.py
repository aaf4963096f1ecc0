"""label_efficiency without the shared embeddings embeds the CSVs itself (BENCHMARKS.md §1)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench"


class _HashEncoder:
    """A stand-in text encoder: deterministic 8-d vectors from the text's characters."""

    def __init__(self):
        self.calls = 0

    def encode(self, batch: dict) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), *(ord(c) for c in (t + " " * 7)[:7])] for t in batch["text"]],
                        dtype=np.float32)


def test_missing_shared_embeddings_are_made_from_the_csvs_and_cached(tmp_path):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from run import load

    le = load(BENCH / "label_efficiency.py")
    enc = _HashEncoder()
    cache = tmp_path / "emb.npz"
    (X, y, Xt, yt, names), path = le.load_data("full", shared=tmp_path / "none", cache=cache,
                                               encoder=enc)
    assert path == str(cache) or Path(path) == cache
    assert X.shape == (10_003, 8) and Xt.shape == (3_080, 8) and len(names) == 77
    assert len(y) == len(X) and len(yt) == len(Xt)
    calls = enc.calls
    le.load_data("smoke", shared=tmp_path / "none", cache=cache, encoder=enc)
    assert enc.calls == calls  # the second load reads the cache
