"""Issue 32's image benchmark: an image folder through the product path, the small CNN
on raw pixels and logistic regression on pixel PCA, pseudo-labels on and off, and how
far a selection carries to the other model.

Fashion-MNIST from Debian's `dataset-fashion-mnist`: a seeded pool of the 60,000
training images written as PNG files in class-less folders, the 10,000 test images.
Each method runs through a fresh `Project` per command, as a user would: `ingest DIR`,
`embed --encoder pixels` and `--encoder pixels-raw` (once, the project copied per
method), the method's settings (`learner`, `encoder`, `pseudo_labels`), then `query`
(default settings: eval labels by need) -> an oracle's `import_labels` -> `train`, from
0 labels in batches up to the budget. Accuracy at each budget (labels paid, eval labels
included) is the project's own latest model on the test images, put through the
project's encoder (raw pixels for the CNN, its stored PCA for the linear head). The
transfer table trains the other model family on the set each `auto` selection built
and on an equal-size random set, with a paired bootstrap interval over the test images.

Torch and BLAS run on one thread (the machine is shared; `params.threads`).

    python bench/images.py --size smoke|full [--out PATH] [--methods A,B] [--seeds 0,1]
                           [--pool N] [--budget N] [--batch N] [--resume [--no-run]]
                           [--work DIR]

Resumable: each (method, seed) keeps its project and its curve under the work folder
(default `bench/results/.cache/images-<size>`), written after every round; `--resume`
continues where a run stopped (a run whose project and curve disagree starts over; a run
finished at a smaller `--budget` goes on to the larger one) and
the JSON is rewritten after each finished run with what is done so far
(`not_measured` names the rest); `--resume --no-run` only writes the JSON, with the
transfer table, from the runs that finished.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import RESULTS, header, write_result  # noqa: E402

CNN = {"width": 16, "hidden": 128}  # the learner's defaults but a narrower body: CPU
SIZES = {
    "smoke": {"pool": 400, "test": 300, "batch": 50, "budget": 150, "seeds": [0],
              "cnn": {"width": 4, "hidden": 16, "epochs": 5}},
    "full": {"pool": 20_000, "test": 10_000, "batch": 250, "budget": 3000, "seeds": [0, 1, 2],
             "cnn": CNN},
}
# method -> (strategy, learner, encoder, pseudo-labels rule or "off")
METHODS = {  # in the order they run (the linear ones are quick; the transfer needs auto-lr)
    "longtail:auto-lr": ("auto", "linear", "pixels", "off"),
    "longtail:random-lr": ("random", "linear", "pixels", "off"),
    "longtail:auto-cnn": ("auto", "cnn", "pixels-raw", "off"),
    "longtail:random-cnn": ("random", "cnn", "pixels-raw", "off"),
    "longtail:bald-cnn": ("bald", "cnn", "pixels-raw", "off"),
    "longtail:auto-cnn+pseudo": ("auto", "cnn", "pixels-raw", "propagation"),
    "longtail:margin-cnn": ("margin", "cnn", "pixels-raw", "off"),
    "longtail:batchbald-cnn": ("batchbald", "cnn", "pixels-raw", "off"),
}
DEFAULT_METHODS = list(METHODS)[:6]
TRANSFER = (("longtail:auto-cnn", "linear"), ("longtail:auto-lr", "cnn"))


def raw_images(cfg: dict, seed: int = datasets.SPLIT_SEED):
    """(pool images uint8 (n, 28, 28), labels, test images, labels, source)."""
    root = datasets.FASHION_DIR
    files = [root / f"{p}-idx{n}-ubyte.gz" for p, n in
             (("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1))]
    rng = np.random.default_rng(seed)
    if not all(f.exists() for f in files):
        # A synthetic stand-in (smoke only): ten classes, each a bright bar in its own place.
        n, t = cfg["pool"], cfg["test"]
        y, yt = rng.integers(0, 10, n), rng.integers(0, 10, t)

        def draw(labels: np.ndarray) -> np.ndarray:
            im = rng.integers(0, 60, (len(labels), 28, 28)).astype(np.uint8)
            for i, k in enumerate(labels):
                im[i, 2 * k + 4: 2 * k + 8, 4:24] += 150
            return im
        return draw(y), y, draw(yt), yt, "synthetic stand-in (Fashion-MNIST files absent)"
    tr, trl, te, tel = (datasets._idx(f) for f in files)
    pool = np.sort(rng.choice(len(tr), min(cfg["pool"], len(tr)), replace=False))
    test = np.sort(rng.choice(len(te), min(cfg["test"], len(te)), replace=False))
    return (tr[pool], trl[pool].astype(np.int64), te[test], tel[test].astype(np.int64),
            f"Fashion-MNIST from {root}: seeded {len(pool):,}-image pool, {len(test):,} test")


def write_folder(images: np.ndarray, root: Path) -> list[str]:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i, a in enumerate(images):
        name = f"img{i:06d}.png"
        Image.fromarray(a, "L").save(root / name)
        names.append(name)
    return names


def learner(kind: str, cfg: dict, seed: int):
    from longtail.learners import make_learner

    return make_learner(kind, **({**cfg["cnn"], "seed": seed} if kind == "cnn" else {}))


def fit_acc(kind: str, cfg: dict, X, y, Xt, yt, seed: int) -> np.ndarray:
    """Per-test-image correctness (0/1) of a fresh `kind` trained on (X, y)."""
    if len(np.unique(y)) < 2:
        return (yt.astype(str) == str(y[0])).astype(float)
    return (learner(kind, cfg, seed).fit(X, y.astype(str)).predict(Xt) == yt.astype(str)
            ).astype(float)


def model_acc(proj: Path, Xt: np.ndarray, yt: np.ndarray) -> float:
    """Accuracy of the project's latest model on the test vectors."""
    from longtail.engine.models import load_model
    from longtail.project import Project

    with Project(proj) as p, p.store.reading() as uow:
        model = load_model(uow, predict_only=True)
    return float(np.mean(model.predict(Xt) == yt.astype(str)))


def _labels(proj: Path) -> int:
    from longtail.project import Project

    with Project(proj) as p, p.store.reading() as uow:
        return len(uow.labels.current())


def run_method(name: str, seed: int, base: Path, work: Path, ids_y: dict, tests: dict,
               yt: np.ndarray, cfg: dict, resume: bool) -> dict:
    """One method and seed through the product path; its curve, saved after each round
    to ``run-<method>-<seed>.json`` beside its project (and continued from there)."""
    from longtail.project import Project

    strategy, kind, encoder, pseudo = METHODS[name]
    tag = f"{name.split(':')[1]}-{seed}"
    proj, saved = work / f"proj-{tag}", work / f"run-{tag}.json"
    curve = None
    if resume and saved.exists() and proj.exists():
        curve = json.loads(saved.read_text())
        if curve.get("done") and curve["paid"][-1] >= cfg["budget"]:
            return curve
        curve["done"] = False  # a run finished at a smaller --budget goes on from there
        if _labels(proj) != curve["labels"]:
            curve = None  # stopped between a round and its record: start over
    if curve is None:
        shutil.rmtree(proj, ignore_errors=True)
        shutil.copytree(base, proj)
        with Project(proj) as p, p.store.unit_of_work() as uow:
            # As `longtail settings learner cnn` etc. would: query and train then use them.
            uow.settings.set("seed", seed)
            uow.settings.set("learner", kind)
            uow.settings.set("learner_params", {**cfg["cnn"], "seed": seed}
                             if kind == "cnn" else {})
            uow.settings.set("encoder", encoder)
            uow.settings.set("pseudo_labels", pseudo)
            if pseudo != "off":
                uow.settings.set("pseudo_ratio", 2.0)  # the rule pseudo_labels.json chose
        from _common import git_commit, git_dirty

        # The code each run was made with (runs resumed later keep their own).
        curve = {"paid": [], "accuracy": [], "eval_labels": [], "query_seconds": [],
                 "train_seconds": [], "labels": 0, "done": False, "git_commit": git_commit(),
                 "git_dirty": git_dirty(), "load_at_start": round(os.getloadavg()[0], 2)}
    paid = curve["paid"][-1] if curve["paid"] else 0
    n_eval = curve["eval_labels"][-1] if curve["eval_labels"] else 0
    answers = work / f"answers-{tag}.csv"
    while paid < cfg["budget"]:
        k = min(cfg["batch"], cfg["budget"] - paid)
        t0 = time.perf_counter()
        with Project(proj) as p:
            q = p.query(k, strategy=strategy)
        curve["query_seconds"].append(round(time.perf_counter() - t0, 3))
        answers.write_text("id,label\n" + "".join(f"{i},{ids_y[i]}\n" for i in q.ids))
        t0 = time.perf_counter()
        with Project(proj) as p:
            p.import_labels(answers)
            p.train()
        curve["train_seconds"].append(round(time.perf_counter() - t0, 3))
        paid += len(q.rows)
        n_eval += q.kinds.count("eval")
        curve["paid"].append(paid)
        curve["eval_labels"].append(n_eval)
        curve["accuracy"].append(model_acc(proj, tests[encoder], yt))
        curve["labels"] = _labels(proj)
        saved.write_text(json.dumps(curve))
    with Project(proj) as p, p.store.reading() as uow:
        curve["labeled_rows"] = sorted(int(r) for r in uow.labels.current())
    curve["done"] = True
    saved.write_text(json.dumps(curve))
    return curve


def test_vectors(base: Path, test_images: np.ndarray, encoder: str) -> np.ndarray:
    """The test images in the project's `encoder` space (its stored PCA for `pixels`)."""
    from longtail.encoders import get_encoder
    from longtail.project import Project

    with Project(base) as p, p.store.reading() as uow:
        info = uow.vectors.info(encoder)
    enc = get_encoder(encoder, **info["config"])
    flat = test_images.reshape(len(test_images), -1).astype(np.float32) / 255.0
    return enc.project(flat)


def make_base(work: Path, pool_im: np.ndarray, y: np.ndarray, params: dict,
              resume: bool) -> tuple[Path, dict, dict]:
    """The ingested, embedded project every method copies (kept for `--resume`), the
    oracle's labels by id, and the ingest/embed seconds."""
    from longtail.project import Project

    base, stamp = work / "base", work / "base.json"
    if resume and stamp.exists():
        info = json.loads(stamp.read_text())
        # The budget is each run's own (a run goes on to a larger one): not the base's.
        if {k: v for k, v in info["params"].items() if k != "budget"} != {
                k: v for k, v in params.items() if k != "budget"}:
            raise SystemExit(f"{work} holds a run with other parameters ({info['params']}); "
                             "drop --resume or pass another --work")
        names = [f"img{i:06d}.png" for i in range(len(pool_im))]
        return base, dict(zip(names, y.tolist(), strict=True)), info["seconds"]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    names = write_folder(pool_im, work / "images")
    seconds = {}
    t0 = time.perf_counter()
    with Project.init(base) as p:
        p.ingest(work / "images")
    seconds["ingest"] = round(time.perf_counter() - t0, 2)
    for enc in ("pixels", "pixels-raw"):
        t0 = time.perf_counter()
        with Project(base) as p:
            p.embed(enc)
        seconds[f"embed_{enc}"] = round(time.perf_counter() - t0, 2)
    stamp.write_text(json.dumps({"params": params, "seconds": seconds}))
    return base, dict(zip(names, y.tolist(), strict=True)), seconds


def summarise(runs: dict[str, dict[int, dict]]) -> dict:
    out = {}
    for name, by_seed in runs.items():
        done = [by_seed[s] for s in sorted(by_seed)]
        # A method run to a smaller --budget than the others: its own budgets, a prefix
        # of the top-level `budgets` (the same batches), over the budgets every seed has.
        n = min(len(r["accuracy"]) for r in done)
        acc = np.array([r["accuracy"][:n] for r in done])
        out[name] = {"budgets": done[0]["paid"][:n],
                     "accuracy_mean": acc.mean(0).tolist(), "accuracy_sd": acc.std(0).tolist(),
                     "eval_labels_mean": np.mean([r["eval_labels"][:n] for r in done],
                                                 0).tolist(),
                     "query_seconds_mean": float(np.mean([np.mean(r["query_seconds"])
                                                          for r in done])),
                     "train_seconds_mean": float(np.mean([np.mean(r["train_seconds"])
                                                          for r in done])),
                     "seeds": sorted(by_seed),
                     "runs": [{k: v for k, v in r.items() if k != "labeled_rows"}
                              for r in done]}
    return out


def transfer_table(runs: dict, base: Path, ids_y: dict, tests: dict, yt: np.ndarray,
                   cfg: dict, work: Path | None = None) -> list[dict]:
    """The other family trained on each `auto` selection against an equal-size random
    set (paired bootstrap over the test images for the interval). With `work`, each
    seed's per-test-image gains are kept there (``transfer-<method>-<seed>.npy``, keyed
    by the selection) and reused by a later `--no-run`."""
    from longtail.project import Project

    out = []
    rng = np.random.default_rng(0)
    y_all = np.array([ids_y[f"img{r:06d}.png"] for r in range(len(ids_y))])
    for sel, other in TRANSFER:
        if not runs.get(sel):
            continue
        enc = "pixels-raw" if other == "cnn" else "pixels"
        with Project(base) as p, p.store.reading() as uow:
            vs = uow.vector_set(enc)
            X_all = vs.read(np.arange(vs.n_rows))
        gains = []
        for seed, r in sorted(runs[sel].items()):
            rows = np.asarray(r["labeled_rows"], dtype=np.int64)
            rand = np.sort(rng.choice(len(X_all), len(rows), replace=False))
            kept = None if work is None else work / f"transfer-{sel.split(':')[1]}-{seed}.npz"
            key = np.concatenate([rows, rand])
            if kept is not None and kept.exists():
                with np.load(kept) as z:
                    if np.array_equal(z["key"], key):
                        gains.append(z["gain"])
                        continue
            a = fit_acc(other, cfg, X_all[rows], y_all[rows], tests[enc], yt, seed)
            b = fit_acc(other, cfg, X_all[rand], y_all[rand], tests[enc], yt, seed)
            gains.append(a - b)
            if kept is not None:
                np.savez(kept, key=key, gain=a - b)
        diff = np.mean(gains, axis=0)
        boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]
        out.append({"selected_with": METHODS[sel][1], "trained_with": other,
                    "labels": len(runs[sel][min(runs[sel])]["labeled_rows"]),
                    "seeds": sorted(runs[sel]), "gain_mean": float(diff.mean()),
                    "gain_lo": float(np.quantile(boot, 0.025)),
                    "gain_hi": float(np.quantile(boot, 0.975))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help="comma-separated subset of " + ", ".join(METHODS))
    ap.add_argument("--seeds", help="comma-separated seeds (default: the size's)")
    ap.add_argument("--pool", type=int, help="pool images (default: the size's)")
    ap.add_argument("--budget", type=int, help="labels paid per run (default: the size's)")
    ap.add_argument("--batch", type=int, help="labels per round (default: the size's)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the runs kept under --work instead of starting over")
    ap.add_argument("--work", help="folder for the projects and curves (kept for --resume)")
    ap.add_argument("--no-run", action="store_true",
                    help="with --resume: run nothing, write the JSON from the finished runs")
    args = ap.parse_args(argv)
    if args.no_run and not args.resume:
        ap.error("--no-run reads the runs kept by an earlier run: pass --resume too")
    chosen = [m for m in args.methods.split(",") if m]
    unknown = set(chosen) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods: {', '.join(sorted(unknown))}")
    cfg = dict(SIZES[args.size])
    reductions = []
    if args.seeds:
        cfg["seeds"] = [int(s) for s in args.seeds.split(",")]
    for key in ("pool", "budget", "batch"):
        value = getattr(args, key)
        if value is not None and value != cfg[key]:
            reductions.append(f"{key} {value:,} instead of the issue's {cfg[key]:,}")
            cfg[key] = value
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    if args.size != "smoke":
        # The stand-in is for smoke runs only: a full record must be Fashion-MNIST.
        how = datasets.install_fashion_mnist()
        if not (datasets.FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
            sys.exit(f"images: Fashion-MNIST is needed at --size {args.size} ({how}); "
                     f"install Debian's {datasets.FASHION_PACKAGE}")
    pool_im, y, test_im, yt, source = raw_images(cfg)
    budgets = list(range(cfg["batch"], cfg["budget"] + 1, cfg["batch"]))
    if budgets[-1] != cfg["budget"]:
        budgets.append(cfg["budget"])
    tmp = None
    if args.work:
        work = Path(args.work)
    elif args.size == "smoke" and not args.resume:
        tmp = tempfile.TemporaryDirectory(prefix="longtail-images-bench-")
        work = Path(tmp.name)
    else:
        work = RESULTS / ".cache" / f"images-{args.size}"
    runs: dict[str, dict[int, dict]] = {m: {} for m in chosen}
    params = {**cfg, "methods": chosen, "threads": 1,
              "path": "product (a fresh Project per command)",
              "encoders": {"cnn": "pixels-raw (28x28 grey in [0, 1])",
                           "linear": "pixels (PCA 64 of 28x28 grey)"},
              "accuracy": "the project's latest model on the test images",
              "pseudo": "auto-cnn+pseudo: pseudo_labels propagation, ratio 2, weight 1 (the "
                        "rule bench/pseudo_labels.py chose on digits for the linear head, "
                        "and bench/_pseudo_cnn.py on a Fashion-MNIST validation split for "
                        "the CNN: bench/results/pseudo_cnn.json)",
              "reductions": reductions, "load_at_start": os.getloadavg()[0]}

    def write(transfer: list[dict], seconds: dict) -> Path:
        missing = [f"{m} seed {s}" for m in chosen for s in cfg["seeds"] if s not in runs[m]]
        result = header("images", source, {**params, "load_at_end": os.getloadavg()[0]},
                        started_at=started)
        result.update({"budgets": budgets, "methods": summarise(
            {m: r for m, r in runs.items() if r}), "transfer": transfer,
            "ingest_seconds": seconds.get("ingest"), "embed_seconds": {
                k: v for k, v in seconds.items() if k.startswith("embed")},
            "not_measured": missing})
        return write_result(result, args.out)

    try:
        with threadpool_limits(1):
            stamp = {k: cfg[k] for k in ("pool", "test", "batch", "budget", "cnn")} | {
                "source": source}
            base, ids_y, seconds = make_base(work, pool_im, y, stamp, args.resume)
            tests = {enc: test_vectors(base, test_im, enc) for enc in ("pixels", "pixels-raw")}
            for seed in cfg["seeds"]:
                for name in chosen:
                    if args.no_run:
                        saved = work / f"run-{name.split(':')[1]}-{seed}.json"
                        curve = json.loads(saved.read_text()) if saved.exists() else {}
                        if curve.get("done"):
                            runs[name][seed] = curve
                        continue
                    runs[name][seed] = run_method(name, seed, base, work, ids_y, tests, yt,
                                                  cfg, args.resume)
                    write([], seconds)
            write(transfer_table(runs, base, ids_y, tests, yt, cfg, work), seconds)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
