"""Choosing the pseudo-label rule for the small CNN on Fashion-MNIST on a validation
split (a tool, not a benchmark; issue 32).

The images bench's 20,000-image pool (bench/images.py: the same seeded draw from the
60,000 training images), a seeded uniform labeled set of each budget, the rest of the
pool unlabeled; each rule is what `train` does (engine/training.py `_pseudo_fit`): the
CNN fitted on the labels, pseudo-labels from `learners.semi`, then the same network
fitted again (warm) on labels ∪ pseudo-labels with the rule's weight. Accuracy on a
validation split of 5,000 training images outside the pool (the choice) and on the
10,000 test images (reported beside it, never used to choose).

    python bench/_pseudo_cnn.py [--budgets 500] [--seeds 0,1] [--rules A,B] --out PATH
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, now_iso, write_result  # noqa: E402

CNN = {"width": 16, "hidden": 128}  # bench/images.py's
# name -> (method, ratio, weight)
RULES = {
    "propagation r2": ("propagation", 2.0, 1.0),
    "propagation r2 w0.5": ("propagation", 2.0, 0.5),
    "self-training r1 w0.5": ("self-training", 1.0, 0.5),
    "self-training r2 w0.5": ("self-training", 2.0, 0.5),
    "agreement r2 w0.5": ("agreement", 2.0, 0.5),
    "agreement r4 w0.5": ("agreement", 4.0, 0.5),
}
N_VAL = 5000


def arrays(pool: int = 20_000):
    """(pool X, y, validation X, y, test X, y): pixels/255 as float32 rows."""
    root = datasets.FASHION_DIR
    tr, trl, te, tel = (datasets._idx(root / f"{p}-idx{n}-ubyte.gz") for p, n in
                        (("train-images", 3), ("train-labels", 1), ("t10k-images", 3),
                         ("t10k-labels", 1)))
    rng = np.random.default_rng(datasets.SPLIT_SEED)  # bench/images.py's draw
    idx = np.sort(rng.choice(len(tr), pool, replace=False))
    rest = np.setdiff1d(np.arange(len(tr)), idx)
    val = np.sort(np.random.default_rng(12345).choice(rest, N_VAL, replace=False))

    def flat(a):
        return a.reshape(len(a), -1).astype(np.float32) / 255.0
    return (flat(tr[idx]), trl[idx].astype(str), flat(tr[val]), trl[val].astype(str),
            flat(te), tel.astype(str))


def run(X, y, Xv, yv, Xt, yt, budget: int, seed: int, rules: dict) -> dict:
    from longtail.learners import make_learner, semi

    rng = np.random.default_rng([seed, budget])
    lab = np.sort(rng.choice(len(X), budget, replace=False))
    unl = np.setdiff1d(np.arange(len(X)), lab)
    cache: dict = {}
    plain_spread = semi.spread

    def cached_spread(X_lab, y_lab, X_unlab, **kw):  # propagation and agreement share it
        if "s" not in cache:
            cache["s"] = plain_spread(X_lab, y_lab, X_unlab, **kw)
        return cache["s"]
    semi.spread = cached_spread
    try:
        base = make_learner("cnn", **CNN, seed=seed).fit(X[lab], y[lab])
        out = {"off": {"val": float(np.mean(base.predict(Xv) == yv)),
                       "test": float(np.mean(base.predict(Xt) == yt)), "n": 0}}
        for name, (method, ratio, weight) in rules.items():
            t0 = time.perf_counter()
            pl = semi.pseudo_labels(method, predict_proba=base.predict_proba,
                                    classes=base.classes_, X_lab=X[lab], y_lab=y[lab],
                                    X_unlab=X[unl], ratio=ratio)
            model = copy.deepcopy(base)
            Xf = np.concatenate([X[lab], X[unl][pl.positions]])
            yf = np.concatenate([y[lab], pl.labels.astype(str)])
            w = np.concatenate([np.ones(len(lab)), np.full(len(pl), weight)])
            model.fit(Xf, yf, sample_weight=w)
            out[name] = {"val": float(np.mean(model.predict(Xv) == yv)),
                         "test": float(np.mean(model.predict(Xt) == yt)), "n": len(pl),
                         "pseudo_precision": float(np.mean(pl.labels.astype(str)
                                                           == y[unl][pl.positions]))
                         if len(pl) else None,
                         "seconds": round(time.perf_counter() - t0, 1)}
            print(budget, seed, name, out[name], flush=True)
    finally:
        semi.spread = plain_spread
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="500")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--rules", help="comma-separated subset of " + ", ".join(RULES))
    ap.add_argument("--pool", type=int, default=20_000, help="pool images (a quick check: fewer)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    rules = RULES if not args.rules else {k: RULES[k] for k in args.rules.split(",")}
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    started = now_iso()
    X, y, Xv, yv, Xt, yt = arrays(args.pool)
    runs: dict = {}
    with threadpool_limits(1):
        for b in budgets:
            runs[str(b)] = [run(X, y, Xv, yv, Xt, yt, b, s, rules) for s in seeds]
    summary = {}
    for b, per in runs.items():
        summary[b] = {}
        for name in per[0]:
            gv = [p[name]["val"] - p["off"]["val"] for p in per]
            gt = [p[name]["test"] - p["off"]["test"] for p in per]
            summary[b][name] = {"val_gain_mean": round(float(np.mean(gv)), 4),
                                "test_gain_mean": round(float(np.mean(gt)), 4),
                                "val_mean": round(float(np.mean([p[name]["val"] for p in per])), 4),
                                "test_mean": round(float(np.mean([p[name]["test"] for p in per])), 4)}
    result = header("pseudo_cnn", "Fashion-MNIST (bench/images.py's pool)",
                    {"budgets": budgets, "seeds": seeds, "rules": rules, "cnn": CNN,
                     "validation": f"{N_VAL} training images outside the pool",
                     "threads": 1, "load": os.getloadavg()[0]}, started_at=started)
    result.update({"summary": summary, "runs": runs})
    print(json.dumps(summary, indent=1))
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
