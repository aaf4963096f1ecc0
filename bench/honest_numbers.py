"""Issue 26's check of the numbers longtail prints: interval coverage, stopping and forecasts.

1. Coverage (exact, no sampling): the probability that accuracy's 95% interval
   (Clopper-Pearson, `longtail.evaluation.metrics.proportion_interval`) covers the true
   accuracy p on an eval set of n, summed over the binomial, at n = 5, 10, 20, 50, 100
   and p = 0.5, 0.8, 0.9, 0.95, 0.99, 1.0; Wilson's interval beside it for comparison.
2. Stopping and forecasts on seeded runs through the product path: a fresh `Project` per
   command (query, import-labels, train, forecast), default settings (5% eval rate,
   eval labels by need, `auto`), an oracle answering from the truth. Per data set
   (Banking77 with batches of 100, digits with 20, Fashion-MNIST with 100: the
   label_efficiency pools and test sets, bench/datasets.py), 5 seeds:
   - stop regret: when `train`'s stopping answer first says "stop", the test accuracy
     still reachable = accuracy of the learner fitted on the whole labeled pool minus
     the run's test accuracy then (in points, floored at 0);
   - stop rate: whether it says "stop" by 3x the labels n1 at which the run's test
     curve first comes within 1 point of the full-pool accuracy (labels saved: the pool
     minus the labels at the stop);
   - forecast coverage: at every round with 3+ curve points, `forecast --target`
     (current eval accuracy + 2 points, 90% interval) against the labels at which the
     run's eval reading first reached that target; forecasts whose target the run never
     reached before its cap are censored (counted as covered only when the interval's
     upper end is beyond the cap, reported apart).

Thresholds (forecast gain 0.2 points per batch, kappa 0.99 over 3, the ±3-point eval
target) were set on Banking77 earlier; digits and Fashion-MNIST check them; scikit-
learn's breast_cancer and wine are the issue's own check (tests/evaluation/
test_honest_small_pools.py).

    python bench/honest_numbers.py --size smoke|full [--seeds N] [--datasets a,b]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, now_iso, peak_rss_bytes, write_result  # noqa: E402
from datasets import load  # noqa: E402

N_GRID = (5, 10, 20, 50, 100)
P_GRID = (0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
# Label caps per data set: about 3x the labels where label_efficiency's auto curve comes
# within a point of the full-pool accuracy, cut to what the shared machine runs in time.
# A run ends AFTER_STOP rounds after its first "stop" (the forecasts made before it still
# get later readings to be checked against); a stop settles the stop-rate question, since
# a run that has not yet come within 1 point of the full pool at its stop stops before
# 3x n1 whatever n1 turns out to be.
SIZES = {
    "smoke": {"seeds": 1, "runs": {"banking77": (100, 400), "digits": (20, 120),
                                   "fashion_mnist": (100, 400)}},
    "full": {"seeds": 5, "runs": {"banking77": (100, 6000), "digits": (20, 1257),
                                  "fashion_mnist": (100, 9000)}},
}
AFTER_STOP = 3


def coverage_table() -> dict:
    """Exact coverage of Clopper-Pearson and Wilson at every (n, p) of the grid."""
    from longtail.evaluation.budget import wilson_halfwidth
    from longtail.evaluation.metrics import interval_coverage

    def wilson(k, n, level):
        k = np.asarray(k, dtype=float)
        z2 = 1.959963984540054 ** 2
        centre = (k + z2 / 2) / (n + z2)
        h = np.array([wilson_halfwidth(x / n, n) for x in k])
        return centre - h, centre + h

    rows = [{"n": n, "p": p, "clopper_pearson": interval_coverage(n, p),
             "wilson": interval_coverage(n, p, interval=wilson)}
            for n in N_GRID for p in P_GRID]
    return {"level": 0.95, "grid": rows,
            "min_clopper_pearson": min(r["clopper_pearson"] for r in rows),
            "min_wilson": min(r["wilson"] for r in rows)}


def _plain(result):
    """The JSON form of an engine result (typed records have `to_dict`)."""
    return result.to_dict() if hasattr(result, "to_dict") else result


def _accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(model.classes_)[model.predict_proba(X).argmax(1)] == y))


def full_pool_accuracy(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray) -> float:
    """The project's default learner fitted on every pool row, on the test set."""
    from longtail.learners import make_learner

    return _accuracy(make_learner("linear").fit(X, y), Xt, yt)


def run_seed(seed: int, data: tuple, batch: int, cap: int, full_acc: float,
             workdir: Path, after_stop: int = AFTER_STOP, deadline: float | None = None
             ) -> dict:
    """One seeded run through the product path; every command opens the project anew."""
    from longtail.project import Project

    X, y, Xt, yt, names = data
    ys, yts = names[y].astype(str), names[yt].astype(str)
    ids = [f"r{i:06d}" for i in range(len(X))]
    pool_file = workdir / f"pool{seed}.parquet"
    pq.write_table(pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(
        X.ravel(), X.shape[1])}), pool_file)
    path = workdir / f"proj{seed}"
    Project.init(path, seed=seed).close()
    p = Project(path)
    p.ingest(pool_file, id="id", vector="vec")
    p.close()
    truth = dict(zip(ids, ys, strict=True))
    rounds: list[dict] = []
    t0 = time.perf_counter()
    first_stop = None
    cut = False
    while True:
        p = Project(path)
        q = p.query(batch, strategy="auto")
        p.close()
        answers = workdir / f"a{seed}-{len(rounds)}.csv"
        answers.write_text("id,label\n" + "".join(f"{i},{truth[i]}\n" for i in q.ids))
        p = Project(path)
        p.import_labels(answers)
        p.close()
        p = Project(path)
        report = p.train().to_dict()
        test_acc = _accuracy(p.model(), Xt, yts)
        p.close()
        ev = report.get("eval") or {}
        acc = (ev.get("accuracy") or {}).get("value")
        stopping = report.get("stopping") or ""
        paid = sum(r["batch"] for r in rounds) + len(q.ids)
        point = {"labels_paid": paid, "train_labels": report["labels"],
                 "eval_labels": ev.get("n"), "eval_accuracy": acc,
                 "eval_lo": (ev.get("accuracy") or {}).get("lo"),
                 "test_accuracy": test_acc, "stop": stopping.startswith("stop"),
                 "not_enough_evidence": stopping.startswith("not enough evidence"),
                 "stopping": stopping[:300], "batch": len(q.ids),
                 # the rules that said stop, read from train's stopping answer
                 "rules": sorted(r for r in ("remaining_gain", "stabilizing_predictions",
                                             "forecast_gain")
                                 if f"{r}: " in stopping and stopping.startswith(
                                     ("stop", "not enough evidence"))),
                 "evidence": not stopping.startswith("not enough evidence")}
        p = Project(path)
        # the curve's points as forecast and stopping read them, every round (for
        # replaying both with other forecast code: `--replay`)
        point["points"] = [[c.n_labels, c.value, c.lo, c.hi] for c in p.curves().current]
        left = re.search(r"labeling the ([\d,]+) pool rows left", stopping)
        point["pool_left"] = int(left.group(1).replace(",", "")) if left else None
        p.close()
        if acc is not None and acc + 0.02 <= 1.0:
            p = Project(path)
            try:
                fc = p.forecast(acc + 0.02, next_batch=batch).to_dict()
                point["forecast"] = {"target": acc + 0.02, **fc["more_labels"],
                                     "labels_now": fc["labels_now"], "shown": fc["shown"]}
            except Exception as e:  # noqa: BLE001 - fewer than 3 points: no forecast yet
                point["forecast"] = {"error": str(e)[:120]}
            finally:
                p.close()
        rounds.append(point)
        print(f"  seed {seed} {paid} paid, {report['labels']} train, eval {ev.get('n')} "
              f"{acc if acc is None else round(acc, 3)}, test {test_acc:.4f}: "
              f"{stopping[:110]}", flush=True)
        if point["stop"] and first_stop is None:
            first_stop = len(rounds) - 1
        if deadline is not None and time.time() > deadline:
            cut = True
            break
        if paid >= cap or paid >= len(X) or (
                first_stop is not None and len(rounds) - 1 - first_stop >= after_stop):
            break
    seconds = time.perf_counter() - t0
    out = summarise_run(seed, rounds, full_acc, cap, len(X), seconds)
    out["cut_at_deadline"] = cut  # ended by --deadline (wall clock), not by its cap
    return out


def summarise_run(seed: int, rounds: list[dict], full_acc: float, cap: int, pool: int,
                  seconds: float) -> dict:
    """Stop regret, stop-by-3x-n1 and forecast coverage of one run."""
    labels = [r["train_labels"] for r in rounds]
    test = [r["test_accuracy"] for r in rounds]
    n1 = next((n for n, a in zip(labels, test, strict=True) if a >= full_acc - 0.01), None)
    stop_at = next((i for i, r in enumerate(rounds) if r["stop"]), None)
    out = {"seed": seed, "rounds": len(rounds), "seconds": round(seconds, 1),
           "full_pool_accuracy": full_acc, "n1_labels": n1,
           "stop_labels": labels[stop_at] if stop_at is not None else None,
           "stop_test_accuracy": test[stop_at] if stop_at is not None else None,
           "stop_regret_points": (max(0.0, full_acc - test[stop_at]) * 100
                                  if stop_at is not None else None),
           "labels_saved": pool - labels[stop_at] if stop_at is not None else None,
           # n1 None at a stop: the run never came within 1 point, so n1 lies beyond it
           "stopped_by_3x_n1": bool(stop_at is not None
                                    and (n1 is None or labels[stop_at] <= 3 * n1)),
           "stopped_by_rules": rounds[stop_at].get("rules") if stop_at is not None else None,
           "three_n1_within_cap": n1 is not None and 3 * n1 <= labels[-1],
           "not_enough_evidence_rounds": sum(r.get("not_enough_evidence", False)
                                             for r in rounds),
           "curve": [{k: r.get(k) for k in ("train_labels", "eval_labels", "eval_accuracy",
                                            "eval_lo", "test_accuracy", "stop", "evidence",
                                            "rules", "points")} for r in rounds]}
    # Forecast coverage: labels more (training labels) until the eval reading reached
    # the target, against the forecast's 90% interval.
    checks = []
    for i, r in enumerate(rounds):
        fc = r.get("forecast") or {}
        if "target" not in fc:
            continue
        hit = next((rounds[j]["train_labels"] for j in range(i + 1, len(rounds))
                    if (rounds[j]["eval_accuracy"] or 0) >= fc["target"]), None)
        lo = fc["lo"] if fc["lo"] is not None else 0.0
        hi = fc["hi"]  # None: unbounded above
        if hit is None:
            left = labels[-1] - r["train_labels"]
            checks.append({"round": i, "censored": True,
                           "covered": hi is None or hi > left, "width": None})
        else:
            more = hit - r["train_labels"]
            checks.append({"round": i, "censored": False, "realised": more, "lo": lo,
                           "hi": hi, "covered": lo <= more and (hi is None or more <= hi),
                           "width": None if hi is None else hi - lo})
    done = [c for c in checks if not c["censored"]]
    out["forecasts"] = checks
    out["forecast_checked"] = len(done)
    out["forecast_covered"] = sum(c["covered"] for c in done)
    out["forecast_censored"] = len(checks) - len(done)
    out["forecast_censored_consistent"] = sum(c["covered"] for c in checks if c["censored"])
    widths = [c["width"] for c in done if c["width"] is not None]
    out["forecast_widths"] = widths
    return out


def dataset_summary(runs: list[dict]) -> dict:
    regrets = [r["stop_regret_points"] for r in runs if r["stop_regret_points"] is not None]
    checked = sum(r["forecast_checked"] for r in runs)
    widths = [w for r in runs for w in r["forecast_widths"]]
    saved = [r["labels_saved"] for r in runs if r["labels_saved"] is not None]
    return {
        "seeds": len(runs),
        "stopped": sum(r["stop_labels"] is not None for r in runs),
        "stop_regret_mean_points": statistics.fmean(regrets) if regrets else None,
        "stop_rate_by_3x_n1": sum(r["stopped_by_3x_n1"] for r in runs) / len(runs),
        "runs_reaching_3x_n1": sum(r["three_n1_within_cap"] for r in runs),
        # a run is decided when it stopped or ran past 3x n1 without stopping
        "runs_decided": sum(r["stop_labels"] is not None or r["three_n1_within_cap"]
                            for r in runs),
        "labels_saved_mean": statistics.fmean(saved) if saved else None,
        "forecast_checked": checked,
        "forecast_coverage": (sum(r["forecast_covered"] for r in runs) / checked
                              if checked else None),
        "forecast_censored": sum(r["forecast_censored"] for r in runs),
        # every forecast, a censored one counted as missed when its interval ended
        # before the run did without the target read
        "forecast_coverage_with_censored": (
            sum(r["forecast_covered"] + r["forecast_censored_consistent"] for r in runs)
            / (checked + sum(r["forecast_censored"] for r in runs))
            if checked + sum(r["forecast_censored"] for r in runs) else None),
        "forecast_median_width": statistics.median(widths) if widths else None,
        "forecast_unbounded": sum(1 for r in runs for c in r["forecasts"]
                                  if not c["censored"] and c["hi"] is None),
        "forecast_unbounded_share": (sum(1 for r in runs for c in r["forecasts"]
                                         if not c["censored"] and c["hi"] is None) / checked
                                     if checked else None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--seed-list", default=None,
                    help="comma-separated seeds to run (runs in parallel processes, merged)")
    ap.add_argument("--datasets", default=None, help="comma-separated subset")
    ap.add_argument("--cap", type=int, default=None,
                    help="labels paid per run (default: the size's, per data set)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--deadline", default=None,
                    help="UTC time HH:MM at which a run still going ends where it is (a "
                         "shared machine's time limit; such runs are marked cut_at_deadline)")
    ap.add_argument("--merge", nargs="+", default=None,
                    help="combine result files of runs on separate data sets (run side by "
                         "side) into one, with the summary over all")
    ap.add_argument("--note", default=None,
                    help="with --merge: a line kept in params (the load the runs saw, why a "
                         "data set has fewer seeds)")
    ap.add_argument("--replay", default=None,
                    help="a stored result whose recorded curves are forecast again with "
                         "this checkout's code (forecast coverage only; see `replay`)")
    args = ap.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.out)
    if args.merge:
        return merge(args.merge, args.out, args.note)
    started = now_iso()
    deadline = None
    if args.deadline:
        import datetime as dt

        hh, mm = (int(x) for x in args.deadline.split(":"))
        now = dt.datetime.now(dt.UTC)
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    cfg = SIZES[args.size]
    seeds = args.seeds or cfg["seeds"]
    wanted = args.datasets.split(",") if args.datasets else list(cfg["runs"])
    result = header("honest_numbers", ", ".join(wanted),
                    {"size": args.size, "seeds": seeds, "runs": cfg["runs"], "cap": args.cap,
                     "path": "product: a fresh Project per command (query, import-labels, "
                             "train, forecast), default settings, strategy auto",
                     "threads": 1, "deadline_utc": args.deadline}, started_at=started)
    result["coverage"] = coverage_table()
    result["datasets"] = {}
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            batch, cap = cfg["runs"][name]
            cap = args.cap or cap
            data, source = load(name, args.size)
            if data is None:
                result["datasets"][name] = {"source": source, "skipped": True}
                continue
            X, y, Xt, yt, names = data
            full = full_pool_accuracy(X, names[y].astype(str), Xt, names[yt].astype(str))
            runs = []
            seed_list = ([int(x) for x in args.seed_list.split(",")] if args.seed_list
                         else range(seeds))
            for seed in seed_list:
                if deadline is not None and time.time() > deadline:
                    break  # no time left to start another seed (said in params)
                work = Path(tmp) / f"{name}-{seed}"
                work.mkdir()
                runs.append(run_seed(seed, data, batch, cap, full, work, deadline=deadline))
                r = runs[-1]
                print(f"{name} seed {seed}: stop at {r['stop_labels']} "
                      f"(regret {r['stop_regret_points']}), n1 {r['n1_labels']}, forecasts "
                      f"{r['forecast_covered']}/{r['forecast_checked']}, {r['seconds']} s",
                      flush=True)
                result["datasets"][name] = {"source": source, "batch": batch, "cap": cap,
                                            "pool": int(len(X)), "test": int(len(Xt)),
                                            "full_pool_accuracy": full,
                                            **dataset_summary(runs), "runs": runs}
                if args.out:  # what has finished so far, in case the machine runs out
                    finish(result)
                    write_result(result, args.out)
            result["datasets"][name] = {"source": source, "batch": batch, "cap": cap,
                                        "pool": int(len(X)), "test": int(len(Xt)),
                                        "full_pool_accuracy": full,
                                        **dataset_summary(runs), "runs": runs}
    result["peak_rss_bytes"] = peak_rss_bytes()
    finish(result)
    print(f"honest_numbers -> {write_result(result, args.out)}")
    return 0


def replay(path: str, out: str | None) -> int:
    """Forecasts of a stored result replayed with this checkout's forecast code.

    Every round of every run keeps what the product recorded (the curve points
    `forecast` read, the eval readings, the test accuracy, the stops); only the
    labels-to-target forecast is recomputed from the points, through the engine's own
    `curve_from_points` and `labels_to_target`. Selection does not read the forecast,
    so the runs are what the product would have run. Rounds recorded without points
    (older files kept them only when a forecast was asked) are left out; a round without
    its pool rows left takes the pool less the labels paid.
    """
    import json

    from longtail.engine.evaluation import curve_from_points, labels_to_target

    stored = json.loads(Path(path).read_text())
    result = header("honest_numbers_replay", stored.get("dataset", ""),
                    {"replay_of": path, "replayed_commit": stored.get("git_commit"),
                     "replayed_started_at": stored.get("started_at"),
                     "path": "replay: the product's recorded curve points per round, "
                             "forecast again by engine.evaluation.labels_to_target",
                     "what": "forecast coverage only; stops are as recorded"},
                    started_at=now_iso())
    result["coverage"] = stored["coverage"]
    result["datasets"] = {}
    for name, d in stored["datasets"].items():
        if d.get("skipped"):
            continue
        runs = []
        for run in d["runs"]:
            rounds = []
            for r in run["curve"]:
                r = dict(r, labels_paid=None)
                pts = r.get("points")
                acc = r.get("eval_accuracy")
                if pts and len({p[0] for p in pts}) >= 3 and acc is not None \
                        and acc + 0.02 <= 1.0:
                    by_n = {p[0]: p for p in pts}  # the latest model at each label count
                    pts = [by_n[n] for n in sorted(by_n) if n > 0]
                    curve = curve_from_points(pts, seed=run["seed"])
                    last = {"value": pts[-1][1], "lo": pts[-1][2], "hi": pts[-1][3]}
                    left = r.get("pool_left")
                    if left is None:
                        left = d["pool"] - r["train_labels"] - (r.get("eval_labels") or 0)
                    fc = labels_to_target(curve, last, acc + 0.02, float(pts[-1][0]),
                                          d["batch"], max(int(left), 1))
                    r["forecast"] = {"target": acc + 0.02, **fc.more_labels}
                rounds.append(r)
            runs.append(summarise_run(run["seed"], rounds, d["full_pool_accuracy"],
                                      d["cap"], d["pool"], run["seconds"]))
            runs[-1]["not_enough_evidence_rounds"] = run["not_enough_evidence_rounds"]
        result["datasets"][name] = {k: v for k, v in d.items() if k != "runs"}
        result["datasets"][name].update(dataset_summary(runs), runs=runs)
    finish(result)
    print(f"honest_numbers replay -> {write_result(result, out)}")
    return 0


def merge(paths: list[str], out: str | None, note: str | None = None) -> int:
    """One result from several (each one data set, run in parallel processes).

    A path may end in ``:name,name`` to take only those data sets from it; each data
    set then records the file, commit and kind (run or replay) it came from.
    """
    import json

    parts = []
    for p in paths:
        file, _, only = p.partition(":")
        part = json.loads(Path(file).read_text())
        if only:
            part["datasets"] = {k: v for k, v in part["datasets"].items()
                                if k in only.split(",")}
        for d in part["datasets"].values():
            cut = [r for r in d.get("runs", []) if r.get("cut_at_deadline")]
            if cut:  # a run ended by the clock has no verdict: kept apart, not summarised
                d["runs"] = [r for r in d["runs"] if not r.get("cut_at_deadline")]
                d["runs_cut_at_deadline"] = d.get("runs_cut_at_deadline", []) + cut
            if d.get("runs"):  # this checkout's summary of the runs kept
                d.update(dataset_summary(d["runs"]))
            d.setdefault("from", {"file": Path(file).name, "git_commit": part["git_commit"],
                                  "benchmark": part["benchmark"],
                                  "path": part["params"].get("path")})
        parts.append(part)
    result = parts[0]
    if note:
        result["params"]["note"] = note
    for other in parts[1:]:
        for name, d in other["datasets"].items():
            mine = result["datasets"].get(name)
            if mine is None or mine.get("skipped") or d.get("skipped"):
                result["datasets"][name] = d
                continue
            runs = sorted(mine["runs"] + d["runs"], key=lambda r: r["seed"])
            mine.update(dataset_summary(runs), runs=runs)
        result["params"]["merged_from"] = result["params"].get("merged_from", []) + [
            {"git_commit": other["git_commit"], "started_at": other["started_at"]}]
        # a file written after each seed (a run cut short) has no peak yet
        result["peak_rss_bytes"] = max(result.get("peak_rss_bytes") or 0,
                                       other.get("peak_rss_bytes") or 0) or None
    finish(result)
    print(f"honest_numbers -> {write_result(result, out)}")
    return 0


def finish(result: dict) -> None:
    """The data-set line and the summary keys, over every data set in `result`."""
    result["dataset"] = "; ".join(f"{k}: {d['source']}" for k, d in result["datasets"].items())
    sims = [d for d in result["datasets"].values() if not d.get("skipped")]

    censored = sorted(k for k, d in result["datasets"].items() if not d.get("skipped")
                      and d.get("runs_decided", d["runs_reaching_3x_n1"]) < d["seeds"])

    def extreme(key: str, fn) -> float | None:
        vals = [d[key] for d in sims if d.get(key) is not None]
        return fn(vals) if vals else None

    result["summary"] = {
        "interval_coverage_min": result["coverage"]["min_clopper_pearson"],
        "stop_regret_mean_points_max": extreme("stop_regret_mean_points", max),
        # Stops by 3x n1 over all seeds: a run still undecided at its cap (no stop, 3x n1
        # not reached) counts as not stopping, so this is a lower bound there (listed).
        "stop_rate_min": extreme("stop_rate_by_3x_n1", min),
        "stop_rate_censored_datasets": censored,
        "forecast_coverage_min": extreme("forecast_coverage", min),
        "forecast_coverage_with_censored_min": extreme("forecast_coverage_with_censored", min),
        "forecast_median_width_max": extreme("forecast_median_width", max),
        "forecast_unbounded_share_max": extreme("forecast_unbounded_share", max),
    }
    print(result["summary"])


if __name__ == "__main__":
    sys.exit(main())
