"""search (issue 30): similarity search recall and latency at 100k and 1M rows.

A synthetic pool like sentence embeddings (384-d, unit norm, 2,000 clusters on a 32-d
latent space mapped linearly, plus noise) is ingested into a project; queries are new
draws from the same mixture (not pool rows). For each pool size: recall@10 of
``Project.search`` (the IVF index beyond 50,000 rows) against ``exact=True``, the
in-process seconds per query (index loaded, warm), the first search's index build, and
the wall seconds of a ``longtail search --vector q.npy`` command (a process per query);
CPU seconds beside wall seconds, and the load average: on a shared machine the wall
time is mostly waiting for a core.

    python bench/search.py --size smoke|medium|full [--out PATH]

smoke: 60,000 rows; medium: 200,000; full: 100,000 and 1,000,000 (the issue's sizes).
Per query: wall and CPU seconds and page faults (major faults are disk reads of the
index's packed copy: wall time shows them, CPU time does not).
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

from _common import header, write_result  # noqa: E402

SIZES = {"smoke": {"pools": [60_000], "queries": 10, "cli_runs": 1},
         "medium": {"pools": [200_000], "queries": 30, "cli_runs": 3},
         "full": {"pools": [100_000, 1_000_000], "queries": 30, "cli_runs": 5}}
D, LATENT, CLUSTERS = 384, 32, 2_000
CHUNK = 100_000


class Mixture:
    """A seeded mixture on a LATENT-d space mapped to D dims (what embeddings look like:
    low intrinsic dimension), unit norm."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(CLUSTERS, LATENT)) * 1.5
        self.A = rng.normal(size=(LATENT, D)) / np.sqrt(LATENT)
        self.weights = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.8  # long-tailed clusters
        self.weights /= self.weights.sum()

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        c = rng.choice(CLUSTERS, n, p=self.weights)
        z = self.centres[c] + rng.normal(size=(n, LATENT))
        X = z @ self.A + 0.3 * rng.normal(size=(n, D))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return X.astype(np.float32)


def write_pool(path: Path, n: int, mix: Mixture) -> None:
    rng = np.random.default_rng(1)
    writer = None
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        X = mix.draw(m, rng)
        # a text per row: a hit shows its text (read from the column files), as a
        # user's search of a text pool does
        t = pa.table({"id": [f"p{i}" for i in range(start, start + m)],
                      "text": [f"synthetic sample {i}" for i in range(start, start + m)],
                      "vec": pa.FixedSizeListArray.from_arrays(X.ravel(), D)})
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    writer.close()


def run_pool(n: int, cfg: dict, workdir: Path, mix: Mixture) -> dict:
    from longtail.discovery.search import recall_at_k
    from longtail.project import Project

    pool = workdir / f"pool-{n}.parquet"
    write_pool(pool, n, mix)
    root = workdir / f"proj-{n}"
    Project.init(root, eval_rate=0.0, near_duplicate_threshold=None).close()
    t0 = time.perf_counter()
    with Project(root) as p:
        p.ingest(pool, vector="vec", text="text")
    ingest_s = time.perf_counter() - t0
    pool.unlink()
    Q = mix.draw(cfg["queries"], np.random.default_rng(2))
    from longtail.discovery.search import exact_search

    with Project(root) as p:
        t0 = time.perf_counter()
        first = p.search(vector=Q[0], k=10)
        build_s = time.perf_counter() - t0
        approx, per_query, per_query_cpu = [], [], []
        # Page faults per query: major ones are reads from disk (the packed copy not in
        # the page cache), which wall time shows and CPU time does not.
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        for q in Q:
            t0, c0 = time.perf_counter(), time.process_time()
            r = p.search(vector=q, k=10)
            per_query.append(time.perf_counter() - t0)
            per_query_cpu.append(time.process_time() - c0)
            approx.append([h["row"] for h in r["hits"]])
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        # exact: every query in one streamed pass (what `search --exact` does per query)
        exact, _ = exact_search(p.vectors(), Q, 10)
    recall = recall_at_k(np.array(approx), exact)

    qfile = workdir / "q.npy"
    cli, cli_cpu = [], []
    # As an installed package runs: from bytecode, which an untimed first command writes
    # (PYTHONDONTWRITEBYTECODE, a tidy checkout's setting, would compile every module
    # each time).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for i in range(-1, cfg["cli_runs"]):
        np.save(qfile, Q[max(i, 0)])
        t0 = time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-m", "longtail.cli", "search", "-p", str(root),
                              "--vector", str(qfile), "-k", "10", "--json"],
                             capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-500:])
        hits = json.loads(out.stdout)["hits"]
        assert len(hits) == 10 and all(h["text"] for h in hits)  # texts shown
        if i >= 0:
            cli.append(wall)
            cli_cpu.append(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)
    return {"pool": n, "recall_at_10": recall, "seconds": float(np.mean(per_query)),
            "seconds_median": float(np.median(per_query)),
            "seconds_p95": float(np.quantile(per_query, 0.95)),
            "cpu_seconds": float(np.mean(per_query_cpu)),
            "cpu_seconds_median": float(np.median(per_query_cpu)),
            "major_faults_per_query": (ru1.ru_majflt - ru0.ru_majflt) / len(Q),
            "minor_faults_per_query": (ru1.ru_minflt - ru0.ru_minflt) / len(Q),
            "cli_seconds": float(np.mean(cli)), "cli_seconds_each": [round(x, 3) for x in cli],
            "cli_cpu_seconds": float(np.mean(cli_cpu)),
            "load_average": list(os.getloadavg()),
            "index": first["index"], "first_search_seconds": round(build_s, 3),
            "ingest_seconds": round(ingest_s, 3), "queries": int(len(Q))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    result = header("search", f"synthetic {D}-d mixture ({CLUSTERS} clusters, {LATENT}-d latent)",
                    {"size": args.size, **cfg, "load_average_start": list(os.getloadavg()),
                     "cpu_count": os.cpu_count()}, started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    result["path"] = ("in-process: one Project, Project.search per query; CLI: one "
                      "`longtail search --vector q.npy` process per query")
    result["targets"] = "recall_at_10 >= 0.95; <= 0.05 s per query in-process; <= 1.5 s per command"
    mix = Mixture()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in cfg["pools"]:
            r = run_pool(n, cfg, Path(tmp), mix)
            print(f"[search] {n:,}: recall@10 {r['recall_at_10']:.3f}, {1000 * r['seconds']:.1f} "
                  f"ms/query, CLI {r['cli_seconds']:.2f} s, first search "
                  f"{r['first_search_seconds']:.1f} s", flush=True)
            runs.append(r)
    result["runs"] = runs
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
