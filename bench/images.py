"""Issue 32's image benchmark: an image folder through the product path, a linear head
and the torch MLP, and how far a selection carries to the other model.

Fashion-MNIST from Debian's `dataset-fashion-mnist`: a seeded pool of the 60,000
training images written as PNG files in class-less folders, the 10,000 test images.
Each method runs through a fresh `Project` per command, as a user would: `ingest DIR`
and `embed --encoder pixels` (once, copied per method), then `query` (default settings:
eval labels by need) -> an oracle's `import_labels` -> `train`, from 0 labels in batches
up to the budget; every paid label counts, eval labels included. Accuracy is the
method's learner trained on all labels, on the test images through the project's own
pixel PCA. The transfer table trains the other learner on the set each selection built
and on an equal-size random set, with a paired bootstrap interval over the test images.

    python bench/images.py --size smoke|full [--out PATH]

Not measured here (not built): a CNN on pixels, pseudo-labels; see the README.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, write_result  # noqa: E402

SIZES = {
    "smoke": {"pool": 400, "test": 300, "batch": 50, "budget": 150, "seeds": [0],
              "mlp": {"hidden": 32, "epochs": 20}},
    "full": {"pool": 20_000, "test": 10_000, "batch": 250, "budget": 3000, "seeds": [0],
             "mlp": {}},
}
# method -> (strategy, learner)
METHODS = {"longtail:random-lr": ("random", "linear"), "longtail:auto-lr": ("auto", "linear"),
           "longtail:random-mlp": ("random", "mlp"), "longtail:auto-mlp": ("auto", "mlp"),
           "longtail:bald-mlp": ("bald", "mlp")}


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
    if kind == "linear":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=10, max_iter=300)
    from longtail.learners.torch_mlp import TorchMLP

    return TorchMLP(seed=seed, **cfg["mlp"])


def fit_acc(kind: str, cfg: dict, X, y, Xt, yt, seed: int) -> np.ndarray:
    """Per-test-image correctness (0/1) of `kind` trained on (X, y)."""
    if len(np.unique(y)) < 2:
        return (yt == y[0]).astype(float)
    return (learner(kind, cfg, seed).fit(X, y).predict(Xt) == yt).astype(float)


def run_method(name: str, base: Path, work: Path, ids_y: dict, Xt: np.ndarray, yt: np.ndarray,
               cfg: dict, seed: int) -> dict:
    from longtail.project import Project

    strategy, kind = METHODS[name]
    proj = work / f"proj-{name.split(':')[1]}-{seed}"
    shutil.copytree(base, proj)
    with Project(proj) as p, p.store.unit_of_work() as uow:
        # As `longtail settings learner mlp` would: query and train then use it.
        uow.settings.set("seed", seed)
        uow.settings.set("learner", kind)
        uow.settings.set("learner_params", cfg["mlp"] if kind == "mlp" else {})
    curve = {"paid": [], "accuracy": [], "eval_labels": [], "query_seconds": [],
             "train_seconds": []}
    paid = n_eval = 0
    while paid < cfg["budget"]:
        k = min(cfg["batch"], cfg["budget"] - paid)
        t0 = time.perf_counter()
        with Project(proj) as p:
            q = p.query(k, strategy=strategy)
        curve["query_seconds"].append(time.perf_counter() - t0)
        answers = work / "answers.csv"
        answers.write_text("id,label\n" + "".join(f"{i},{ids_y[i]}\n" for i in q.ids))
        t0 = time.perf_counter()
        with Project(proj) as p:
            p.import_labels(answers)
            p.train()
        curve["train_seconds"].append(time.perf_counter() - t0)
        paid += len(q.rows)
        n_eval += q.kinds.count("eval")
        with Project(proj) as p, p.store.reading() as uow:
            rows = np.array(sorted(uow.labels.current()), dtype=np.int64)
            X = uow.vector_set("pixels").read(rows)
        y = np.array([ids_y[f"img{r:06d}.png"] for r in rows])
        curve["paid"].append(paid)
        curve["eval_labels"].append(n_eval)
        curve["accuracy"].append(float(fit_acc(kind, cfg, X, y, Xt, yt, seed).mean()))
    curve["labeled_rows"] = rows.tolist()
    return curve


def test_vectors(base: Path, test_images: np.ndarray) -> np.ndarray:
    """The test images in the project's pixel space: its stored PCA applied to pixels/255."""
    from longtail.encoders import get_encoder
    from longtail.project import Project

    with Project(base) as p, p.store.reading() as uow:
        info = uow.vectors.info("pixels")
    enc = get_encoder("pixels", **info["config"])
    flat = test_images.reshape(len(test_images), -1).astype(np.float32) / 255.0
    return enc.project(flat)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated subset of " + ", ".join(METHODS))
    args = ap.parse_args(argv)
    chosen = [m for m in args.methods.split(",") if m]
    unknown = set(chosen) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods: {', '.join(sorted(unknown))}")
    cfg = SIZES[args.size]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    pool_im, y, test_im, yt, source = raw_images(cfg)
    from threadpoolctl import threadpool_limits

    from longtail.project import Project

    budgets = list(range(cfg["batch"], cfg["budget"] + 1, cfg["batch"]))
    methods: dict[str, dict] = {}
    transfer = []
    with tempfile.TemporaryDirectory(prefix="longtail-images-bench-") as tmp, \
            threadpool_limits(1):
        tmp = Path(tmp)
        names = write_folder(pool_im, tmp / "images")
        ids_y = dict(zip(names, y.tolist(), strict=True))
        base = tmp / "base"
        t0 = time.perf_counter()
        with Project.init(base) as p:
            p.ingest(tmp / "images")
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with Project(base) as p:
            p.embed("pixels")
        embed_s = time.perf_counter() - t0
        Xt = test_vectors(base, test_im)
        runs: dict[str, list[dict]] = {}
        for name in chosen:
            runs[name] = [run_method(name, base, tmp, ids_y, Xt, yt, cfg, s) for s in cfg["seeds"]]
            acc = np.array([r["accuracy"] for r in runs[name]])
            methods[name] = {"accuracy_mean": acc.mean(0).tolist(),
                             "accuracy_sd": acc.std(0).tolist(),
                             "eval_labels_mean": np.mean([r["eval_labels"] for r in runs[name]],
                                                         0).tolist(),
                             "query_seconds_mean": float(np.mean(
                                 [np.mean(r["query_seconds"]) for r in runs[name]])),
                             "seeds": cfg["seeds"],
                             "runs": [{k: v for k, v in r.items() if k != "labeled_rows"}
                                      for r in runs[name]]}
        # Does a selection carry over? The other learner on each auto selection against an
        # equal-size random set (paired bootstrap over test images for the interval).
        with Project(base) as p, p.store.reading() as uow:
            vs = uow.vector_set("pixels")
            X_all = vs.read(np.arange(vs.n_rows))
        y_all = np.array([ids_y[f"img{r:06d}.png"] for r in range(len(X_all))])
        rng = np.random.default_rng(0)
        for sel, other in (("longtail:auto-mlp", "linear"), ("longtail:auto-lr", "mlp")):
            if sel not in runs:
                continue
            gains = []
            for r in runs[sel]:
                rows = np.asarray(r["labeled_rows"], dtype=np.int64)
                rand = np.sort(rng.choice(len(X_all), len(rows), replace=False))
                a = fit_acc(other, cfg, X_all[rows], y_all[rows], Xt, yt, 0)
                b = fit_acc(other, cfg, X_all[rand], y_all[rand], Xt, yt, 0)
                gains.append(a - b)
            diff = np.mean(gains, axis=0)
            boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(1000)]
            transfer.append({"selected_with": METHODS[sel][1], "trained_with": other,
                             "labels": len(runs[sel][0]["labeled_rows"]),
                             "gain_mean": float(diff.mean()),
                             "gain_lo": float(np.quantile(boot, 0.025)),
                             "gain_hi": float(np.quantile(boot, 0.975))})
    result = header("images", source, {**cfg, "path": "product (a fresh Project per command)",
                                       "encoder": "pixels (PCA 64 of 28x28 grey)"},
                    started_at=started)
    result.update({"budgets": budgets, "methods": methods, "transfer": transfer,
                   "ingest_seconds": ingest_s, "embed_seconds": embed_s,
                   "not_measured": [m for m in METHODS if m not in chosen] + [
                       "longtail:auto-cnn", "longtail:random-cnn", "longtail:bald-cnn",
                       "longtail:auto-cnn+pseudo"]})
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
