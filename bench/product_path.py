"""Issue 18's product path: every label the user pays for counts.

`auto` and `random` run through `Project` with the default settings — `query` (eval
rows, the random control slice and the strategy's picks, as the project splits each
batch) -> an oracle's `import_labels` -> `train` — and a budget counts *every* label
paid for: eval, control and selected. Accuracy is that of the benchmark's model
(LogisticRegression C=10, max_iter=300, as in label_efficiency) trained on all of
them, on the data set's test set (the benchmark's oracle; the engine never sees it).
The eval and control labels spent are reported per budget, with the managed eval
set's interval half-width.

    python bench/product_path.py --size smoke|full [--datasets banking77,digits] [--out PATH]

Data sets: banking77, digits, fashion_mnist and issue 28's long-tailed variants
banking77_lt, digits_lt, fashion_mnist_lt (bench/datasets.py; batches of 5% of the pool
up to 40% of it). The result is written after each data set.

Peers are not rerun here: their figures (each with a free test set and no eval or
control labels) are in bench/results/label_efficiency*.json, measured by that
benchmark; the README sets the two side by side.
"""

from __future__ import annotations

import argparse
import os
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
from _common import RESULTS, first_reach, header, write_result  # noqa: E402

SIZES = {
    "smoke": {"banking77": {"batch": 50, "budget": 100, "seeds": [0]},
              "digits": {"batch": 20, "budget": 40, "seeds": [0]},
              "fashion_mnist": {"batch": 50, "budget": 100, "seeds": [0]},
              "banking77_lt": {"batch": 50, "budget": 100, "seeds": [0]},
              "digits_lt": {"batch": 17, "budget": 34, "seeds": [0]},
              "fashion_mnist_lt": {"batch": 50, "budget": 100, "seeds": [0]}},
    "full": {"banking77": {"batch": 100, "budget": 2000, "seeds": [0, 1, 2, 3, 4]},
             "digits": {"batch": 20, "budget": 400, "seeds": [0, 1, 2, 3, 4]},
             "fashion_mnist": {"batch": 100, "budget": 2000, "seeds": [0, 1, 2]},
             # issue 28's long-tailed variants: batches of 5% of the pool up to 40% of it
             # (pools: Banking77-LT 2,995, digits-LT 347, Fashion-MNIST-LT 5,630 rows)
             "banking77_lt": {"batch": 150, "budget": 1200, "seeds": [0, 1, 2, 3, 4]},
             "digits_lt": {"batch": 17, "budget": 136, "seeds": [0, 1, 2, 3, 4]},
             "fashion_mnist_lt": {"batch": 282, "budget": 2256, "seeds": [0, 1, 2, 3, 4]}},
}
METHODS = ("auto", "random")


def bench_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10, max_iter=300)


def accuracy(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return float(np.mean(y_test == y[0]))
    return float(np.mean(bench_model().fit(X, y).predict(X_test) == y_test))


def run_seed(strategy: str, seed: int, data: tuple, cfg: dict, workdir: Path) -> dict:
    """One product-path run: rounds of `cfg["batch"]` paid labels up to `cfg["budget"]`."""
    from longtail.project import Project

    X, y, X_test, y_test, _ = data
    ids = np.array([f"r{i:06d}" for i in range(len(X))])
    pool_file = workdir / f"pool-{strategy}-{seed}.parquet"
    pq.write_table(pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(
        np.ascontiguousarray(X, np.float32).ravel(), X.shape[1])}), pool_file)
    row_of = {i: r for r, i in enumerate(ids)}
    p = Project.init(workdir / f"proj-{strategy}-{seed}", seed=seed)
    p.ingest(pool_file, id="id", vector="vec")
    curve: dict[str, list] = {"paid": [], "accuracy": [], "eval_labels": [],
                              "control_labels": [], "selected_labels": [],
                              "eval_halfwidth": [], "query_seconds": []}
    paid = n_eval = n_control = n_selected = 0
    while paid < cfg["budget"]:
        k = min(cfg["batch"], cfg["budget"] - paid)
        t0 = time.perf_counter()
        q = p.query(k, strategy=strategy)
        curve["query_seconds"].append(time.perf_counter() - t0)
        answers = workdir / f"answers-{strategy}-{seed}.csv"
        with open(answers, "w") as f:
            f.write("id,label\n" + "".join(f"{i},{y[row_of[i]]}\n" for i in q.ids))
        p.import_labels(answers)
        report = p.train()
        paid += len(q.rows)
        n_eval += q.kinds.count("eval")
        n_control += q.kinds.count("control")
        n_selected += q.kinds.count("selected")
        with p.store.reading() as uow:
            rows = np.array(sorted({**uow.labels.current()}), dtype=np.int64)
        acc = accuracy(X[rows], y[rows], X_test, y_test)
        ev = report.eval.accuracy if report.eval else {}
        half = (ev["hi"] - ev["lo"]) / 2 if ev.get("lo") is not None else None
        for key, value in (("paid", paid), ("accuracy", acc), ("eval_labels", n_eval),
                           ("control_labels", n_control), ("selected_labels", n_selected),
                           ("eval_halfwidth", half)):
            curve[key].append(value)
    p.close()
    return curve


def aulc(acc: list[float]) -> float:
    return float(np.mean(acc))


def labels_to(target: float, budgets: list[int], acc: list[float]) -> float | None:
    """Labels when the curve first reaches `target` (linear between budgets)."""
    return first_reach(target, budgets, acc)


def run_dataset(name: str, size: str, cfg: dict, methods_run: tuple[str, ...] = METHODS
                ) -> dict:
    data, source = datasets.load(name, size)
    if data is None:
        return {"dataset": name, "skipped": source}
    X, y, X_test, y_test, _ = data
    full = accuracy(X, y, X_test, y_test)
    budgets = list(range(cfg["batch"], cfg["budget"] + 1, cfg["batch"]))
    methods = {}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        for strategy in methods_run:
            runs = [run_seed(strategy, seed, data, cfg, Path(tmp)) for seed in cfg["seeds"]]
            acc = np.array([r["accuracy"] for r in runs])
            mean = acc.mean(0).tolist()
            methods[f"longtail:{strategy}@product"] = {
                "accuracy_mean": mean, "accuracy_sd": acc.std(0).tolist(),
                "aulc": aulc(mean), "labels_to_95pct_full": labels_to(0.95 * full, budgets, mean),
                "query_seconds_mean": float(np.mean([np.mean(r["query_seconds"]) for r in runs])),
                "eval_labels_mean": np.mean([r["eval_labels"] for r in runs], 0).tolist(),
                "control_labels_mean": np.mean([r["control_labels"] for r in runs], 0).tolist(),
                "eval_halfwidth_mean": [None if any(r["eval_halfwidth"][i] is None for r in runs)
                                        else float(np.mean([r["eval_halfwidth"][i] for r in runs]))
                                        for i in range(len(budgets))],
                "seeds": list(cfg["seeds"]), "runs": runs}
    return {"dataset": name, "source": source, "budgets": budgets, "full_data_accuracy": full,
            "methods": methods}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--datasets", default="banking77,digits,fashion_mnist,banking77_lt,"
                    "digits_lt,fashion_mnist_lt")
    ap.add_argument("--seeds", type=int, default=None, help="first N seeds only")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    methods_run = tuple(m for m in args.methods.split(",") if m)
    sizes = {n: ({**c, "seeds": c["seeds"][: args.seeds]} if args.seeds else c)
             for n, c in SIZES[args.size].items()}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    names = [n for n in args.datasets.split(",") if n]
    result = header("product_path", ",".join(names),
                    {"size": args.size, "settings": "Project defaults",
                     "methods": list(methods_run), "load_at_start": os.getloadavg()[0],
                     **sizes},
                    started_at=started)
    peers = {n: RESULTS / ("label_efficiency.json" if n == "banking77"
                           else f"label_efficiency_{n}.json") for n in names}
    result["label_efficiency_files"] = {
        n: f.name if f.exists() else f"{f.name} (absent: no peers measured on {n})"
        for n, f in peers.items()}
    result["datasets"] = {}
    for n in names:  # written after each data set: a long run keeps what it finished
        result["datasets"][n] = run_dataset(n, args.size, sizes[n], methods_run)
        path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
