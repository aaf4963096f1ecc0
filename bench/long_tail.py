"""long_tail (BENCHMARKS.md §8): does the product find the rare cases?

Banking77-LT (``datasets.banking77_lt``: 2,995 training rows, class sizes 150 down to 4,
the test set balanced) through the product path: a fresh ``Project`` per command (the
state between commands is only what the project saved), default settings, batches of
100 from 0 labels; every label paid for counts (eval rows included). After each round
the benchmark's model (LogisticRegression C=10, as in label_efficiency) is trained on
every label and scored on the test set: macro-F1, accuracy, and the mean recall of the
8 classes with the fewest pool rows, how many of them have a label (`rare_found`).

    python bench/long_tail.py --size smoke|full [--seeds N] [--methods auto,random,margin]
        [--dataset banking77_lt|fashion_mnist_lt|digits_lt] [--batch B --budget N]

Banking77-LT is the benchmark; ``--dataset fashion_mnist_lt`` (5,630 rows, 10 classes,
2,011 down to 40) checks on another set what was chosen on Banking77-LT. With 10 classes the rare
classes are the 3 with the fewest pool rows (``--rare``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, write_result  # noqa: E402

SIZES = {"smoke": {"batch": 100, "budget": 100, "seeds": [0]},
         "full": {"batch": 100, "budget": 600, "seeds": [0, 1, 2, 3, 4]}}
METHODS = ("auto", "random", "margin")
RARE = 8  # classes with the fewest pool rows


def bench_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10, max_iter=300)


def scores(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, rare: np.ndarray
           ) -> dict:
    """macro-F1 over the test classes, accuracy, and the mean recall of `rare`."""
    from sklearn.metrics import f1_score, recall_score

    if len(np.unique(y)) < 2:
        pred = np.full(len(yt), y[0])
    else:
        pred = bench_model().fit(X, y).predict(Xt)
    labels = np.unique(yt)
    recall = recall_score(yt, pred, labels=labels, average=None, zero_division=0)
    at = {c: i for i, c in enumerate(labels.tolist())}
    return {"macro_f1": float(f1_score(yt, pred, labels=labels, average="macro",
                                       zero_division=0)),
            "accuracy": float(np.mean(pred == yt)),
            "rare_recall": float(np.mean([recall[at[c]] for c in rare.tolist() if c in at]))}


def run_seed(strategy: str, seed: int, data: tuple, cfg: dict, rare: np.ndarray,
             workdir: Path) -> dict:
    """Rounds of `batch` paid labels up to `budget`, each command on a fresh Project."""
    from longtail.project import Project

    X, y, Xt, yt, _ = data
    ids = np.array([f"r{i:06d}" for i in range(len(X))])
    row_of = {i: r for r, i in enumerate(ids)}
    pool_file = workdir / f"pool-{strategy}-{seed}.parquet"
    pq.write_table(pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(
        np.ascontiguousarray(X, np.float32).ravel(), X.shape[1])}), pool_file)
    root = workdir / f"proj-{strategy}-{seed}"
    Project.init(root, seed=seed).close()
    with Project(root) as p:
        p.ingest(pool_file, id="id", vector="vec")
    curve: dict[str, list] = {"paid": [], "macro_f1": [], "accuracy": [], "rare_recall": [],
                              "eval_labels": [], "rare_labels": [], "rare_found": [], "arms": [],
                              "query_seconds": []}
    paid = n_eval = 0
    labeled: set[int] = set()
    while paid < cfg["budget"]:
        k = min(cfg["batch"], cfg["budget"] - paid)
        t0 = time.perf_counter()
        with Project(root) as p:
            q = p.query(k, strategy=strategy)
        curve["query_seconds"].append(round(time.perf_counter() - t0, 3))
        answers = workdir / f"answers-{strategy}-{seed}.csv"
        with open(answers, "w") as f:
            f.write("id,label\n" + "".join(f"{i},{y[row_of[i]]}\n" for i in q.ids))
        with Project(root) as p:
            p.import_labels(answers)
        with Project(root) as p:
            p.train()
        paid += len(q.rows)
        n_eval += q.kinds.count("eval")
        labeled |= {row_of[i] for i in q.ids}
        rows = np.array(sorted(labeled), dtype=np.int64)
        s = scores(X[rows], y[rows], Xt, yt, rare)
        curve["paid"].append(paid)
        for key in ("macro_f1", "accuracy", "rare_recall"):
            curve[key].append(s[key])
        curve["eval_labels"].append(n_eval)
        curve["rare_labels"].append(int(np.isin(y[rows], rare).sum()))
        curve["rare_found"].append(int(np.isin(rare, y[rows]).sum()))
        curve["arms"].append((q.log.get("selection") or {}).get("arm") or q.log.get("strategy"))
    return curve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--seeds", type=int, default=None, help="first N seeds only")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--dataset", default="banking77_lt",
                    choices=["banking77_lt", "fashion_mnist_lt", "digits_lt"])
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--rare", type=int, default=None,
                    help="rare classes measured (default 8; 3 with at most 20 classes)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = dict(SIZES[args.size])
    if args.seeds:
        cfg["seeds"] = cfg["seeds"][: args.seeds]
    cfg.update({k: v for k, v in (("batch", args.batch), ("budget", args.budget)) if v})
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data, source = datasets.load(args.dataset, args.size)
    methods_run = [m for m in args.methods.split(",") if m]
    n_rare = args.rare or (RARE if len(data[4]) > 20 else 3)
    result = header("long_tail", args.dataset, {"size": args.size, **cfg,
                                                "methods": methods_run,
                                                "settings": "Project defaults",
                                                "rare_classes": n_rare},
                    started_at=started)
    result["path"] = "product: a fresh Project per command (query, import_labels, train)"
    result["source"] = source
    X, y, Xt, yt, names = data
    counts = np.bincount(y, minlength=len(names))
    present = np.flatnonzero(counts > 0)
    rare = present[np.argsort(counts[present], kind="stable")[:n_rare]]
    result["rare"] = {"classes": [str(names[c]) for c in rare],
                      "pool_rows": [int(counts[c]) for c in rare]}
    budgets = list(range(cfg["batch"], cfg["budget"] + 1, cfg["batch"]))
    result["budgets"] = budgets
    methods = {}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        for strategy in methods_run:
            runs = [run_seed(strategy, seed, data, cfg, rare, Path(tmp))
                    for seed in cfg["seeds"]]
            fig = {"seeds": list(cfg["seeds"]), "runs": runs}
            for key in ("macro_f1", "accuracy", "rare_recall"):
                a = np.array([r[key] for r in runs])
                fig[f"{key}_mean"] = a.mean(0).tolist()
                fig[f"{key}_sd"] = a.std(0).tolist()
            fig["eval_labels_mean"] = np.mean([r["eval_labels"] for r in runs], 0).tolist()
            fig["rare_labels_mean"] = np.mean([r["rare_labels"] for r in runs], 0).tolist()
            fig["rare_found_mean"] = np.mean([r["rare_found"] for r in runs], 0).tolist()
            methods[f"longtail:{strategy}"] = fig
            print(f"[long_tail] {strategy}: macro-F1 {np.round(fig['macro_f1_mean'], 3)} "
                  f"rare recall {np.round(fig['rare_recall_mean'], 3)} rare labels "
                  f"{np.round(fig['rare_labels_mean'], 1)} found {np.round(fig['rare_found_mean'], 1)}",
                  flush=True)
    result["methods"] = methods
    a, r, m = (methods.get(f"longtail:{k}") for k in ("auto", "random", "margin"))
    if a and r and m:
        i = len(budgets) - 1
        result["summary"] = {
            "at_labels": budgets[i],
            "auto_minus_random_macro_f1_points": 100 * (a["macro_f1_mean"][i] - r["macro_f1_mean"][i]),
            "auto_minus_margin_macro_f1_points": 100 * (a["macro_f1_mean"][i] - m["macro_f1_mean"][i]),
            "auto_over_random_rare_recall": a["rare_recall_mean"][i] / max(r["rare_recall_mean"][i], 1e-9),
            "targets": "auto >= random + 15 points, >= margin + 2 points; rare recall >= 3x random",
        }
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
