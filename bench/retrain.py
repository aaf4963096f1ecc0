"""Benchmark 3, retrain: what does each round cost in compute?

Per-round training seconds of the default learner (LinearHead) at 1k, 10k and
100k labels, warm-started from the previous round's model (trained on 90% of
the labels) against trained from scratch, and the accuracy difference.

Data: 384-d unit vectors. When ``../shared/data/banking77/minilm.npz`` exists,
Banking77 MiniLM embeddings resampled with replacement plus Gaussian noise
(77 real intents, real geometry); otherwise Gaussian clouds around 77 random
class means. Fixed seed either way. Accuracy on 3,000 held-out rows made the
same way (from the Banking77 test split when it is used).

    python bench/retrain.py --size smoke|full [--out PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED_DATA, header, peak_rss_bytes, write_result  # noqa: E402
from longtail.learners import LinearHead  # noqa: E402

SIZES = {"smoke": [1_000, 5_000], "full": [1_000, 10_000, 100_000]}
DIM = 384
N_CLASSES = 77
NOISE = 0.3  # L2 norm of the added noise, relative to the unit vectors
PREVIOUS_FRACTION = 0.9
TEST_ROWS = 3_000
SEED = 0


class Source:
    """Draws labeled 384-d unit vectors: resampled Banking77 or synthetic Gaussian."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        path = SHARED_DATA / "banking77" / "minilm.npz"
        if path.exists():
            data = np.load(path, allow_pickle=False)
            self.name = "banking77-minilm-resampled"
            self.train = (data["train_X"].astype(np.float32), data["train_y"])
            self.test = (data["test_X"].astype(np.float32), data["test_y"])
        else:
            self.name = "synthetic-gaussian-77"
            means = rng.normal(size=(N_CLASSES, DIM)).astype(np.float32)
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            labels = np.arange(N_CLASSES)
            self.train = self.test = (means, labels)

    def draw(self, n: int, split: str) -> tuple[np.ndarray, np.ndarray]:
        base_X, base_y = self.train if split == "train" else self.test
        rows = self.rng.integers(0, len(base_X), size=n)
        X = base_X[rows] + self.rng.normal(
            scale=NOISE / np.sqrt(DIM), size=(n, DIM)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return X, base_y[rows]


def _timed_fit(head: LinearHead, X: np.ndarray, y: np.ndarray) -> tuple[float, LinearHead]:
    started = time.perf_counter()
    head.fit(X, y)
    return time.perf_counter() - started, head


def run_size(source: Source, labels: int, repeats: int, test: tuple) -> dict:
    X, y = source.draw(labels, "train")
    previous_labels = int(round(PREVIOUS_FRACTION * labels))
    previous_seconds, previous = _timed_fit(LinearHead(), X[:previous_labels],
                                            y[:previous_labels])
    saved = previous.state_dict()
    warm_times, cold_times = [], []
    warm = cold = None
    for repeat in range(repeats):
        # Alternate the order so drift in machine load does not favour one side.
        order = ("warm", "cold") if repeat % 2 == 0 else ("cold", "warm")
        for which in order:
            if which == "warm":
                seconds, warm = _timed_fit(LinearHead.from_state_dict(saved), X, y)
                warm_times.append(seconds)
            else:
                seconds, cold = _timed_fit(LinearHead(warm_start=False), X, y)
                cold_times.append(seconds)
    Xt, yt = test
    warm_accuracy = float(np.mean(warm.predict(Xt) == yt))
    cold_accuracy = float(np.mean(cold.predict(Xt) == yt))
    warm_mean, cold_mean = statistics.fmean(warm_times), statistics.fmean(cold_times)
    return {
        "labels": labels,
        "previous_labels": previous_labels,
        "classes": int(cold.classes_.size),
        "repeats": repeats,
        "warm_seconds": warm_mean,
        "warm_seconds_sd": statistics.stdev(warm_times) if repeats > 1 else 0.0,
        "cold_seconds": cold_mean,
        "cold_seconds_sd": statistics.stdev(cold_times) if repeats > 1 else 0.0,
        "speedup": cold_mean / warm_mean if warm_mean > 0 else None,
        "warm_iterations": int(warm.n_iter_),
        "cold_iterations": int(cold.n_iter_),
        "warm_converged": bool(warm.converged_),
        "cold_converged": bool(cold.converged_),
        "previous_round_seconds": previous_seconds,
        "warm_accuracy": warm_accuracy,
        "cold_accuracy": cold_accuracy,
        "accuracy_delta": warm_accuracy - cold_accuracy,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", default=None, help="result file (default bench/results/)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed fits per side (default: 1 smoke; 3 full, 1 at 100k)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    source = Source(rng)
    test = source.draw(TEST_ROWS, "test")
    learner = LinearHead()
    params = {
        "size": args.size, "sizes": SIZES[args.size], "dim": DIM, "noise": NOISE,
        "previous_fraction": PREVIOUS_FRACTION, "test_rows": TEST_ROWS, "seed": SEED,
        "learner": repr(learner), "dtype": "float32",
    }
    result = header("retrain", source.name, params)
    result["runs"] = []
    for labels in SIZES[args.size]:
        if args.repeats is not None:
            repeats = args.repeats
        else:
            repeats = 1 if args.size == "smoke" or labels >= 100_000 else 3
        run = run_size(source, labels, repeats, test)
        result["runs"].append(run)
        print(f"labels={labels:>7}  warm {run['warm_seconds']:.2f}s ({run['warm_iterations']} it)"
              f"  cold {run['cold_seconds']:.2f}s ({run['cold_iterations']} it)"
              f"  speedup {run['speedup']:.1f}x  accuracy delta {run['accuracy_delta']:+.4f}",
              flush=True)
    result["peak_rss_bytes"] = peak_rss_bytes()
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
