"""CLI start-up, old against new, in instructions executed: `longtail --help`, `longtail
status` and a second `longtail query`, each run under valgrind's callgrind, which counts
the instructions a process executes. Unlike seconds, the count does not move with the
machine's load (it is the same run after run, PYTHONHASHSEED fixed), so a loaded, shared
machine can still compare two commits; it leaves out the kernel's work (page faults,
I/O), which `engine_compare` (seconds, on a quiet machine) keeps.

Each side runs from its own checkout (`src/` on PYTHONPATH, its own `bench/startup.py`
project: 1,000 rows, 300 labels, one model), from bytecode as an installed package does
(compileall first; a warm-up run of each command writes the rest).

    python bench/instructions.py --old /path/to/old-checkout [--size smoke|full] [--out PATH]

full: the three commands. smoke: `--help` only, and without --old the checkout is
measured once and compared with itself (what the smoke test runs: the harness, not the
engine). Without valgrind nothing is measured and the result says so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import git_commit, git_dirty, header, write_result  # noqa: E402

NEW = Path(__file__).resolve().parents[1]
LIMIT = 1.10
CLI = [sys.executable, "-m", "longtail.cli"]


def side_env(root: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "HF_HUB_OFFLINE": "1",
           "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def instructions(cmd: list[str], env: dict[str, str], cwd: Path) -> int:
    """Instructions executed by `cmd` (callgrind's total); a failed run is an error."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                        *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    got = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or got is None:
        raise RuntimeError(f"{cmd}: rc {p.returncode}: {p.stderr[-1500:]}")
    return int(got.group(1))


def measure_side(root: Path, tmp: Path, full: bool) -> dict[str, int]:
    env = side_env(root)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "src")], env=env,
                   capture_output=True, check=True)
    made = tmp / "made"
    made.mkdir()
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'bench'); "
            f"import startup; startup.make_project(Path({str(made)!r}), 1000)")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True,
                   capture_output=True)
    proj = made / "project"
    out = {}
    for name, args in (("longtail --help", ["--help"]),
                       ("longtail status", ["status", "-p", str(proj)])):
        subprocess.run([*CLI, *args], env=env, cwd=root, capture_output=True, check=True)
        out[name] = instructions([*CLI, *args], env, root)
        if not full:
            return out
    # the second query of a project: the first (also the warm-up) is run plainly on a copy
    copy = tmp / "query"
    shutil.copytree(proj, copy)
    query = ["query", "--budget", "50", "--strategy", "auto", "-p", str(copy), "--json"]
    subprocess.run([*CLI, *query], env=env, cwd=root, capture_output=True, check=True)
    out["longtail query (second)"] = instructions([*CLI, *query], env, root)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default=None, help="checkout of the old commit (default: this "
                    "checkout, measured once: a check of the harness)")
    ap.add_argument("--size", choices=["smoke", "full"], default="full")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    old_root = Path(args.old).resolve() if args.old else NEW
    result = header("instructions", "synthetic project, 1,000 rows (bench/startup.py)",
                    {"size": args.size, "measure": "instructions executed (valgrind callgrind), user space",
                     "bytecode": "compiled first, as an installed package runs",
                     "query": "--budget 50 --strategy auto, the project's second query",
                     "limit_worse": LIMIT, "load_average_start": list(os.getloadavg())})
    old_commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=old_root).stdout.strip()
    result["old"] = {"git_commit": old_commit, "git_dirty": git_dirty(old_root)}
    result["new"] = {"git_commit": git_commit(), "git_dirty": git_dirty()}
    if shutil.which("valgrind") is None:
        result.update(commands={}, within_limit={}, skipped="valgrind is not installed")
        print(f"valgrind is not installed: nothing measured; wrote {write_result(result, args.out)}")
        return 0
    sides = {}
    for name, root in (("old", old_root), ("new", NEW)):
        if name == "new" and old_root == NEW:
            sides["new"] = sides["old"]
            continue
        with tempfile.TemporaryDirectory(prefix=f"lt-instr-{name}-") as tmp:
            sides[name] = measure_side(root, Path(tmp), args.size == "full")
            print(f"[instructions] {name}: {sides[name]}", flush=True)
    result["commands"] = {
        c: {"old": sides["old"][c], "new": sides["new"][c],
            "ratio": round(sides["new"][c] / sides["old"][c], 3)} for c in sides["new"]}
    result["within_limit"] = {c: r["ratio"] <= LIMIT for c, r in result["commands"].items()}
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
