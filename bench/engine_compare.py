"""Old engine against new, side by side in one run (issue 25): `selection_scale` (its CLI
records), `server_load` and `startup`, each run by each side's own checkout (its own
`bench/` script and its own `src/` on PYTHONPATH, the same interpreter), interleaved
old, new, new, old, ... so that the shared machine's drift hits both alike.

Each side builds its own project with its own code: the old code refuses a catalog of
the new schema. Per figure: the median over repeats of each side, and `ratio` =
new / old; `worse` = how much worse new is (ratio for seconds, old / new for rates), so
`worse` <= 1.10 is "not more than 10% worse". The verdict reads the headline figures
(`HEADLINE`); every figure is kept.

    python bench/engine_compare.py --old /work/wt-old [--repeats 3] [--size smoke]
        [--out bench/results/engine_compare.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, git_dirty, header, write_result  # noqa: E402

NEW = Path(__file__).resolve().parents[1]
LIMIT = 1.10  # new may be at most 10% worse
# (benchmark, figure) read for the verdict; the rest are shown beside them. On a shared,
# loaded machine wall seconds mostly measure the queue for a core: where a benchmark
# records CPU seconds (startup, the server's CPU per submission) those are the headline.
HEADLINE = {
    "selection_scale": ["cli query 1 wall_seconds", "cli query 2 wall_seconds"],
    "server_load": ["sqlite closed submissions_per_s",
                    "sqlite closed server_cpu_ms_per_submission"],
    "startup": ["longtail --help cpu_median_seconds", "longtail status cpu_median_seconds"],
}
SERVER_SECONDS = 10.0  # server_load's duration per mode (smoke: 3 s, too short to read)


def _args(bench: str, size: str, out: Path) -> list[str]:
    if bench == "selection_scale":
        return ["--path", "cli", "--size", size, "--out", str(out)]
    if bench == "server_load":
        return ["--size", size, "--backends", "sqlite", "--duration", str(SERVER_SECONDS),
                "--out", str(out)]
    return ["--size", size, "--out", str(out)]


def side_env(root: Path) -> dict[str, str]:
    """The environment of a side's runs: its `src/` first on the path, bytecode on."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "HF_HUB_OFFLINE": "1"}
    # As an installed package runs: from bytecode (pip compiles it at install). With
    # PYTHONDONTWRITEBYTECODE (a tidy checkout's setting) every process would compile
    # each module it imports, and the side with more source would pay for its length.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_side(root: Path) -> None:
    """Bytecode for the side's package (`__pycache__/`, ignored by git), before any run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "src")],
                   env=side_env(root), capture_output=True, check=True)


def run_side(root: Path, bench: str, size: str, out: Path, timeout: float) -> dict:
    """One run of `bench` by the checkout at `root`: its result file, read back."""
    env = side_env(root)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(v, "1")
    cmd = [sys.executable, str(root / "bench" / f"{bench}.py"), *_args(bench, size, out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=root)
    if p.returncode != 0 or not out.exists():
        raise RuntimeError(f"{root}: {bench} failed (rc {p.returncode}): {p.stderr[-2000:]}")
    got = json.loads(out.read_text())
    got["_wall_s"] = time.perf_counter() - t0
    return got


def figures(bench: str, result: dict) -> dict[str, float]:
    """The figures of one result file, flat: name -> value."""
    out: dict[str, float] = {}
    for r in result.get("runs", []):
        if bench == "selection_scale" and r.get("path") in ("cli", "project") \
                and r.get("status") == "ok":
            key = "wall_seconds" if r["path"] == "cli" else "seconds"
            out[f"{r['path']} query {r['query']} {key}"] = r[key]
        elif bench == "server_load":
            for k in ("submissions_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_submission"):
                if r.get(k) is not None:
                    out[f"{r['backend']} {r['mode']} {k}"] = r[k]
        elif bench == "startup":
            for k in ("median_seconds", "cpu_median_seconds", "ratio"):
                out[f"{r['command']} {k}"] = r[k]
    return out


def higher_is_better(name: str) -> bool:
    return name.endswith("submissions_per_s")


def compare(old: list[dict[str, float]], new: list[dict[str, float]]) -> dict:
    """Per figure: each side's repeats and median, ratio new/old and `worse`."""
    out = {}
    for name in sorted(set().union(*old, *new)):
        a = [r[name] for r in old if name in r]
        b = [r[name] for r in new if name in r]
        if not a or not b:
            continue
        mo, mn = statistics.median(a), statistics.median(b)
        ratio = mn / mo if mo else None
        worse = (None if ratio is None or not mn else
                 (1 / ratio if higher_is_better(name) else ratio))
        out[name] = {"old": round(mo, 4), "new": round(mn, 4),
                     "ratio": None if ratio is None else round(ratio, 3),
                     "worse": None if worse is None else round(worse, 3),
                     "old_runs": a, "new_runs": b}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default=None,
                    help="checkout of the old commit (git worktree); without it the checkout "
                         "is compared with itself, once, on `startup` (what CI's smoke run "
                         "does: it checks the harness, not the engine)")
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (1 without --old)")
    ap.add_argument("--size", choices=["smoke", "full"], default="smoke")
    ap.add_argument("--benchmarks", default=None,
                    help="default startup,server_load,selection_scale (startup without --old)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    old_root = Path(args.old).resolve() if args.old else NEW
    if args.repeats is None:
        args.repeats = 3 if args.old else 1
    if args.benchmarks is None:
        args.benchmarks = "startup,server_load,selection_scale" if args.old else "startup"
    benches = [b for b in args.benchmarks.split(",") if b]
    result = header("engine_compare", "each benchmark's own data",
                    {"size": args.size, "repeats": args.repeats, "benchmarks": benches,
                     "order": "interleaved: old,new then new,old, alternating per repeat",
                     "server_load_backends": "sqlite", "selection_scale_path": "cli",
                     "server_load_duration_s": SERVER_SECONDS, "headline": HEADLINE,
                     "limit_worse": LIMIT,
                     "bytecode": "each side's src/ compiled first (compileall), as an "
                                 "installed package runs",
                     "load_average_start": list(os.getloadavg())})
    result["old"] = {"git_commit": git_commit_of(old_root), "git_dirty": git_dirty(old_root)}
    result["new"] = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    raw: dict[str, dict[str, list[dict[str, float]]]] = {b: {"old": [], "new": []}
                                                          for b in benches}
    for root in dict.fromkeys((old_root, NEW)):
        compile_side(root)
    with tempfile.TemporaryDirectory(prefix="lt-compare-") as tmpd:
        for rep in range(args.repeats):
            for bench in benches:
                sides = [("old", old_root), ("new", NEW)]
                if rep % 2:
                    sides.reverse()
                for name, root in sides:
                    out = Path(tmpd) / f"{bench}-{name}-{rep}.json"
                    got = run_side(root, bench, args.size, out, args.timeout)
                    raw[bench][name].append(figures(bench, got))
                    print(f"[engine_compare] {bench} {name} #{rep + 1}: "
                          f"{json.dumps(raw[bench][name][-1])}", flush=True)
    verdict = {}
    for bench in benches:
        cmp = compare(raw[bench]["old"], raw[bench]["new"])
        result[bench] = cmp
        for name in HEADLINE.get(bench, []):
            if name in cmp:
                verdict[f"{bench}: {name}"] = cmp[name]["worse"] is not None \
                    and cmp[name]["worse"] <= LIMIT
    result["load_average_end"] = list(os.getloadavg())
    result["headline_within_limit"] = verdict
    result["all_within_limit"] = all(verdict.values()) if verdict else None
    path = write_result(result, args.out)
    print(f"wrote {path}; within {LIMIT:.2f}x: {json.dumps(verdict)}")
    return 0


def git_commit_of(root: Path) -> str:
    """HEAD of the checkout at `root`."""
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=root).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
