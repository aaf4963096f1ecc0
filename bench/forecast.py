"""Benchmark 7, forecast: from the learning curve up to 1,000 labels, predict accuracy at 2,000.

Banking77 MiniLM embeddings, multinomial logistic regression (C=10,
max_iter=300), active learning from 0 labels in batches of 100 with
`longtail.strategies.select`. For each strategy and seed the curve of test
accuracy by labels is fitted with `longtail.evaluation.fit_learning_curve`
on the points up to the fit budget only, and the forecast at the final
budget is compared with the accuracy measured there.

    python bench/forecast.py --size smoke|full [--out PATH]

smoke: 1 seed, random + margin, fit up to 400, predict 600 (< 60 s).
full:  5 seeds, random + margin + auto, fit up to 1,000, predict 2,000.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED_DATA, header, peak_rss_bytes, write_result  # noqa: E402
from datasets import banking77_arrays  # noqa: E402
from longtail.evaluation import fit_learning_curve  # noqa: E402

DATA = SHARED_DATA / "banking77" / "minilm.npz"
BATCH = 100
LEVEL = 0.9
SIZES = {
    "smoke": {"seeds": [0], "strategies": ["random", "margin"], "fit_upto": 400, "predict_at": 600},
    "full": {
        "seeds": [0, 1, 2, 3, 4],
        "strategies": ["random", "margin", "auto"],
        "fit_upto": 1000,
        "predict_at": 2000,
    },
}


def learning_curve(
    strategy: str, seed: int, budget: int, X: np.ndarray, y: np.ndarray,
    X_test: np.ndarray, y_test: np.ndarray,
) -> tuple[list[int], list[float], float]:
    """Active learning from 0 labels to `budget`: labels, test accuracy, query seconds."""
    from sklearn.linear_model import LogisticRegression

    from longtail.strategies import select

    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(X), dtype=bool)
    model = None
    n_labels: list[int] = []
    accuracy: list[float] = []
    query_seconds = 0.0
    while labeled.sum() < budget:
        candidates = np.flatnonzero(~labeled).astype(np.int64)
        probs = model.predict_proba(X[candidates]) if model is not None else None
        labeled_rows = np.flatnonzero(labeled).astype(np.int64)
        t0 = time.perf_counter()
        rows = select(
            strategy, BATCH, candidates, rng=rng, vectors=X, probs=probs,
            classes=model.classes_ if model is not None else None,
            labeled_rows=labeled_rows, labeled_y=y[labeled_rows], history=None,
        ).rows
        query_seconds += time.perf_counter() - t0
        labeled[np.asarray(rows, dtype=np.int64)] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes at max_iter=300
            model = LogisticRegression(C=10, max_iter=300).fit(X[labeled], y[labeled])
        n_labels.append(int(labeled.sum()))
        accuracy.append(float(np.mean(model.predict(X_test) == y_test)))
    return n_labels, accuracy, query_seconds


def forecast_run(
    n_labels: list[int], accuracy: list[float], fit_upto: int, predict_at: int, seed: int
) -> dict:
    """Fit on points up to `fit_upto` and compare the forecast at `predict_at` with the truth."""
    n = np.asarray(n_labels)
    acc = np.asarray(accuracy)
    seen = n <= fit_upto
    curve = fit_learning_curve(n[seen], acc[seen], level=LEVEL, seed=seed)
    predicted, lo, hi = curve.forecast_at(predict_at)
    actual = float(acc[n == predict_at][0])
    return {
        "predicted": predicted, "actual": actual, "lo": lo, "hi": hi,
        "error": predicted - actual, "covered": bool(lo <= actual <= hi),
        "fit": {"a": curve.a, "b": curve.b, "c": curve.c, "method": curve.method},
    }


def summarise(runs: list[dict]) -> dict:
    errors = np.abs([r["error"] for r in runs])
    return {
        "mean_abs_error": float(errors.mean()),
        "max_abs_error": float(errors.max()),
        "coverage": float(np.mean([r["covered"] for r in runs])),
        "mean_interval_width": float(np.mean([r["hi"] - r["lo"] for r in runs])),
        "n_runs": len(runs),
    }


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread: the fits are small, and on a shared machine threads
    # oversubscribe the cores (measured 5-20x slower).
    with threadpool_limits(limits=1):
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument(
        "--out", default=None, help="result file (default bench/results/forecast.json)"
    )
    args = parser.parse_args(argv)
    # The shared embeddings, else (smoke size, as in CI) a synthetic stand-in.
    data, source = banking77_arrays(args.size, shared=DATA.parents[1], embed=False)
    if data is None:
        print(f"forecast: {DATA} is absent; nothing to measure")
        return 0
    size = SIZES[args.size]
    X, y = data["train_X"], data["train_y"]
    X_test, y_test = data["test_X"], data["test_y"]
    params = {
        "size": args.size, "batch": BATCH, "level": LEVEL,
        "model": "LogisticRegression(C=10, max_iter=300)",
        **size,
    }
    result = header("forecast", f"banking77 (all-MiniLM-L6-v2 embeddings): {source}", params)
    t0 = time.perf_counter()
    runs = []
    for strategy in size["strategies"]:
        for seed in size["seeds"]:
            n_labels, accuracy, query_seconds = learning_curve(
                strategy, seed, size["predict_at"], X, y, X_test, y_test
            )
            run = {"strategy": strategy, "seed": seed}
            run.update(forecast_run(n_labels, accuracy, size["fit_upto"], size["predict_at"], seed))
            run["curve"] = {"n_labels": n_labels, "accuracy": accuracy}
            run["query_seconds"] = query_seconds
            runs.append(run)
            print(
                f"{strategy:>7} seed {seed}: predicted {run['predicted']:.4f} "
                f"[{run['lo']:.4f}, {run['hi']:.4f}] actual {run['actual']:.4f} "
                f"error {run['error']:+.4f}",
                flush=True,
            )
    overall = summarise(runs)
    result.update({
        "runs": runs,
        "mean_abs_error": overall["mean_abs_error"],
        "coverage": overall["coverage"],
        "overall": overall,
        "by_strategy": {
            s: summarise([r for r in runs if r["strategy"] == s]) for s in size["strategies"]
        },
        "target": {"abs_error_at_most": 0.015, "coverage_at_least": 0.8},
        "seconds": time.perf_counter() - t0,
        "peak_rss_bytes": peak_rss_bytes(),
    })
    path = write_result(result, args.out)
    print(
        f"forecast: mean |error| {overall['mean_abs_error']:.4f}, "
        f"coverage {overall['coverage']:.2f} of {len(runs)} runs -> {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
