"""selection_scale at 10M rows, float16, on the CLI path (issue 31, BENCHMARKS.md §2, §4).

selection_scale's synthetic pool (Zipf-sized clusters, unit vectors, 384-d, its seed),
`--pool` rows (default 10M) written straight to a Parquet file (id, float32 vector;
no .npy copy), then what a user runs, each a `longtail` process:

  longtail init P --dtype float16
  longtail ingest pool.parquet -p P --vector vector     (the Parquet file deleted after)
  longtail import-labels labels.csv -p P                (400 labels over the 20 classes)
  longtail train -p P
  longtail query -p P --budget 10000 --strategy S --json   (twice per strategy)

The first query per project builds the indexes (the near-duplicate search the bulk
ingest deferred, and the pool clustering that cluster-level candidates go through);
the second is the round as it runs from then on. Per process: wall seconds, CPU
seconds (user + system, the process and its children), peak RSS and peak `RssAnon`
(anonymous resident memory: the mapped vector pages are the page cache's, not the
process's), sampled from /proc every 0.2 s. Beside them, `floor_seconds`: one streaming
pass over the stored vectors (float32 blocks times a vector), after one warm-up pass.
Disk: the Parquet file and the project, peak and after (`df` before and after).

Writes bench/results/scale_10m.json; the load at each step is in the records, since
the machine is shared. Disk: at 10M about 15 GB of Parquet plus a 8 GB project at the
peak (the script checks for 1.2x that free first and removes both after).

`--phase prepare --workdir D` runs the data steps only (make_file to train) and keeps
the project in D; `--phase query --workdir D` then runs the floor and the queries on it
and appends its records to the same `--out` (each record's `phase` indexes `phases`,
which hold the commit and load of that part), so the long data step can run apart from
the timed rounds (those under an exclusive machine).
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
from _common import RESULTS, git_commit, git_dirty, header, now_iso, write_result  # noqa: E402
from selection_scale import DIM, N_CLASSES, SEED, generated_chunks, longtail_command  # noqa: E402

BENCH = "scale_10m"
LABELS = 400
BUDGET = 10_000
TARGETS = {"round_wall_seconds_max": 60.0, "round_over_floor_max": 20.0,
           "rss_anon_bytes_max": 4 * 2**30, "first_index_seconds_max": 900.0}


def _status_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of a live process in KiB; (0, 0) once it is gone."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return rss, anon


def run(args: list[str], env: dict | None = None) -> dict:
    """One `longtail` process: wall, CPU, peak RSS and RssAnon (sampled), stdout."""
    cmd = longtail_command() + args
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or {**os.environ, "HF_HUB_OFFLINE": "1"})
    peak_rss = peak_anon = 0
    # Drain stdout on a thread so a long JSON answer never blocks the child.
    import threading

    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()))
               for s, b in ((p.stdout, out), (p.stderr, err))]
    for t in readers:
        t.start()
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        rss, anon = _status_kib(p.pid)
        peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    rec = {"command": " ".join(args[:1]), "wall_seconds": wall,
           "cpu_seconds": usage.ru_utime + usage.ru_stime,
           # sampled: a child forked from this process reports this one's resident size
           # as its own high-water mark (ru_maxrss), whatever it used itself
           "peak_rss_bytes": peak_rss * 1024,
           "rss_anon_peak_bytes": peak_anon * 1024, "rc": p.returncode,
           "load": [round(x, 2) for x in os.getloadavg()]}
    if p.returncode != 0:
        rec["error"] = ("".join(err) or "".join(out))[-1500:]
    rec["stdout"] = "".join(out)
    return rec


def make_file(path: Path, n: int) -> tuple[np.ndarray, float]:
    """The pool's first `n` rows as Parquet (id, vector); returns the labels, seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    labels = np.empty(n, np.int16)
    schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), DIM))])
    with pq.ParquetWriter(path, schema) as w:
        for start, v, y in generated_chunks(n, SEED):
            labels[start:start + len(v)] = y
            ids = pa.array([f"s{i:08d}" for i in range(start, start + len(v))])
            w.write_table(pa.table({"id": ids, "vector": pa.FixedSizeListArray.from_arrays(
                v.ravel(), DIM)}, schema=schema))
    return labels, time.perf_counter() - t0


def label_file(path: Path, labels: np.ndarray) -> int:
    """LABELS labels spread over the classes (seeded), as `id,label` CSV."""
    rng = np.random.default_rng(SEED)
    order = rng.permutation(min(len(labels), 2_000_000))  # a seeded prefix is plenty
    per = -(-LABELS // N_CLASSES)
    picked: list[int] = []
    for c in range(N_CLASSES):
        picked += order[labels[order] == c][:per].tolist()
    picked = picked[:LABELS]
    path.write_text("id,label\n" + "".join(f"s{r:08d},c{labels[r]}\n" for r in picked))
    return len(picked)


def floor_seconds(project: Path) -> float:
    """One streaming pass over the stored vectors times a vector, after a warm-up."""
    from longtail.store import Store

    store = Store.open(project)
    try:
        with store.reading() as uow:
            vs = uow.vector_set("precomputed")
        w = np.random.default_rng(0).standard_normal(vs.dim).astype(np.float32)
        for _ in range(2):
            t0 = time.perf_counter()
            for _, block in vs.iter_chunks():
                block @ w
        return time.perf_counter() - t0
    finally:
        store.close()


def _disk_free() -> int:
    return shutil.disk_usage(tempfile.gettempdir()).free


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _prepare(tmp: Path, n: int, record) -> bool:
    """Parquet file, init, ingest (file deleted after), labels, train. False on a failure."""
    pfile, project = tmp / "pool.parquet", tmp / "project"
    labels, secs = make_file(pfile, n)
    file_bytes = pfile.stat().st_size
    record({"step": "make_file", "rows": n, "seconds": secs, "file_bytes": file_bytes})
    r = run(["init", str(project), "--dtype", "float16"])
    assert r["rc"] == 0, r
    r = run(["ingest", str(pfile), "-p", str(project), "--id", "id", "--vector", "vector"])
    record({"step": "ingest", "path": "cli", "pool": n, "rows": n, "dtype": "float16",
            **r, "rows_per_s": n / r["wall_seconds"], "project_bytes": _du(project),
            "vector_bytes": _du(project / "vectors"),
            "peak_disk_bytes": file_bytes + _du(project)})
    if r["rc"] != 0:
        return False
    pfile.unlink()
    lab = tmp / "labels.csv"
    n_labels = label_file(lab, labels)
    del labels
    for cmd in (["import-labels", str(lab), "-p", str(project)],
                ["train", "-p", str(project)]):
        r = run(cmd)
        record({"step": cmd[0], "labels": n_labels, **r})
        if r["rc"] != 0:
            return False
    return True


def budget_for(n: int) -> int:
    """BUDGET, or a 50th of a pool under 1M (a smoke pool holds every strategy's rounds)."""
    return BUDGET if n >= 1_000_000 else max(100, n // 50)


def _queries(project: Path, n: int, strategies: list[str], record,
             include_duplicates: bool = False) -> bool:
    """The floor, then two `query` processes per strategy (`--include-duplicates`
    passed on when asked: no near-duplicate search). False on a failure."""
    budget = budget_for(n)
    extra = ["--include-duplicates"] if include_duplicates else []
    f = floor_seconds(project)
    record({"step": "floor", "pool": n, "floor_seconds": f,
            "load": [round(x, 2) for x in os.getloadavg()]})
    for strategy in strategies:
        for q in (1, 2):
            r = run(["query", "-p", str(project), "--budget", str(budget), "--strategy",
                     strategy, "--json", *extra])
            rec = {"step": "query", "path": "cli", "pool": n, "batch": budget,
                   "include_duplicates": include_duplicates,
                   "strategy": strategy, "dtype": "float16", "query": q, **r,
                   "floor_seconds": f, "wall_over_floor": r["wall_seconds"] / f}
            if r["rc"] == 0:
                log = json.loads(r["stdout"])["log"]
                rec["candidates"] = {k: v for k, v in (log.get("candidates") or {}).items()
                                     if k != "indexes"}
                # the narrowing's records first, the selection's after, except that an
                # index built in this round keeps its "built" record (not the "reused"
                # one of the same index later in the round)
                idx = dict((log.get("candidates") or {}).get("indexes") or {})
                for name, rec_ in ((log.get("selection") or {}).get("indexes") or {}).items():
                    if (idx.get(name) or {}).get("action") != "built":
                        idx[name] = rec_
                rec["index_seconds"] = sum(float(v.get("seconds", 0)) for v in idx.values())
                rec["indexes"] = idx
                rec["duplicates"] = log.get("duplicates")
                rec["round_seconds_logged"] = log.get("seconds")
                rec["selected"] = len(json.loads(r["stdout"]).get("rows") or [])
            record(rec)
            if r["rc"] != 0:
                return False
    return True


def _phase_facts(phase: str, strategies: list[str]) -> dict:
    return {"phase": phase, "git_commit": git_commit(), "git_dirty": git_dirty(),
            "started_at": now_iso(), "strategies": strategies,
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
            "disk_free_bytes": _disk_free()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["smoke", "full"], default="full",
                    help="smoke: 20,000 rows (CI's run of the same steps)")
    ap.add_argument("--pool", type=int, default=None, help="default 10,000,000 (smoke 20,000)")
    ap.add_argument("--strategies", default="margin")
    ap.add_argument("--out", default=str(RESULTS / f"{BENCH}.json"))
    ap.add_argument("--keep", action="store_true", help="keep the project (prints its path)")
    ap.add_argument("--phase", choices=["all", "prepare", "query"], default="all",
                    help="prepare: data, ingest, labels, train into --workdir (kept); query: "
                    "the floor and the queries on --workdir's project, records appended to "
                    "--out (so the long data step can run apart from the timed rounds)")
    ap.add_argument("--workdir", default=None,
                    help="directory for the Parquet file and the project (needed with "
                    "--phase; default a new temporary directory)")
    ap.add_argument("--include-duplicates", action="store_true",
                    help="pass --include-duplicates to the queries: no near-duplicate "
                    "search (the one the bulk ingest deferred), so the first query "
                    "builds only the selection's indexes")
    ap.add_argument("--cleanup", action="store_true",
                    help="with --phase query: remove --workdir after the queries")
    args = ap.parse_args(argv)
    n = args.pool or (20_000 if args.size == "smoke" else 10_000_000)
    strategies = args.strategies.split(",")
    if args.phase != "all" and not args.workdir:
        print(f"[{BENCH}] --phase {args.phase} needs --workdir", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.phase == "query":
        tmp = Path(args.workdir)
        if not (tmp / "project").is_dir() or not out.exists():
            print(f"[{BENCH}] no prepared project in {tmp} or no {out}: run --phase prepare "
                  "first", file=sys.stderr)
            return 2
        result = json.loads(out.read_text())
        if result["params"]["pool"] != n:
            print(f"[{BENCH}] {out} holds a {result['params']['pool']}-row run, not {n}",
                  file=sys.stderr)
            return 2
    else:
        need = n * DIM * 4 + n * DIM * 2 + (2 << 30)  # Parquet + float16 project + catalog
        if _disk_free() < need * 1.2:
            print(f"[{BENCH}] needs about {need / 2**30:.0f} GiB free; "
                  f"{_disk_free() / 2**30:.0f} GiB are", file=sys.stderr)
            return 2
        result = header(BENCH, "synthetic: selection_scale's Zipf-sized cluster mixture, unit "
                        "vectors, 384-d, stored float16",
                        {"pool": n, "budget": budget_for(n), "labels": LABELS, "dtype": "float16",
                         "strategies": strategies, "targets": TARGETS,
                         "disk_free_before_bytes": _disk_free(),
                         "load_at_start": [round(x, 2) for x in os.getloadavg()]})
        result["runs"] = []
        if args.workdir:
            tmp = Path(args.workdir)
            tmp.mkdir(parents=True, exist_ok=False)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="lt-10m-", dir=os.environ.get("LT_TMP")))
    phase = {**_phase_facts(args.phase, strategies),
             "include_duplicates": args.include_duplicates}
    result.setdefault("phases", []).append(phase)

    def record(rec: dict) -> None:
        rec.pop("stdout", None)
        rec["phase"] = len(result["phases"]) - 1  # index into "phases" (commit, load)
        result["runs"].append(rec)
        print(f"[{BENCH}] {json.dumps(rec)}", flush=True)
        write_result(result, out)

    ok = True
    remove = args.phase == "all" and not args.keep or args.phase == "query" and args.cleanup
    try:
        if args.phase in ("all", "prepare"):
            ok = _prepare(tmp, n, record)
        if ok and args.phase in ("all", "query"):
            ok = _queries(tmp / "project", n, strategies, record, args.include_duplicates)
        if (tmp / "project").is_dir():
            peak = max([r.get("peak_disk_bytes", 0) for r in result["runs"]]
                       + [_du(tmp / "project")])
            result["params"]["peak_disk_bytes"] = peak
    finally:
        phase["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["params"]["load_at_end"] = phase["load_at_end"]
        if remove:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"[{BENCH}] kept {tmp}")
        phase["disk_free_after_bytes"] = _disk_free()
        result["params"]["disk_free_after_bytes"] = phase["disk_free_after_bytes"]
        write_result(result, out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
