"""novelty (issue 30): does the novelty signal single out a class nobody labeled?

For each of 10 classes (drawn with ``numpy.random.default_rng(9)``), in turn: a project
(fresh ``Project`` per command, default settings) ingests a pool without that class,
gets ``LABELS`` random labels of it and trains; a standing trigger ``novelty > 0.95``
is saved; a later ingest brings ``LATER`` new rows of the other classes and every row
of the held-out class. Measured: the AUROC of the project's novelty score (the kNN
distance to the labeled set, as a percentile of the labeled rows' own) for the held-out
class's rows against the ingest's other rows, and of the model's energy and
1 - max probability for comparison; how many rows the trigger queued and how many of
the next batch (``BATCH`` rows, ``longtail query`` default strategy) are of that class.

    python bench/novelty.py --size smoke|full [--datasets banking77,fashion_mnist]

The score was chosen on four classes of Banking77 and Fashion-MNIST; ``--datasets digits``
checks it on a set nobody tuned on (scikit-learn's digits, 64 raw pixel features: its
~1,130 rows of the other classes are split 4:1 between the first ingest, a quarter of
it labeled, and the later one).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from _common import header, write_result  # noqa: E402

SIZES = {"smoke": {"first": 600, "labels": 200, "later": 200, "classes": 2, "batch": 50},
         "full": {"first": 4000, "labels": 1000, "later": 1000, "classes": 10, "batch": 100}}
SEED = 9
TRIGGER = "novelty > 0.95"


def _write(path: Path, ids: np.ndarray, X: np.ndarray) -> Path:
    pq.write_table(pa.table({"id": ids, "vec": pa.FixedSizeListArray.from_arrays(
        np.ascontiguousarray(X, np.float32).ravel(), X.shape[1])}), path)
    return path


def run_class(held: int, X: np.ndarray, y: np.ndarray, names: np.ndarray, cfg: dict,
              workdir: Path) -> dict:
    from longtail.discovery.signals import auroc
    from longtail.engine.discovery import pool_signals
    from longtail.project import Project

    rng = np.random.default_rng([SEED, held])
    others = rng.permutation(np.flatnonzero(y != held))
    # A small set (digits: ~1,130 rows of the other classes) keeps the proportions of the
    # full size: 4 parts first ingest (a quarter of them labeled), 1 part later.
    n_first = min(cfg["first"], int(0.8 * len(others)))
    n_later = min(cfg["later"], len(others) - n_first)
    n_labels = min(cfg["labels"], n_first // 4)
    first = others[:n_first]
    later = np.concatenate([others[n_first: n_first + n_later], np.flatnonzero(y == held)])
    ids = np.array([f"r{i:06d}" for i in range(len(X))])
    root = workdir / f"proj-{held}"
    Project.init(root, seed=SEED).close()
    with Project(root) as p:
        p.ingest(_write(workdir / f"a-{held}.parquet", ids[first], X[first]), vector="vec")
    with Project(root) as p:
        with p.store.reading() as uow:
            pool = set(uow.samples.rows_by_split("pool").tolist())
    lab = rng.choice([r for r in range(len(first)) if r in pool], n_labels, replace=False)
    with open(workdir / f"labels-{held}.csv", "w") as f:
        f.write("id,label\n" + "".join(f"{ids[first[r]]},{names[y[first[r]]]}\n" for r in lab))
    with Project(root) as p:
        p.import_labels(workdir / f"labels-{held}.csv")
    with Project(root) as p:
        p.train()
    with Project(root) as p:
        p.add_trigger("novel", TRIGGER)
    t0 = time.perf_counter()
    with Project(root) as p:
        report = p.ingest(_write(workdir / f"b-{held}.parquet", ids[later], X[later]),
                          vector="vec")
    ingest_seconds = time.perf_counter() - t0
    with Project(root) as p:
        sig = pool_signals(p.store, p._settings())
        queued = p.queue()
    # the later ingest's rows are rows len(first).. in the project
    new = sig.rows >= len(first)
    truth = y[later[sig.rows[new] - len(first)]] == held
    out = {"class": str(names[held]), "rows": int(truth.sum()), "others": int((~truth).sum()),
           "first_ingest": int(n_first), "labels": int(n_labels),
           "auroc": auroc(sig.novelty[new], truth),
           "auroc_energy": auroc(sig.energy[new], truth),
           "auroc_least_confidence": auroc(1.0 - sig.confidence[new], truth),
           "ingest_seconds": round(ingest_seconds, 3),
           "drift": report.drift}
    q_rows = np.array([q["row"] for q in queued if q["source"] == "trigger:novel"], np.int64)
    q_new = q_rows[q_rows >= len(first)]
    out["trigger_queued"] = int(len(q_rows))
    out["trigger_queued_of_class"] = int((y[later[q_new - len(first)]] == held).sum())
    with Project(root) as p:
        batch = p.query(cfg["batch"])
    rows = np.array(batch.rows, np.int64)
    rows = rows[rows >= len(first)]
    out["first_batch"] = len(batch.rows)
    out["first_batch_of_class"] = int((y[later[rows - len(first)]] == held).sum())
    out["first_batch_queued_kind"] = batch.kinds.count("queued")
    return out


def run_dataset(name: str, size: str, cfg: dict) -> dict:
    data, source = datasets.load(name, size)
    if data is None:
        return {"skipped": source}
    X, y, _, _, names = data
    present = np.unique(y)
    order = np.random.default_rng(SEED).permutation(present)
    held = order[: cfg["classes"]]
    per = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in held.tolist():
            r = run_class(int(c), X, y, names, cfg, Path(tmp))
            print(f"[novelty] {name} {r['class']}: AUROC {r['auroc']:.3f} (energy "
                  f"{r['auroc_energy']:.3f}); trigger queued {r['trigger_queued_of_class']}"
                  f"/{r['rows']}; first batch {r['first_batch_of_class']}", flush=True)
            per.append(r)
    a = np.array([r["auroc"] for r in per])
    return {"source": source, "held_out": [r["class"] for r in per],
            "auroc": float(a.mean()), "auroc_min": float(a.min()),
            "auroc_energy_mean": float(np.mean([r["auroc_energy"] for r in per])),
            "auroc_least_confidence_mean": float(np.mean([r["auroc_least_confidence"]
                                                         for r in per])),
            "first_batch_of_class_mean": float(np.mean([r["first_batch_of_class"] for r in per])),
            "trigger_queued_of_class_share": float(
                np.sum([r["trigger_queued_of_class"] for r in per])
                / max(1, np.sum([r["rows"] for r in per]))),
            "per_class": per}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--datasets", default="banking77,fashion_mnist")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    names = [n for n in args.datasets.split(",") if n]
    result = header("novelty", ",".join(names), {"size": args.size, **cfg, "seed": SEED,
                                                  "trigger": TRIGGER},
                    started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    result["path"] = "product: a fresh Project per command, default settings"
    result["targets"] = "auroc mean >= 0.85 and min >= 0.70 on banking77 and fashion_mnist"
    result["datasets"] = {n: run_dataset(n, args.size, cfg) for n in names}
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
