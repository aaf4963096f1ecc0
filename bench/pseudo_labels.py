"""pseudo_labels: does the unlabeled pool help the model at small label counts? (issue 32)

On each data set (digits to choose the rule, then Banking77/MiniLM and Fashion-MNIST,
the seeded pools of bench/datasets.py) and each budget (200, 500, 1,000 labels): a
seeded uniform labeled set of that size, the project's default learner
(`longtail.learners.make_learner("linear")`), and the accuracy on the test rows trained

- on the labels alone (``off``);
- with `longtail.learners.semi` pseudo-labels (self-training or label propagation over
  a kNN graph, class-balanced, at most ``ratio`` × each class's labels, with or without
  a confidence floor) on a seeded sample of at most 20,000 unlabeled pool rows.

This is the library call the `train` use case makes (`learners.semi.pseudo_labels`,
then one fit on labels ∪ pseudo-labels), run on arrays so a grid of rules fits in
minutes. The rule is chosen on digits only (the highest mean gain over budgets among
rules that cost no budget more than 0.5 points there); Banking77 and Fashion-MNIST then
say whether it transfers: ``chosen`` → per data set the gain at each budget with the
seed spread. Keys: ``datasets`` → name → ``budgets`` → method → ``accuracy_mean``,
``accuracy_sd``, ``gain_mean``, ``gain_sd``, ``pseudo_mean`` (pseudo-labels added).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, now_iso, write_result  # noqa: E402

BUDGETS = (200, 500, 1000)
RULES = {
    "self-training r0.5": ("self-training", 0.5, 0.0),
    "self-training r1": ("self-training", 1.0, 0.0),
    "self-training r2": ("self-training", 2.0, 0.0),
    "self-training r1 c0.9": ("self-training", 1.0, 0.9),
    "propagation r0.5": ("propagation", 0.5, 0.0),
    "propagation r1": ("propagation", 1.0, 0.0),
    "propagation r2": ("propagation", 2.0, 0.0),
}
MAX_UNLABELED = 20_000
CHOOSE_ON = "digits"
MAX_COST = 0.005


def run_one(X, y, Xt, yt, budget: int, seed: int, rules: dict) -> dict[str, tuple[float, int]]:
    from longtail.learners import make_learner
    from longtail.learners.semi import pseudo_labels

    rng = np.random.default_rng([seed, budget])
    lab = rng.choice(len(X), size=min(budget, len(X) - 1), replace=False)
    rest = np.setdiff1d(np.arange(len(X)), lab)
    unl = np.sort(rng.choice(rest, size=min(MAX_UNLABELED, len(rest)), replace=False))
    ys = y[lab].astype(str)
    base = make_learner("linear").fit(X[lab], ys)
    out = {"off": (float(np.mean(base.predict(Xt) == yt.astype(str))), 0)}
    for name, (method, ratio, floor) in rules.items():
        pl = pseudo_labels(method, predict_proba=base.predict_proba, classes=base.classes_,
                           X_lab=X[lab], y_lab=ys, X_unlab=X[unl], ratio=ratio,
                           min_confidence=floor)
        model = make_learner("linear").fit(np.concatenate([X[lab], X[unl][pl.positions]]),
                                           np.concatenate([ys, pl.labels.astype(str)]))
        out[name] = (float(np.mean(model.predict(Xt) == yt.astype(str))), len(pl))
    return out


def summarise(runs: list[dict], budgets) -> dict:
    out: dict = {}
    for b in budgets:
        per = [r[b] for r in runs]
        off = np.array([p["off"][0] for p in per])
        out[str(b)] = {}
        for name in per[0]:
            acc = np.array([p[name][0] for p in per])
            out[str(b)][name] = {
                "accuracy_mean": round(float(acc.mean()), 4),
                "accuracy_sd": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 4),
                "gain_mean": round(float((acc - off).mean()), 4),
                "gain_sd": round(float((acc - off).std(ddof=1)) if len(acc) > 1 else 0.0, 4),
                "pseudo_mean": round(float(np.mean([p[name][1] for p in per])), 1)}
    return out


def choose(summary: dict) -> str | None:
    """The rule with the highest mean gain over budgets that costs no budget more than
    MAX_COST, or None when no rule qualifies (then pseudo-labels stay off)."""
    best, best_gain = None, 0.0
    for name in next(iter(summary.values())):
        if name == "off":
            continue
        gains = [summary[b][name]["gain_mean"] for b in summary]
        if min(gains) >= -MAX_COST and float(np.mean(gains)) > best_gain:
            best, best_gain = name, float(np.mean(gains))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", default="digits,banking77,fashion_mnist")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    started = now_iso()
    smoke = args.size == "smoke"
    budgets = (40, 80) if smoke else BUDGETS
    seeds = 1 if smoke else args.seeds
    names = args.datasets.split(",")
    result = header("pseudo_labels", ", ".join(names),
                    {"budgets": list(budgets), "seeds": seeds, "rules": RULES,
                     "max_unlabeled": MAX_UNLABELED, "choose_on": CHOOSE_ON,
                     "max_cost": MAX_COST, "learner": "linear (the project default)",
                     "path": "library: learners.semi.pseudo_labels + one fit, as train does"},
                    started_at=started)
    result["datasets"] = {}
    for name in names:
        data, source = datasets.load(name, args.size)
        if data is None:
            continue
        X, y, Xt, yt, _ = data
        t0 = time.perf_counter()
        runs = []
        for seed in range(seeds):
            runs.append({b: run_one(X, y, Xt, yt, b, seed, RULES) for b in budgets
                         if b < len(X)})
        usable = [b for b in budgets if b < len(X)]
        result["datasets"][name] = {"source": source, "budgets": summarise(runs, usable),
                                    "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    chosen = (choose(result["datasets"][CHOOSE_ON]["budgets"])
              if CHOOSE_ON in result["datasets"] else None)
    result["chosen"] = chosen
    if chosen:
        result["transfer"] = {
            name: {b: {k: v[chosen][k] for k in ("gain_mean", "gain_sd")}
                   for b, v in d["budgets"].items()}
            for name, d in result["datasets"].items()}
    path = write_result(result, args.out)
    print(f"wrote {path}; chosen on {CHOOSE_ON}: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
