"""Issue 4's check of the managed evaluation, through the real project loop.

Banking77 MiniLM embeddings are ingested into a fresh project (5% of rows go to the
managed eval split). Rounds of `query` (20% pending eval rows, 10% random control,
the rest by the strategy) are answered by an oracle through `import-labels`, then
`train` (which re-scores the eval set and estimates the control-arm lift). At the end
(2,000 training labels):

- the managed eval-set accuracy is compared with the external test-set accuracy of
  the same model (target: within 2 points);
- the control-arm lift estimate (the active run's first m labels against the m random
  control labels, m = labeled control samples) is compared in sign with the lift
  measured on the test set at 2,000 labels against a real random run (the same learner, the same labels count,
  the same pool without the eval rows).

    python bench/managed_eval.py --size smoke|full [--out PATH]
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

from _common import SHARED_DATA, header, peak_rss_bytes, write_result  # noqa: E402
from datasets import banking77_arrays  # noqa: E402

DATA = SHARED_DATA / "banking77" / "minilm.npz"
SIZES = {
    "smoke": {"seeds": [0], "pool": 2000, "train_labels": 300, "batch": 100,
              "strategy": "margin"},
    "full": {"seeds": [0, 1, 2], "pool": None, "train_labels": 2000, "batch": 100,
             "strategy": "auto"},
}


def _accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(model.classes_)[model.predict_proba(X).argmax(1)] == y))


def run_seed(seed: int, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
             cfg: dict, workdir: Path) -> dict:
    from longtail.loop import simulate_run
    from longtail.project import Project
    from longtail.strategies import ArrayVectors

    ids = [f"b{i:05d}" for i in range(len(X))]
    pool_file = workdir / f"pool{seed}.parquet"
    pq.write_table(pa.table({"id": ids, "truth": y.astype(str),
                             "vec": pa.FixedSizeListArray.from_arrays(X.ravel(), X.shape[1])}),
                   pool_file)
    p = Project.init(workdir / f"proj{seed}", seed=seed, eval_rate=0.05)
    p.ingest(pool_file, id="id", vector="vec")
    truth = dict(zip(ids, y.astype(str), strict=True))
    batch = cfg["batch"]
    eval_batch = batch // 4  # 20% of the query goes to pending eval rows
    t0 = time.perf_counter()
    rounds = 0
    while len(p.labeled("pool")[0]) < cfg["train_labels"]:
        q = p.query(batch + eval_batch, strategy=cfg["strategy"])
        answers = workdir / f"answers{seed}-{rounds}.csv"
        with open(answers, "w") as f:
            f.write("id,label\n" + "".join(f"{i},{truth[i]}\n" for i in q.ids))
        p.import_labels(answers)
        report = p.train()
        rounds += 1
    loop_seconds = time.perf_counter() - t0
    model = p.model()
    n_train = report.labels
    eval_acc = report.eval.accuracy
    test_acc = _accuracy(model, X_test, y_test)
    lift = report.lift or {}
    arms, per_round = lift.get("equal_count"), lift.get("per_round")
    # A real random run with the same learner on the same pool (eval rows left out).
    with p.store.reading() as uow:
        pool_rows = uow.samples.rows_by_split("pool")
    curve = simulate_run(ArrayVectors(X), pool_rows, y.astype(str).astype(object),
                         strategy="random", batch=batch, budget=n_train, seed=seed,
                         test=(X_test, y_test.astype(str)), eval_share=0.0)
    random_test = curve["test_accuracy"][-1]
    measured_lift = test_acc - random_test
    target = p.settings["eval_halfwidth"]
    p.close()
    return {
        "seed": seed, "rounds": rounds, "train_labels": n_train,
        "eval_labels": report.eval.n, "eval_accuracy": eval_acc["value"],
        "eval_lo": eval_acc["lo"], "eval_hi": eval_acc["hi"], "test_accuracy": test_acc,
        "eval_minus_test": eval_acc["value"] - test_acc,
        "within_2_points": abs(eval_acc["value"] - test_acc) <= 0.02,
        "interval_covers_test": bool(eval_acc["lo"] <= test_acc <= eval_acc["hi"]),
        "eval_halfwidth": (eval_acc["hi"] - eval_acc["lo"]) / 2,
        "halfwidth_target": target,
        "lift_method": arms.get("method") if arms else None,
        "control_lift": arms["lift"] if arms else None,
        "control_lift_lo": arms["lo"] if arms else None,
        "control_lift_hi": arms["hi"] if arms else None,
        "control_lift_labels": arms["n_labels"] if arms else None,
        "per_round_marginal_lift": per_round["lift"] if per_round else None,
        "per_round_marginal_lo": per_round["lo"] if per_round else None,
        "per_round_marginal_hi": per_round["hi"] if per_round else None,
        "verdict": lift["verdict"] if lift else None,
        "random_test_accuracy": random_test, "measured_lift": measured_lift,
        "sign_agrees": (arms is not None and np.sign(arms["lift"]) == np.sign(measured_lift)),
        "loop_seconds": loop_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the size's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    # The shared embeddings, else (smoke size, as in CI) a synthetic stand-in.
    data, source = banking77_arrays(args.size, shared=DATA.parents[1], embed=False)
    if data is None:
        print(f"managed_eval: {DATA} is absent; nothing to measure")
        return 0
    cfg = dict(SIZES[args.size])
    if args.seeds:
        cfg["seeds"] = list(range(args.seeds))
    X, y = data["train_X"], data["train_y"]
    if cfg["pool"]:
        keep = np.random.default_rng(0).permutation(len(X))[: cfg["pool"]]
        X, y = X[keep], y[keep]
    runs = []
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as tmp:
        for seed in cfg["seeds"]:
            runs.append(run_seed(seed, X, y, data["test_X"], data["test_y"], cfg, Path(tmp)))
            print({k: runs[-1][k] for k in ("seed", "eval_accuracy", "test_accuracy",
                                            "control_lift", "measured_lift")})
    result = header("managed_eval", f"banking77 minilm: {source}", {**cfg, "size": args.size})
    result.update({
        "runs": runs,
        "mean_abs_eval_minus_test": float(np.mean([abs(r["eval_minus_test"]) for r in runs])),
        "share_within_2_points": float(np.mean([r["within_2_points"] for r in runs])),
        "share_sign_agrees": float(np.mean([r["sign_agrees"] for r in runs])),
        "share_interval_covers_test": float(np.mean([r["interval_covers_test"] for r in runs])),
        "share_halfwidth_meets_target": float(np.mean(
            [r["eval_halfwidth"] <= r["halfwidth_target"] for r in runs])),
        "peak_rss_bytes": peak_rss_bytes(),
    })
    print(f"managed_eval -> {write_result(result, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
