"""float16 against float32 vectors on the CLI path (issue 31): does `init --dtype float16`
select the same rows, at what cost?

Synthetic data of bench/selection_scale.py (Zipf-sized clusters, unit vectors, 384-d,
the same seed), `--pool` rows. For each dtype, a project made by selection_scale's
`make_project` (precomputed vectors ingested, 400 labels, a trained model; `init
--dtype`), then two `longtail query --budget BUDGET --json` processes: `--strategy
margin`, then `--strategy auto`. Per query: wall seconds, the process's peak RSS
(`ru_maxrss` of the child: mapped vector pages it touched included), and the
one-pass floor of the same project (one streaming pass over its stored vectors, a
matrix-vector product per float32 block, mean of 3 after a warm-up). Then how many of
float32's selected rows float16 also selected, per strategy.
Writes bench/results/dtype_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, write_result  # noqa: E402
from selection_scale import generate, longtail_command, make_project  # noqa: E402

SIZES = {"smoke": (20_000, 1_000), "full": (1_000_000, 10_000)}


# Measures its child's peak RSS: a process forked from this (large) one would report
# this one's resident size as its own high-water mark, whatever it used itself.
_WRAP = ("import json, resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
         "open(sys.argv[1], 'w').write(json.dumps([rc, resource.getrusage("
         "resource.RUSAGE_CHILDREN).ru_maxrss])); sys.exit(rc)")


def query(project: Path, budget: int, strategy: str) -> dict:
    """One `longtail query` process: wall seconds, its peak RSS, the selected rows."""
    cmd = longtail_command() + ["query", "--budget", str(budget), "--strategy", strategy,
                                "--project", str(project), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    usage = project.parent / "usage.json"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _WRAP, str(usage), *cmd], env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd}: rc {p.returncode}: {p.stderr[-500:]}")
    _, maxrss_kib = json.loads(usage.read_text())
    got = json.loads(p.stdout)
    rows = [r for r, k in zip(got["rows"], got["kinds"], strict=True) if k == "selected"]
    return {"wall_seconds": wall, "peak_rss_bytes": maxrss_kib * 1024,
            "round_id": got["round_id"], "selected": rows}


def floor(project: Path, repeats: int = 3) -> float:
    """One streaming pass over the project's stored vectors (float32 blocks) times a
    random weight vector: mean seconds of `repeats` passes after one warm-up."""
    from longtail.store import Store

    store = Store.open(project)
    try:
        with store.reading() as uow:
            vs = uow.vector_set("precomputed")
        w = np.random.default_rng(0).standard_normal(vs.dim).astype(np.float32)
        times = []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            for _, block in vs.iter_chunks():
                block @ w
            if i:
                times.append(time.perf_counter() - t0)
    finally:
        store.close()
    return float(np.mean(times))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--pool", type=int, default=None, help="rows (default: by --size)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    pool, budget = SIZES[args.size]
    pool = args.pool or pool
    records, picks = [], {}
    with tempfile.TemporaryDirectory(prefix="longtail-dtype-") as tmp:
        tmp = Path(tmp)
        vec_path = tmp / "vectors.npy"
        generate(vec_path, pool)
        for dtype in ("float32", "float16"):
            project = tmp / dtype / "project"
            project.parent.mkdir()
            setup = make_project(vec_path, pool, project, dtype=dtype)
            vector_bytes = sum(p.stat().st_size for p in (project / "vectors").rglob("*.npy"))
            for strategy in ("margin", "auto"):
                q = query(project, budget, strategy)
                picks[(dtype, strategy)] = q.pop("selected")
                f = floor(project)
                rec = {"path": "cli", "pool": pool, "batch": budget, "dtype": dtype,
                       "strategy": strategy, **q, "floor_seconds": f,
                       "wall_over_floor": q["wall_seconds"] / f, "vector_bytes": vector_bytes,
                       "setup": setup}
                records.append(rec)
                print(json.dumps({k: v for k, v in rec.items() if k != "setup"}), flush=True)
            shutil.rmtree(project.parent)
    agreement = {}
    for strategy in ("margin", "auto"):
        a, b = set(picks[("float32", strategy)]), set(picks[("float16", strategy)])
        agreement[strategy] = len(a & b) / max(len(a), 1)
    result = header("dtype_agreement", "synthetic: selection_scale's Zipf-sized cluster "
                    "mixture, unit vectors, 384-d", {"pool": pool, "budget": budget,
                                                     "size": args.size, "labels": 400})
    result.update({"records": records, "same_rows_share": agreement,
                   "target_same_rows_share": 0.9})
    path = write_result(result, args.out)
    print(f"dtype_agreement: float16 selects {agreement} of float32's rows -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
