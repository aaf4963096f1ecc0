"""rare_guard: does the pool look long-tailed to `auto`? The evidence behind the `rare`
arm's guard (``strategies.tail.long_tailed``).

For each data set and seed, `auto` runs in `simulate` (in-process, the batch policy
`query` uses, eval labels by need) for the first rounds at the product path's batch
size, and each round's ``class_imbalance`` (the model's predicted class mass, top fifth
of the classes over the bottom fifth; see ``tail.class_imbalance``) is recorded. The
guard's threshold ``TAIL_IMBALANCE`` must sit above every balanced set's rounds and
below every long-tailed set's: chosen on digits / digits-LT, the others check it.

    python bench/rare_guard.py [--datasets digits,digits_lt,...] [--seeds 2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, write_result  # noqa: E402
from product_path import SIZES  # noqa: E402

CHOSEN_ON = ("digits", "digits_lt")
LONG_TAILED = ("digits_lt", "banking77_lt", "fashion_mnist_lt")


def run(name: str, seeds: int, rounds: int) -> dict:
    from longtail.loop.simulate import simulate_run
    from longtail.strategies import ArrayVectors

    data, source = datasets.load(name, "full")
    X, y, _, _, names = data
    batch = SIZES["full"][name]["batch"]
    out = {"source": source, "long_tailed": name in LONG_TAILED, "batch": batch,
           "pool_class_ratio": float(np.bincount(y).max() / max(np.bincount(y)[
               np.bincount(y) > 0].min(), 1)), "seeds": []}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 5])
        rows = rng.permutation(len(X))
        n_eval = int(round(0.05 * len(X)))  # the default eval rate
        curve = simulate_run(ArrayVectors(X), np.sort(rows[n_eval:]), names[y].astype(object),
                             strategy="auto", batch=batch, budget=batch * rounds,
                             seed=seed, eval_rows=np.sort(rows[:n_eval]))
        out["seeds"].append({"class_imbalance": curve["class_imbalance"],
                             "arm": curve["arm"], "labels_paid": curve["labels_paid"]})
        print(f"[rare_guard] {name} seed {seed}: {curve['class_imbalance']} {curve['arm']}",
              flush=True)
    seen = [v for s in out["seeds"] for v in s["class_imbalance"] if v is not None]
    out["min"], out["max"] = (min(seen), max(seen)) if seen else (None, None)
    return out


def main(argv: list[str] | None = None) -> int:
    from longtail.strategies.tail import TAIL_IMBALANCE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full",
                    help="smoke: digits, 1 seed, 2 rounds (CI's run)")
    ap.add_argument("--datasets", default=None, help="default: all six sets (smoke: digits)")
    ap.add_argument("--seeds", type=int, default=None, help="default 2 (smoke 1)")
    ap.add_argument("--rounds", type=int, default=None, help="default 6 (smoke 2)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    smoke = args.size == "smoke"
    args.datasets = args.datasets or ("digits" if smoke else "digits,digits_lt,banking77,"
                                      "banking77_lt,fashion_mnist,fashion_mnist_lt")
    args.seeds = args.seeds or (1 if smoke else 2)
    args.rounds = args.rounds or (2 if smoke else 6)
    names = [n for n in args.datasets.split(",") if n]
    result = header("rare_guard", ",".join(names),
                    {"seeds": args.seeds, "rounds": args.rounds, "path": "library: simulate",
                     "threshold": TAIL_IMBALANCE, "chosen_on": list(CHOSEN_ON)},
                    started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    result["datasets"] = {}
    with threadpool_limits(1):
        for n in names:
            result["datasets"][n] = run(n, args.seeds, args.rounds)
            write_result(result, args.out)
    sep = {n: (d["min"] >= TAIL_IMBALANCE if d["long_tailed"] else d["max"] < TAIL_IMBALANCE)
           for n, d in result["datasets"].items() if d["min"] is not None}
    result["separated"] = sep
    path = write_result(result, args.out)
    print(f"wrote {path}: {sep}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
