from __future__ import annotations

import numpy as np


def blobs(
    n_per: int, centers: np.ndarray, spread: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs around ``centers``; returns (X float32, y int)."""
    rng = np.random.default_rng(seed)
    dim = centers.shape[1]
    X = np.concatenate([c + spread * rng.standard_normal((n_per, dim)) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per)
    return X.astype(np.float32), y
