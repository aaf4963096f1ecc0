"""Start-up: how long `longtail --help` and `longtail status` take as whole processes,
against the floor of any command that reads the catalog,
`python -c "import numpy, sqlalchemy, typer, rich"` (issue 17: each <= 1.5x the floor).

A project of N rows (32-d precomputed vectors, 300 labels, one trained model) is made
in a temporary directory; then each command and the floor run in turn, A B A B ..., after
one warm-up each, so a drift in the machine's speed hits both alike. Wall seconds are
the target's figure; CPU seconds (user + sys) are recorded beside them because they
move less on a loaded machine.

    python bench/startup.py --size smoke|full [--out PATH]

smoke: 1,000 rows, 3 runs of each.   full: 10,000 rows, 10 runs of each.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, write_result  # noqa: E402

SIZES = {"smoke": {"rows": 1000, "runs": 3}, "full": {"rows": 10_000, "runs": 10}}
FLOOR = [sys.executable, "-c", "import numpy, sqlalchemy, typer, rich"]
DIM, LABELED, CLASSES = 32, 300, 5


def make_project(directory: Path, rows: int, seed: int = 0) -> Path:
    """A project as a user has it after the first round: vectors, labels, a model."""
    from longtail.project import Project

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES, DIM)) * 3
    y = rng.integers(0, CLASSES, rows)
    X = centers[y] + rng.normal(size=(rows, DIM))
    pool = directory / "pool.csv"
    with open(pool, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", *[f"v{j}" for j in range(DIM)]])
        w.writerows([f"s{i}", f"text {i}", *map(float, X[i])] for i in range(rows))
    labels = directory / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        w.writerows([f"s{i}", f"c{y[i]}"] for i in range(LABELED))
    proj = directory / "project"
    with Project.init(proj, eval_rate=0.05) as p:
        p.ingest(pool, id="id", text="text", vector_prefix="v")
        p.import_labels(labels)
        p.train()
    return proj


def longtail_command() -> list[str]:
    """The console script next to this interpreter (what users run), else `-m`."""
    script = Path(sys.executable).with_name("longtail")
    return [str(script)] if script.exists() else [sys.executable, "-m", "longtail.cli"]


# As an installed package runs: from bytecode (pip compiles it at install; the warm-up
# run writes what a command imports). Under PYTHONDONTWRITEBYTECODE, a tidy checkout's
# setting, every run would compile each longtail module it imports.
def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one run of `cmd`, output discarded; a failed
    run is an error. CPU time moves less than wall time on a loaded machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=child_env())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(cmd: list[str], runs: int) -> dict:
    """`cmd` and the floor in turn, one warm-up each: medians and their ratios."""
    timed(cmd), timed(FLOOR)
    ours, floor = [], []
    for _ in range(runs):
        ours.append(timed(cmd))
        floor.append(timed(FLOOR))
    wall_a, wall_b = [w for w, _ in ours], [w for w, _ in floor]
    cpu_a, cpu_b = [c for _, c in ours], [c for _, c in floor]
    pairs = [a / b for a, b in zip(wall_a, wall_b, strict=True)]
    med = statistics.median
    return {"median_seconds": round(med(wall_a), 4),
            "floor_median_seconds": round(med(wall_b), 4),
            "ratio": round(med(wall_a) / med(wall_b), 3),
            "pair_ratio_min": round(min(pairs), 3), "pair_ratio_max": round(max(pairs), 3),
            "cpu_median_seconds": round(med(cpu_a), 4),
            "floor_cpu_median_seconds": round(med(cpu_b), 4),
            "cpu_ratio": round(med(cpu_a) / med(cpu_b), 3),
            "runs": runs}


def git_dirty() -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(out.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    result = header("startup", f"synthetic project, {size['rows']} rows",
                    {"size": args.size, **size, "dim": DIM, "labeled": LABELED,
                     "floor": " ".join(FLOOR[1:]), "bytecode": "written by the warm-up run",
                     "load_average_start": list(os.getloadavg())})
    result.setdefault("git_dirty", git_dirty())
    tmp = Path(tempfile.mkdtemp(prefix="longtail-startup-"))
    try:
        proj = make_project(tmp, size["rows"])
        cli = longtail_command()
        records = []
        for name, cmd in (("longtail --help", [*cli, "--help"]),
                          ("longtail status", [*cli, "status", "-p", str(proj)])):
            rec = {"command": name, **measure(cmd, size["runs"])}
            print(f"{name}: {rec['median_seconds']:.3f} s, floor {rec['floor_median_seconds']:.3f}"
                  f" s, ratio {rec['ratio']:.2f} (CPU {rec['cpu_ratio']:.2f})", flush=True)
            records.append(rec)
        result["runs"] = records
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {write_result(result, args.out)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
