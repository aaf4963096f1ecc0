"""Run one benchmark or all of them: ``python bench/run.py NAME|all --size smoke|full``.

Benchmarks are discovered by glob: every ``bench/*.py`` except ``_common.py`` and this
file; each must expose ``main(argv=None)``. Extra arguments are passed through.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"_common", "run", "datasets"}  # datasets: the loaders, not a benchmark


def discover() -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(HERE.glob("*.py"))
        if p.stem not in SKIP and not p.stem.startswith("_")
    }


def load(path: Path):
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    benches = discover()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="all, or one of: " + ", ".join(benches))
    ap.add_argument("--size", choices=["smoke", "full"], default="full")
    args, extra = ap.parse_known_args(argv)
    if args.name == "all":
        names = list(benches)
    elif args.name in benches:
        names = [args.name]
    else:
        ap.error(f"unknown benchmark {args.name!r}; known: {', '.join(benches)}")
    failed = []
    for name in names:
        print(f"== {name} ({args.size})", flush=True)
        t0 = time.perf_counter()
        try:
            rc = load(benches[name]).main(["--size", args.size, *extra]) or 0
        except SystemExit as e:  # argparse errors and sys.exit inside a benchmark
            rc = e.code if isinstance(e.code, int) else 1
        print(f"== {name}: rc {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
