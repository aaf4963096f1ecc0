"""Benchmark `stream`: a pool that grows while the loop runs.

A synthetic pool of unit vectors (clusters with Zipf sizes, class = cluster mod C)
arrives as `steps` ingests of `rows` rows. After each: `labels` oracle labels of the
open round's batch imported (the rest of the batch released), a `train`, and one
`query` of `batch` samples through the CLI (`longtail query --json`, a subprocess, so
its wall time includes the command's start). Per step: ingest, train, query and
index-update seconds (the strategies' index work inside the query, from its log: part
of `query_seconds`, which `query_seconds_without_index` leaves out), whether the
indexes were rebuilt (the pool check's verdict or an index built again, with its
reason: no saved index, drift or growth), each index's drift measure, the query's CPU
seconds and the machine's load average (the timings are wall clock on a shared
machine; the CPU seconds are not inflated by other processes).

Targets (full size, 10 x 100k x 384, batch 10k): step 1 builds the indexes; the index
update at step 10 costs <= 1.5x that at step 2; no rebuild in steps 2-10 unless the
log says why; the query at step 10 <= 10 s wall.

    python bench/stream.py --size smoke|medium|full [--out PATH] [--strategy auto]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, now_iso, peak_rss_bytes, write_result  # noqa: E402

DIM = 384
CLUSTERS = 200
CLASSES = 20
SIZES = {"smoke": {"steps": 3, "rows": 3_000, "labels": 200, "batch": 300},
         # 10 steps at a tenth of the full size: the same growth pattern, hours sooner
         "medium": {"steps": 10, "rows": 10_000, "labels": 500, "batch": 1_000},
         "full": {"steps": 10, "rows": 100_000, "labels": 1_000, "batch": 10_000}}


def make_step(path: Path, start: int, n: int, centers: np.ndarray, weights: np.ndarray,
              rng: np.random.Generator, chunk: int = 50_000) -> None:
    """Rows [start, start+n) as Parquet: id, text, truth, vector (384 float32)."""
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("truth", pa.string()),
                        ("vector", pa.list_(pa.float32(), DIM))])
    with pq.ParquetWriter(path, schema) as w:
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            c = rng.choice(len(centers), size=m, p=weights)
            vec = (centers[c] + 0.35 * rng.standard_normal((m, DIM))).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            ids = [f"r{start + s + i:08d}" for i in range(m)]
            w.write_table(pa.table({
                "id": ids, "text": [f"sample {i}" for i in ids],
                "truth": [f"c{k % CLASSES}" for k in c],
                "vector": pa.FixedSizeListArray.from_arrays(vec.ravel(), DIM)}, schema=schema))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cli_query(project: Path, k: int, strategy: str) -> tuple[float, float, dict]:
    """`longtail query` as a user runs it: (wall seconds, CPU seconds of the command,
    its JSON result). On a shared machine the wall time waits for other processes; the
    CPU time does not (a bound on the wall time of the same work on an idle machine,
    I/O waits aside)."""
    import longtail

    env = {**os.environ, "PYTHONPATH": str(Path(longtail.__file__).resolve().parents[1]),
           "HF_HUB_OFFLINE": "1"}
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "longtail.cli", "query", "-n", str(k),
                        "--strategy", strategy, "-p", str(project), "--json"],
                       env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    if r.returncode != 0:
        raise RuntimeError(f"query failed: {r.stderr[-2000:]}")
    return seconds, cpu, json.loads(r.stdout)


def drift_figures(records: dict) -> dict:
    """Per index: the share of rows added since its build that lie beyond the build's
    95th-percentile distance, and whether that counted as drift."""
    return {n: {"share": r["drift"]["share"], "drifted": r["drift"]["drifted"]}
            for n, r in records.items() if r.get("drift")}


def index_figures(log: dict) -> tuple[float, bool, str, dict]:
    """(seconds spent building or updating indexes, rebuilt?, pool check's reason, the
    per-index records) from a round's log."""
    sel = log.get("selection") or {}
    records = sel.get("indexes") or {}
    seconds = sum(r.get("seconds", 0.0) for r in records.values()
                  if r.get("action") in ("built", "updated"))
    check = sel.get("pool_check") or {}
    # A rebuild is the pool check's verdict or any index built from scratch again (a
    # drift threshold: the log gives the reason either way).
    built = [f"{n}: {r.get('reason', '')}" for n, r in records.items() if r.get("action") == "built"]
    rebuilt = check.get("verdict") == "rebuild" or bool(built)
    return float(seconds), rebuilt, "; ".join([check.get("reason", ""), *built]), records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out")
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    head = header("stream", f"synthetic {size['steps']} x {size['rows']} x {DIM}, "
                  f"{CLUSTERS} Zipf clusters, {CLASSES} classes",
                  {**size, "strategy": args.strategy, "seed": args.seed}, now_iso())
    from longtail.engine.labels import LabelEvent
    from longtail.project import Project

    rng = np.random.default_rng(args.seed)
    centers = rng.standard_normal((CLUSTERS, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, CLUSTERS + 1)
    weights /= weights.sum()
    runs = []
    with tempfile.TemporaryDirectory(prefix="longtail-stream-") as tmp:
        root = Path(tmp)
        p = Project.init(root / "proj", eval_rate=0.01, eval_cap=2000)
        truth: dict[str, str] = {}
        last_ids: list[str] = []
        for step in range(1, size["steps"] + 1):
            f = root / f"step{step}.parquet"
            make_step(f, (step - 1) * size["rows"], size["rows"], centers, weights, rng)
            t0 = time.perf_counter()
            rep = p.ingest(f, id="id", text="text", vector="vector", metadata=["truth"])
            ingest_s = time.perf_counter() - t0
            f.unlink()
            # the oracle answers the first `labels` samples of the open batch (or, before
            # any batch, random candidates); the rest of the batch goes back to the pool
            ids = last_ids[: size["labels"]] if last_ids else [
                f"r{r:08d}" for r in rng.choice(p.candidates(), size["labels"], replace=False)]
            with p.store.reading() as uow:
                rows = uow.samples.ids_to_rows(ids)
                for chunk in uow.samples.iter(np.array(sorted(rows.values()), dtype=np.int64)):
                    truth.update({ext: meta["truth"] for _, ext, _, meta in chunk})
            t0 = time.perf_counter()
            p.record_labels([LabelEvent(id=i, label=truth[i]) for i in ids], source="oracle")
            label_s = time.perf_counter() - t0
            for r in p.rounds():
                if r.status == "open":
                    p.cancel_round(r.id)
            t0 = time.perf_counter()
            p.train()
            train_s = time.perf_counter() - t0
            query_s, query_cpu, q = cli_query(p.path, size["batch"], args.strategy)
            last_ids = q["ids"]
            idx_s, rebuilt, reason, records = index_figures(q["log"])
            with p.store.reading() as uow:
                pool_size = uow.samples.count()
            runs.append({"step": step, "pool": pool_size, "new_rows": rep.new,
                         "ingest_seconds": round(ingest_s, 3), "label_seconds": round(label_s, 3),
                         "train_seconds": round(train_s, 3), "query_seconds": round(query_s, 3),
                         "index_update_seconds": round(idx_s, 3),
                         "query_seconds_without_index": round(query_s - idx_s, 3),
                         "query_cpu_seconds": round(query_cpu, 3),
                         "rebuilt": rebuilt, "pool_check": reason,
                         "drift": drift_figures(records), "indexes": records,
                         "arm": (q["log"].get("selection") or {}).get("arm"),
                         "load_average": [round(x, 2) for x in os.getloadavg()]})
            write_result({**head, "runs": runs, "partial": True}, args.out)  # kept if killed
            print(f"step {step}: pool {runs[-1]['pool']}, ingest {ingest_s:.2f} s, train "
                  f"{train_s:.2f} s, query {query_s:.2f} s (indexes {idx_s:.2f} s, "
                  f"{'rebuilt' if rebuilt else 'updated'}: {reason})", flush=True)
        p.close()
    later = [r for r in runs if r["step"] >= 2]
    result = {**head, "runs": runs, "peak_rss_bytes": peak_rss_bytes(),
              "index_update_ratio_last_to_step2": (
                  round(later[-1]["index_update_seconds"] / later[0]["index_update_seconds"], 3)
                  if len(later) >= 2 and later[0]["index_update_seconds"] > 0 else None),
              "rebuilds_after_step1": sum(r["rebuilt"] for r in later),
              "last_query_seconds": runs[-1]["query_seconds"],
              "last_query_cpu_seconds": runs[-1]["query_cpu_seconds"]}
    path = write_result(result, args.out)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
