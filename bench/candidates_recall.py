"""Cluster-level candidates against an exact pass (issue 31): how many of the rows an
exact margin pass picks does the bounded candidate set hold, and what does it cost?

selection_scale's synthetic pool (Zipf-sized clusters, unit vectors, 384-d, its seed),
`--pool` rows in memory, a LogisticRegression on its first 1,000 rows (the benchmark's
model). For each batch size k: `strategies.candidates.narrow` with its thresholds
scaled to the pool (`NARROW_ABOVE` 0, `MIN_ROWS` = `--min-share` of the pool, the
`ROWS_PER_PICK` of `--rows-per-pick`), the first call building the pool clustering (the index), a
second call with another seed reusing it; against the exact top-k margin of every
candidate. `path` "library": the functions called in one process.
Writes bench/results/candidates_recall.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, header, write_result  # noqa: E402
from selection_scale import N_TRAIN, generated_chunks, train_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full",
                    help="smoke: 20,000 rows, batches 100 and 500 (CI's run)")
    ap.add_argument("--pool", type=int, default=None, help="default 300,000 (smoke 20,000)")
    ap.add_argument("--batches", default=None, help="default 1000,5000 (smoke 100,500)")
    ap.add_argument("--min-share", type=float, default=0.02)
    ap.add_argument("--rows-per-pick", type=int, default=None,
                    help="candidate rows kept per row to select (default: the module's)")
    ap.add_argument("--out", default=str(RESULTS / "candidates_recall.json"))
    args = ap.parse_args(argv)
    smoke = args.size == "smoke"
    args.pool = args.pool or (20_000 if smoke else 300_000)
    args.batches = args.batches or ("100,500" if smoke else "1000,5000")
    from longtail.strategies import ArrayVectors
    from longtail.strategies import candidates as C
    from longtail.strategies import scores as S

    X = np.empty((args.pool, 384), np.float32)
    y = np.empty(args.pool, np.int16)
    for start, v, lab in generated_chunks(args.pool):
        X[start:start + len(v)], y[start:start + len(v)] = v, lab
    reader = ArrayVectors(X)
    model = train_model(reader, y)
    cand = np.arange(N_TRAIN, args.pool, dtype=np.int64)
    t0 = time.perf_counter()
    exact_scores = S.margin(model.predict_proba(X[cand]))
    exact_seconds = time.perf_counter() - t0
    C.NARROW_ABOVE = 0
    C.MIN_ROWS = int(args.min_share * args.pool)
    C.ROWS_PER_PICK = args.rows_per_pick or C.ROWS_PER_PICK
    result = header("candidates_recall", "synthetic: selection_scale's Zipf-sized cluster "
                    "mixture, unit vectors, 384-d, float32 in memory",
                    {"pool": args.pool, "min_rows": C.MIN_ROWS,
                     "rows_per_pick": C.ROWS_PER_PICK,
                     "sample_per_cluster": C.SAMPLE_PER_CLUSTER,
                     "load": [round(x, 2) for x in os.getloadavg()]})
    runs = []
    state: dict = {}
    for k in (int(b) for b in args.batches.split(",")):
        exact = cand[np.argsort(-exact_scores, kind="stable")[:k]]
        for call, seed in (("first", 1), ("again", 2)):
            t0 = time.perf_counter()
            got = C.narrow("margin", cand, k, rng=np.random.default_rng(seed), vectors=reader,
                           probs_of=model.predict_proba, state=state,
                           labeled_rows=np.arange(N_TRAIN, dtype=np.int64))
            seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.predict_proba(X[got.rows])  # the exact scoring of the kept set
            kept_seconds = time.perf_counter() - t0
            recall = float(np.isin(exact, got.rows).mean())
            runs.append({"path": "library", "pool": args.pool, "batch": k, "call": call,
                         "strategy": "margin", "kept": int(len(got.rows)),
                         "kept_share": len(got.rows) / len(cand), "recall_of_exact": recall,
                         "random_set_recall": len(got.rows) / len(cand),
                         "narrow_seconds": seconds, "kept_scoring_seconds": kept_seconds,
                         "exact_scoring_seconds": exact_seconds,
                         "indexes": got.indexes.records, **(got.log or {})})
            print(runs[-1], flush=True)
    result["runs"] = runs
    result["params"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
