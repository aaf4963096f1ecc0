"""Issue 29's cost_aware benchmark (BENCHMARKS.md section 6): does selection save money,
not only labels?

Every method runs the product path with a fresh `Project` per command — `query` (the
project's own batch split: eval rows first, then the strategy's picks) -> an oracle
answers with a simulated time per sample (`import_labels --seconds`) -> `train` — and
pays for every answer (eval labels too) at its pool's rate, plus the compute ledger
at $0.10 per CPU-hour. Accuracy: the project's own latest model on the data set's
test set; the target is 95% of the same learner trained on the whole pool.

- Banking77 (the check, section 6): seconds = (4 + 0.12 chars) * d(intent) * e, d =
  exp(N(0, 0.5)) per intent in sorted order (seed 6), e = exp(N(0, 0.25)) per
  training message in train.csv order (seed 7); the 8 intents of largest d need the
  expert pool ($80/h), all others the crowd ($20/h).
- digits (where the cost trade-off is chosen): seconds = (2 + 0.15 ink pixels) *
  d(digit) * e, d = exp(N(0, 0.5)) per digit (seed 16), e = exp(N(0, 0.25)) per
  image (seed 17); the 2 digits of largest d need the expert pool.

Methods: `longtail:auto-cost` (auto with `query --cost-aware`: the strategy proposes 2x
its share; each round the cut is cost-aware or not by the gain per money measured on
earlier rounds of each kind (`longtail.costs.select.choose_cost_aware`: cost-aware
unless cost-blind gains more beyond the rounds' noise), cost-aware keeping the best
return on investment (1 - max prob) / rate^gamma, rate the predicted money per second
of the sample's pool), `longtail:auto`,
`longtail:random`; on digits also other gammas. Keys per method: `money_to_95pct_full`
(per seed, None when not reached, with `money_at_budget` as its lower bound),
`label_money`, `compute_money` (at the stop), the curves, and for active methods the
ROI verdict `status` gave when the run first reached the target, or at 2,000 labels
(the last round before) if it had not, with the realised saving at the accuracy the
verdict names (money to first reach it on the test set, against the same seed's
random run) and whether the verdict's interval covers it.
`--early-stop` ends a run once it reached the target (an active one also past the
verdict's round, random RANDOM_PAST_TARGET past it): later rounds change none of the
keys; `--jobs N` runs (method, seed)
pairs in parallel processes.

    python bench/cost_aware.py --size smoke|full [--datasets banking77,digits] [--seeds N]
        [--jobs N] [--early-stop] [--gamma G]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
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
from _common import first_reach, header, write_result  # noqa: E402

SIZES = {
    "smoke": {"banking77": {"batch": 50, "budget": 150, "seeds": [0], "verdict_at": 100},
              "digits": {"batch": 20, "budget": 60, "seeds": [0], "verdict_at": 40}},
    "full": {"banking77": {"batch": 100, "budget": 3000, "seeds": [0, 1, 2, 3, 4],
                           "verdict_at": 2000},
             "digits": {"batch": 20, "budget": 400, "seeds": [0, 1, 2], "verdict_at": 300}},
}
GAMMAS_DIGITS = (0.5, 1.0)
CROWD, EXPERT, CPU_HOUR = 20.0, 80.0, 0.10
RANDOM_PAST_TARGET = 0.015  # --early-stop: accuracy the random run goes on past the target


def banking77_costs(y_names: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Section 6's seconds per training message, its texts, and the expert intents
    (without train.csv, the stand-in's labels and lengths drawn from seed 8)."""
    from longtail.demo import bundled

    source = datasets.SHARED_DATA / "banking77" / "train.csv"
    if not source.exists():  # the package's copy: the same messages in the same order
        source = bundled("train.csv")
    if source.exists():
        with open(source, newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        lengths = np.random.default_rng(8).integers(10, 200, len(y_names))
        rows = [{"text": "x" * int(n), "category": str(c)} for n, c in zip(lengths, y_names,
                                                                            strict=True)]
    texts = [r["text"] for r in rows]
    intents = sorted({r["category"] for r in rows})
    d = np.exp(np.random.default_rng(6).normal(0, 0.5, len(intents)))
    e = np.exp(np.random.default_rng(7).normal(0, 0.25, len(rows)))
    d_of = dict(zip(intents, d, strict=True))
    chars = np.array([len(t) for t in texts], dtype=float)
    seconds = (4 + 0.12 * chars) * np.array([d_of[r["category"]] for r in rows]) * e
    expert = [intents[i] for i in np.argsort(-d)[:8]]
    return seconds, np.array(texts, dtype=object), expert


def digits_costs(X: np.ndarray, y: np.ndarray, names: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Synthetic seconds per image: ink, a difficulty per digit, noise; the 2 hardest
    digits need the expert pool."""
    d = np.exp(np.random.default_rng(16).normal(0, 0.5, len(names)))
    e = np.exp(np.random.default_rng(17).normal(0, 0.25, len(y)))
    ink = (X > 0).sum(1).astype(float)
    seconds = (2 + 0.15 * ink) * d[y] * e
    texts = np.array(["x" * int(k) for k in ink], dtype=object)  # length stands for ink
    return seconds, texts, [str(names[i]) for i in np.argsort(-d)[:2]]


def full_accuracy(X, y, Xt, yt) -> float:
    from longtail.learners import make_learner

    m = make_learner("linear", warm_start=False)
    m.fit(X, y.astype(str))
    return float(np.mean(np.asarray(m.classes_)[m.predict_proba(Xt).argmax(1)] == yt.astype(str)))


def run_seed(method: str, seed: int, data: tuple, costs: tuple, cfg: dict, work: Path,
             gamma: float | None) -> dict:
    """One product-path run to the budget; the curve of money and accuracy per round."""
    from longtail.project import Project

    X, y, Xt, yt, names = data
    seconds, texts, expert = costs
    labels = names[y].astype(str)
    ids = np.array([f"r{i:06d}" for i in range(len(X))])
    row_of = {i: r for r, i in enumerate(ids)}
    pool = work / f"pool-{seed}.parquet"
    if not pool.exists():
        write_pool(pool, X, texts)
    path = work / f"proj-{method}-{seed}"
    settings = {"seed": seed, **({"cost_tradeoff": gamma} if gamma is not None else {})}
    Project.init(path, **settings).close()
    with Project(path) as p:
        p.add_pool("crowd", CROWD, default=True)
        p.add_pool("expert", EXPERT, where=[f"label={c}" for c in expert])
        p.set_compute_rates(cpu=CPU_HOUR)
    with Project(path) as p:
        p.ingest(pool, id="id", text="text", vector="vec")
    strategy = "random" if method == "longtail:random" else "auto"
    cost_aware = method.startswith("longtail:auto-cost")
    curve: dict[str, list] = {k: [] for k in ("labels", "accuracy", "label_money",
                                              "compute_money", "money", "seconds")}
    verdict = None
    frozen = False  # the verdict is kept from the round the target was first reached
    paid = 0
    target = cfg.get("target")
    while paid < cfg["budget"]:
        # Early stop (params "stop"): once the target is reached, and for an active
        # method the verdict taken, later rounds change none of the figures.
        # The random run goes on a little past the target: the verdicts name the
        # accuracy their loop reached on the (small) eval set, which can land above
        # it, and their realised saving is read off this run's curve there.
        if (cfg.get("early_stop") and target is not None and curve["accuracy"]
                and max(curve["accuracy"]) >= target + (0.0 if active(method) else
                                                        RANDOM_PAST_TARGET)
                and (not active(method) or frozen or paid >= cfg["verdict_at"])):
            break
        t0 = time.perf_counter()
        with Project(path) as p:
            q = p.query(min(cfg["batch"], cfg["budget"] - paid), strategy=strategy,
                        cost_aware=cost_aware)
        answers = work / f"answers-{method}-{seed}.csv"
        with open(answers, "w") as f:
            f.write("id,label,seconds\n" + "".join(
                f"{i},{labels[row_of[i]]},{seconds[row_of[i]]:.3f}\n" for i in q.ids))
        with Project(path) as p:
            p.import_labels(answers, seconds="seconds")
        with Project(path) as p:
            p.train()
        with Project(path) as p:
            model = p.model()
            acc = float(np.mean(np.asarray(model.classes_)[model.predict_proba(Xt).argmax(1)]
                                == names[yt].astype(str)))
            total = p.costs()["total"]  # spend so far: labels, eval labels, compute
            paid = total["events"]
            if active(method) and paid <= cfg["verdict_at"] and not frozen:
                roi = p.status().roi
                frozen = target is not None and acc >= target
                if roi:
                    verdict = {"labels": paid, "test_accuracy": acc,
                               "money_at": total["total_money"], **{k: roi[k] for k in (
                        "saving", "lo", "hi", "label_saving", "target", "random_labels",
                        "money_active", "money_random", "eval_money", "verdict")}}
        for k, v in (("labels", paid), ("accuracy", acc), ("label_money", total["label_money"]),
                     ("compute_money", total["compute_money"]), ("money", total["total_money"]),
                     ("seconds", time.perf_counter() - t0)):
            curve[k].append(v)
    return {"curve": curve, "verdict": verdict}


def write_pool(path: Path, X: np.ndarray, texts: np.ndarray) -> None:
    """The pool file every method's project ingests (ids r000000..., text, vector)."""
    ids = np.array([f"r{i:06d}" for i in range(len(X))])
    pq.write_table(pa.table({"id": ids, "text": texts.astype(str),
                             "vec": pa.FixedSizeListArray.from_arrays(
                                 np.ascontiguousarray(X, np.float32).ravel(), X.shape[1])}),
                   path)


def _timed_run(method: str, seed: int, data: tuple, costs: tuple, cfg: dict, work: Path,
               gamma: float | None, name: str) -> dict:
    t0 = time.perf_counter()
    with threadpool_limits(1):
        out = run_seed(method, seed, data, costs, cfg, work, gamma)
    print(f"{name} {method} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def active(method: str) -> bool:
    return method != "longtail:random"


def money_to(target: float, money: list[float], acc: list[float]) -> float | None:
    """Money when the curve first reaches `target` (linear between rounds); None if never."""
    return first_reach(target, money, acc)


def run_dataset(name: str, size: str, cfg: dict, methods: list[tuple[str, float | None]]) -> dict:
    data, source = datasets.load(name, size)
    if data is None:
        return {"dataset": name, "skipped": source}
    X, y, Xt, yt, names = data
    if name == "banking77":
        seconds, texts, expert = banking77_costs(names[y])
        if len(seconds) != len(X):  # smoke: the seeded subset datasets.banking77 keeps
            d, _ = datasets.banking77_arrays(size)
            keep = np.sort(np.random.default_rng(0).choice(len(d["train_X"]), len(X),
                                                           replace=False))
            seconds, texts = seconds[keep], texts[keep]
    else:
        seconds, texts, expert = digits_costs(X, y, names)
    full = full_accuracy(X, names[y], Xt, names[yt])
    target = 0.95 * full
    cfg = {**cfg, "target": target}
    out: dict = {}
    jobs = [(method, gamma, seed) for method, gamma in methods for seed in cfg["seeds"]]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in cfg["seeds"]:  # the pool files, once, before any job reads them
            write_pool(Path(tmp) / f"pool-{seed}.parquet", X, texts)
        args = [(method, seed, data, (seconds, texts, expert), cfg, Path(tmp), gamma, name)
                for method, gamma, seed in jobs]
        if cfg.get("jobs", 1) > 1:
            with mp.get_context("fork").Pool(cfg["jobs"]) as pool:
                done = pool.starmap(_timed_run, args)
        else:
            done = [_timed_run(*a) for a in args]
    by = dict(zip([(m, sd) for m, _, sd in jobs], done, strict=True))
    for method, gamma in methods:
        runs = [by[(method, seed)] for seed in cfg["seeds"]]
        reach = [money_to(target, r["curve"]["money"], r["curve"]["accuracy"]) for r in runs]
        common = min(len(r["curve"]["accuracy"]) for r in runs)
        acc = np.array([r["curve"]["accuracy"][:common] for r in runs])
        out[method] = {
            "gamma": gamma, "accuracy_mean": acc.mean(0).tolist(),
            "money_mean": np.mean([r["curve"]["money"][:common] for r in runs], 0).tolist(),
            "money_to_95pct_full": reach,
            "money_to_95pct_full_median": (float(np.median([m for m in reach if m is not None]))
                                           if all(m is not None for m in reach) else None),
            "not_reached": sum(m is None for m in reach),
            "money_at_budget": [r["curve"]["money"][-1] for r in runs],
            "labels_at_stop": [r["curve"]["labels"][-1] for r in runs],
            "label_money": [r["curve"]["label_money"][-1] for r in runs],
            "compute_money": [r["curve"]["compute_money"][-1] for r in runs],
            "seeds": list(cfg["seeds"]), "runs": runs}
    rnd = out.get("longtail:random")
    if rnd:
        for method, res in out.items():
            if not active(method):
                continue
            cover, widths = [], []
            for r, theirs in zip(res["runs"], rnd["runs"], strict=True):
                v = r["verdict"]
                if v is None:
                    cover.append(None)
                    continue
                # The truth at the accuracy the verdict names: money to first reach it on
                # the test set, this run against the same seed's random run.
                mine = money_to(v["target"], r["curve"]["money"], r["curve"]["accuracy"])
                other = money_to(v["target"], theirs["curve"]["money"],
                                 theirs["curve"]["accuracy"])
                widths.append(v["hi"] - v["lo"])
                if mine is None or other is None:
                    cover.append(None)
                    continue
                realised = 1.0 - mine / other
                cover.append(bool(v["lo"] <= realised <= v["hi"]))
                v["realised_saving"] = realised
            res["verdict_covers_realised"] = cover
            res["verdict_median_width"] = float(np.median(widths)) if widths else None
            res["ratio_to_random"] = [None if a is None or b is None else a / b for a, b in zip(
                res["money_to_95pct_full"], rnd["money_to_95pct_full"], strict=True)]
        cost_blind = out.get("longtail:auto")
        for method, res in out.items():
            if method.startswith("longtail:auto-cost") and cost_blind:
                res["ratio_to_auto"] = [None if a is None or b is None else a / b for a, b in zip(
                    res["money_to_95pct_full"], cost_blind["money_to_95pct_full"], strict=True)]
    return {"dataset": name, "source": source, "full_data_accuracy": full,
            "budgets": list(range(cfg["batch"], cfg["budget"] + 1, cfg["batch"])),
            "target_accuracy": target, "expert_classes": expert, "methods": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--datasets", default="digits,banking77")
    ap.add_argument("--seeds", type=int, default=None, help="first N seeds only")
    ap.add_argument("--gamma", type=float, default=0.5,
                    help="the cost trade-off of longtail:auto-cost on banking77 (chosen on digits)")
    ap.add_argument("--jobs", type=int, default=1, help="runs (method x seed) in parallel")
    ap.add_argument("--early-stop", action="store_true",
                    help="stop a run once it reached the target (and, active, gave its verdict)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = {n: ({**c, "seeds": c["seeds"][: args.seeds]} if args.seeds else c)
             for n, c in SIZES[args.size].items()}
    sizes = {n: {**c, "jobs": args.jobs, "early_stop": args.early_stop} for n, c in sizes.items()}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    names = [n for n in args.datasets.split(",") if n]
    result = header("cost_aware", ",".join(names), {"size": args.size, "path": "Project per "
                    "command (query, import_labels --seconds, train), default settings, pools "
                    f"crowd {CROWD}/h and expert {EXPERT}/h, compute {CPU_HOUR}/CPU-h",
                    "gamma_banking77": args.gamma, **sizes}, started_at=started)
    result["datasets"] = {}
    for n in names:
        if n == "digits":
            methods = [(f"longtail:auto-cost@{g:g}", g) for g in GAMMAS_DIGITS]
            methods = [("longtail:random", None), ("longtail:auto", None), *methods]
        else:
            methods = [("longtail:random", None), ("longtail:auto", None),
                       ("longtail:auto-cost", args.gamma)]
        result["datasets"][n] = run_dataset(n, args.size, sizes[n], methods)
    # The headline (section 6's check): Banking77's figures when it ran, else the first.
    main_set = result["datasets"].get("banking77") or next(iter(result["datasets"].values()))
    result["budgets"], result["methods"] = main_set.get("budgets"), main_set.get("methods")
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
