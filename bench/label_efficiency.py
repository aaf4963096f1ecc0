"""label_efficiency (BENCHMARKS.md §1): does selection save labels?

Banking77 MiniLM embeddings; pool = the 10,003 training rows, accuracy on the 3,080
test rows; start at 0 labels, batches of 100 up to 2,000 labels; the same model for
every method, ``LogisticRegression(C=10, max_iter=300)``; 5 seeds.

Methods: every ``longtail.strategies`` strategy (listed at run time), scikit-activeml
peers with the same model, and modAL's ``uncertainty_batch_sampling``.

Run: ``python bench/label_efficiency.py --size full [--resume]``. Each method×seed is
cached under ``bench/results/.cache/label_efficiency/`` and the result JSON is rewritten
after each one, so an interrupted run continues with ``--resume`` and a partial result is
always on disk (``complete`` says whether every method has every seed).

All BLAS / OpenMP pools are limited to one thread for the whole run (recorded in
``params.threads``): on a shared, loaded 2-core machine OpenBLAS' threads made one
logistic-regression fit ~30-100x slower. Every method runs under the same limit.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, SHARED_DATA, header, strategies_hash, write_result  # noqa: E402

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

# Left out of the full size unless named in --methods, with the reason recorded.
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


EMBED_CACHE = RESULTS / ".cache" / "banking77-minilm.npz"


def embed_banking77(cache: Path = EMBED_CACHE, encoder=None, shared: Path = SHARED_DATA
                    ) -> Path | None:
    """When the shared embeddings are absent (BENCHMARKS.md §1): embed train.csv and
    test.csv (the shared copies, else the ones bundled with longtail) with the project's
    own text encoder, once, into `cache`, in the shared file's layout. Returns None when
    no encoder can be loaded (the `text` extra is not installed)."""
    if cache.exists():
        return cache
    import csv

    from longtail.demo import bundled

    if encoder is None:
        try:
            from longtail.encoders import get_encoder

            encoder = get_encoder("minilm")
        except Exception as e:  # noqa: BLE001 - reported, the benchmark is skipped
            print(f"[{BENCH}] no shared embeddings and no text encoder ({e}); skipped")
            return None
    arrays = {}
    for split in ("train", "test"):
        csv_path = shared / "banking77" / f"{split}.csv"
        src = csv_path if csv_path.exists() else bundled(f"{split}.csv")
        with open(src, newline="") as f:
            rows = list(csv.DictReader(f))
        texts = [r["text"] for r in rows]
        print(f"[{BENCH}] embedding {len(texts):,} {split} texts from {src}", flush=True)
        vecs = [encoder.encode({"text": texts[i:i + 512], "metadata": []})
                for i in range(0, len(texts), 512)]
        arrays[f"{split}_X"] = np.concatenate(vecs).astype(np.float32)
        arrays[f"{split}_y"] = np.array([r.get("category") or r.get("label") for r in rows])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    return cache


def load_data(size: str, seed: int = 0, shared: Path | None = None, cache: Path = EMBED_CACHE,
              encoder=None):
    """(X, y, X_test, y_test, class names) and where they came from: the shared MiniLM
    embeddings, else our own embedding of the CSVs (cached)."""
    path = (SHARED_DATA if shared is None else shared) / "banking77" / "minilm.npz"
    if not path.exists():
        path = embed_banking77(cache, encoder, SHARED_DATA if shared is None else shared)
        if path is None:
            return None, "banking77 embeddings (none shared, no text encoder)"
    d = np.load(path)
    X = np.ascontiguousarray(d["train_X"], dtype=np.float32)
    Xt = np.ascontiguousarray(d["test_X"], dtype=np.float32)
    names, y_all = np.unique(np.concatenate([d["train_y"], d["test_y"]]), return_inverse=True)
    y = y_all[: len(X)].astype(np.int64)
    yt = y_all[len(X) :].astype(np.int64)
    if size == "smoke":
        keep = np.sort(np.random.default_rng(seed).choice(len(X), 2000, replace=False))
        X, y = X[keep], y[keep]
    return (X, y, Xt, yt, names), str(path)


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


def run_one(method: str, seed: int, data, budgets: list[int], batch: int, cap: float | None = None) -> dict:
    X, y, Xt, yt, names = data
    q = Querier(method, seed, X, y, len(names))
    labeled = np.zeros(0, dtype=np.int64)
    model = None
    accs, qsecs, notes = [], [], []
    t_start = time.perf_counter()
    for budget in budgets:
        while len(labeled) < budget:
            k = min(batch, budget - len(labeled))
            q._untimed = 0.0
            t0 = time.perf_counter()
            rows = q.query(model, labeled, k)
            qsecs.append(time.perf_counter() - t0 - q._untimed)
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
        accs.append(float(np.mean(model.predict(Xt) == yt)))
    out = {"accuracy": accs, "query_seconds": qsecs, "notes": notes}
    if q.kind == "longtail" and any(a is not None for a in q.arms):
        out["arms"] = q.arms
    return out


# --------------------------------------------------------------------------- figures


def labels_to_target(budgets, curve, target):
    """First crossing of ``target`` on ``curve``, linearly interpolated; None if never."""
    prev_b, prev_a = None, None
    for b, a in zip(budgets, curve, strict=True):
        if a >= target:
            if prev_b is None:
                return float(b)
            return float(prev_b + (target - prev_a) * (b - prev_b) / (a - prev_a))
        prev_b, prev_a = b, a
    return None


def figures(runs: list[dict], budgets, full_acc) -> dict:
    acc = np.array([r["accuracy"] for r in runs])
    mean = acc.mean(axis=0)
    sd = acc.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(budgets))
    qs = [float(np.mean(r["query_seconds"])) for r in runs]
    fig = {
        "accuracy_mean": [round(float(v), 5) for v in mean],
        "accuracy_sd": [round(float(v), 5) for v in sd],
        "aulc": round(float(mean.mean()), 5),
        "labels_to_95pct_full": labels_to_target(budgets, mean, 0.95 * full_acc),
        "query_seconds_mean": round(float(np.mean(qs)), 4),
        "query_seconds_sd": round(float(np.std(qs, ddof=1)), 4) if len(qs) > 1 else 0.0,
        "seeds_done": len(runs),
    }
    if any(r.get("notes") for r in runs):
        fig["notes"] = sorted({n for r in runs for n in r.get("notes", [])})[:10]
    arms = [a for r in runs for a in r.get("arms", [])]
    if arms:
        fig["arms_by_round"] = [r.get("arms") for r in runs]
    return fig


def markdown_table(result: dict) -> str:
    budgets = result["budgets"]
    cols = [b for b in (100, 500, 1000, 2000) if b in budgets]
    if budgets[-1] not in cols:
        cols.append(budgets[-1])
    lines = [
        "| method | "
        + " | ".join(f"acc@{b}" for b in cols)
        + " | AULC | labels to 95% | query s/round | seeds |",
        "|---" * (len(cols) + 5) + "|",
    ]
    rows = sorted(result["methods"].items(), key=lambda kv: -kv[1]["aulc"])
    for m, f in rows:
        accs = []
        for b in cols:
            i = budgets.index(b)
            accs.append(f"{f['accuracy_mean'][i]:.3f} ± {f['accuracy_sd'][i]:.3f}")
        l95 = f["labels_to_95pct_full"]
        l95 = f"{l95:.0f}" if l95 is not None else f"> {budgets[-1]}"
        lines.append(
            f"| {m} | "
            + " | ".join(accs)
            + f" | {f['aulc']:.3f} | {l95} | {f['query_seconds_mean']:.3f} | {f['seeds_done']}"
            + (" (seed-independent)" if m in result.get("seed_independent", []) else "")
            + (" (stale: older strategies source)" if m in result.get("stale_source", []) else "")
            + " |"
        )
    for m, err in result.get("errors", {}).items():
        lines.append(f"| {m} | error: {err.splitlines()[0][:80]} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full")
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
            return _main(args)
        finally:
            if faiss is not None:
                faiss.omp_set_num_threads(n_faiss)


def _main(args) -> int:
    data, path = load_data(args.size)
    if data is None:
        print(f"label_efficiency: no {path}; nothing to do (install the `text` extra to "
              "embed the CSVs with MiniLM)")
        return 0
    smoke = args.size == "smoke"
    seeds = args.seeds if args.seeds is not None else (1 if smoke else 5)
    batch = 100
    budgets = list(range(batch, (300 if smoke else 2000) + 1, batch))
    X, y, Xt, yt, names = data

    available, skipped = list_methods()
    if smoke:
        methods = [m for m in available if m in SMOKE_METHODS]
    else:
        methods = [m for m in available if m not in TOO_SLOW]
        skipped.update({m: TOO_SLOW[m] for m in available if m in TOO_SLOW})
    if args.methods:  # filters everything available, in smoke size too
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        # in the order given (cheap methods first gives whole seeds sooner)
        methods = [m for w in wanted for m in available if w in (m, m.split(":", 1)[1])]
        methods = list(dict.fromkeys(methods))
        for m in methods:
            skipped.pop(m, None)

    params = {
        "size": args.size,
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
        "pool_subsample": "2,000 rows (seed 0)" if smoke else None,
        "cap_seconds_per_method_seed": args.cap_seconds,
    }
    result = header(BENCH, f"banking77 minilm ({path})", params)
    result["budgets"] = budgets
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full_acc = float(np.mean(fit_model(X, y).predict(Xt) == yt))
    result["full_data_accuracy"] = round(full_acc, 5)
    result["full_data_seconds"] = round(time.perf_counter() - t0, 3)
    result["cold_start"] = {m: COLD_START[m] for m in methods if m in COLD_START}
    result["skipped"] = skipped
    out = Path(args.out) if args.out else RESULTS / f"{BENCH}.json"

    key = hashlib.sha1(json.dumps([args.size, budgets, batch, int(len(X))]).encode()).hexdigest()
    cache = CACHE / f"{args.size}-{key[:10]}"
    cache.mkdir(parents=True, exist_ok=True)
    # Cached longtail runs are only reused while the strategies' source is unchanged.
    code_hash = strategies_hash()
    result["strategies_source_sha1"] = code_hash
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    stale: set[str] = set()
    seed_independent: set[str] = set()
    errors: dict[str, str] = {}

    def flush():
        result["methods"] = {m: figures(r, budgets, full_acc) for m, r in runs.items() if r}
        result["errors"] = errors
        result["complete"] = (
            all(len(runs[m]) == seeds or m in seed_independent for m in methods) and not errors
        )
        result["seeds_done"] = {m: len(runs[m]) for m in methods}
        result["stale_source"] = sorted(stale)
        result["seed_independent"] = sorted(seed_independent)
        result["wall_seconds"] = round(time.perf_counter() - t0, 1)
        write_result(result, out)
        if result["methods"]:
            out.with_name(f"{BENCH}.md").write_text(markdown_table(result))

    for seed in range(seeds):  # seed-major: a cut-short run has whole seeds for all methods
        for m in methods:
            if m in errors:
                continue
            f = cache / f"{m.replace(':', '__')}__{seed}.json"
            src = code_hash if m.startswith("longtail:") else None
            if (args.resume or args.collect) and f.exists():
                cached = json.loads(f.read_text())
                # --resume reuses longtail runs only from the same strategies source;
                # --collect takes them anyway and flags them.
                if cached.get("strategies_source_sha1") == src or args.collect:
                    if cached.get("strategies_source_sha1") != src:
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
                r = run_one(m, seed, data, budgets, batch, args.cap_seconds)
            except Exception as e:  # a broken method must not sink the others
                errors[m] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
                print(f"[{BENCH}] {m} seed {seed}: ERROR {errors[m]}", flush=True)
                flush()
                continue
            r["wall_seconds"] = round(time.perf_counter() - t1, 2)
            r["strategies_source_sha1"] = src
            f.write_text(json.dumps(r))
            runs[m].append(r)
            print(
                f"[{BENCH}] {m} seed {seed}: acc@{budgets[-1]}={r['accuracy'][-1]:.3f} "
                f"mean acc={np.mean(r['accuracy']):.3f} q={np.mean(r['query_seconds']):.3f}s "
                f"({r['wall_seconds']:.0f}s)",
                flush=True,
            )
            flush()
    flush()
    print(f"full-data accuracy {full_acc:.4f}; result in {out}")
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
