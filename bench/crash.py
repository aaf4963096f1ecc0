"""Benchmark `crash`: does a SIGKILL at any point leave the project whole?

Each trial copies a prepared project, runs one CLI command in a subprocess and kills
it with SIGKILL: at a hooked point (`LONGTAIL_CRASH_AT=phase:step`, inside a
transaction or between a catalog commit and a file write) or after a random delay.
Then it checks, against the project before the command and after an uninterrupted
run of it:

- lost_labels: label events acknowledged before the command that are gone or changed;
- visible_half_writes: a unit the command writes in one transaction (an ingest batch
  with its vectors, label events, rounds with their items, models, dataset versions) is
  neither as before nor as after the command, or `longtail check` fails;
- failed_reruns: running the command again (when its effect is not visible yet, or
  always for the idempotent ones) fails or ends anywhere but the uninterrupted result.

    python bench/crash.py --size smoke|medium|full [--out PATH]

Smoke: 12 trials (every hooked point once, the rest random). Medium: 1 per hooked point
on a 1,000-row pool, 24 in all. Full: 5 per hooked point and the rest at random times,
80 in all.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, now_iso, write_result  # noqa: E402

# phase -> (CLI arguments, hooked points, whether re-running after success is a no-op)
PHASES: dict[str, tuple[list[str], list[str], bool]] = {
    "ingest": (["ingest", "{pool_b}", "--text", "text", "--vector-prefix", "v"],
               ["ingest:in_tx", "ingest:after_commit"], True),
    # new vectors for rows already in the pool: journaled, applied after the commit
    "update": (["ingest", "{pool_a2}", "--update", "--text", "text", "--vector-prefix", "v"],
               ["ingest:in_tx", "ingest:after_commit"], True),
    "labels": (["import-labels", "{labels_c}", "--annotator", "who"], ["labels:in_tx"], True),
    "train": (["train"], ["train:model_file_written", "train:in_tx", "train:after_commit"], True),
    "round": (["query", "-n", "20", "--strategy", "random"], ["round:in_tx", "round:after_commit"],
              False),
    "version": (["versions", "--commit"], ["version:in_tx"], False),
    # the consensus policy and the dataset version under it, in one transaction
    "consensus": (["consensus", "majority"], ["consensus:in_tx", "version:in_tx"], True),
    # reads only: a kill anywhere must leave the project as it was
    "suspects": (["suspects", "--limit", "5"], ["suspects:scored"], True),
    # `longtail run --once` over the project's inbox (pool B in data/, labels C in
    # labels/): killed after its 1st, 2nd or 3rd step (ingest, labels, train, batch)
    "run": (["run", "{project}/inbox", "--once", "--batch", "20", "--retrain-every", "10",
             "--vector-prefix", "v", "--text", "text"],
            ["run:step@1", "run:step@2", "run:step@3"], True),
}
SIZES = {"smoke": {"trials": 12, "per_point": 1, "pool": 300},
         "medium": {"trials": 24, "per_point": 1, "pool": 1000},
         "full": {"trials": 80, "per_point": 5, "pool": 2000}}
DIM = 8


def _src_path() -> str:
    import longtail

    return str(Path(longtail.__file__).resolve().parents[1])


def cli(project: Path, args: list[str], crash_at: str | None = None,
        kill_after: float | None = None, timeout: float = 600) -> tuple[int, float]:
    """Run `longtail ARGS -p PROJECT` in a subprocess: (return code, seconds). With
    `kill_after`, SIGKILL it after that many seconds if it is still running."""
    env = {**os.environ, "PYTHONPATH": _src_path(), "HF_HUB_OFFLINE": "1"}
    env.pop("LONGTAIL_CRASH_AT", None)
    env.pop("LONGTAIL_CRASH_ACTION", None)  # kill, the default
    if crash_at:
        env["LONGTAIL_CRASH_AT"] = crash_at
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "longtail.cli", *args, "-p", str(project)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=timeout)
    rc = proc.returncode
    if rc not in (0, -signal.SIGKILL):
        raise RuntimeError(f"longtail {' '.join(args)} failed ({rc}): {stderr.decode()[-2000:]}")
    return rc, time.perf_counter() - t0


def content(project: Path) -> dict:
    """What a command may change, as plain data (no time stamps): samples, the valid
    part of every vector set, label events, rounds and their items, models, their
    metrics, versions."""
    from sqlalchemy import select

    from longtail.project import Project
    from longtail.store import schema as s

    with Project(project) as p, p.store.engine.connect() as conn:
        def rows(q) -> list[tuple]:
            return [tuple(r) for r in conn.execute(q)]

        out = {
            "samples": rows(select(s.samples.c.row, s.samples.c.external_id,
                                   s.samples.c.content_hash, s.samples.c.split)
                            .order_by(s.samples.c.row)),
            "labels": rows(select(s.annotations.c.id, s.annotations.c.row, s.annotations.c.label,
                                  s.annotations.c.kind, s.annotations.c.annotator)
                           .order_by(s.annotations.c.id)),
            "rounds": rows(select(s.rounds.c.id, s.rounds.c.strategy, s.rounds.c.status)
                           .order_by(s.rounds.c.id)),
            "items": rows(select(s.round_items.c.round_id, s.round_items.c.row,
                                 s.round_items.c.kind).order_by(s.round_items.c.round_id,
                                                                s.round_items.c.position)),
            "models": rows(select(s.models.c.id, s.models.c.learner, s.models.c.n_labels,
                                  s.models.c.path).order_by(s.models.c.id)),
            "metrics": rows(select(s.metrics.c.model_id, s.metrics.c.eval_set, s.metrics.c.name,
                                   s.metrics.c.value).order_by(s.metrics.c.id)),
            "policy": rows(select(s.settings.c.value).where(s.settings.c.key == "consensus")),
            "versions": rows(select(s.dataset_versions.c.id, s.dataset_versions.c.reason,
                                    s.dataset_versions.c.max_event_id,
                                    s.dataset_versions.c.labels_fingerprint)
                             .order_by(s.dataset_versions.c.id)),
        }
        with p.store.reading() as uow:
            sets = {name: uow.vector_set(name) for name in uow.vectors.names()}
            out["models_classes"] = [tuple(m["classes"]) for m in uow.models.list()]
        for name, vs in sets.items():
            out[f"vectors:{name}"] = [vs.n_rows, vs.read(np.arange(vs.n_rows)).tobytes()]
    return out


def parts(c: dict) -> dict:
    """The units a command writes whole, each in one transaction: an ingest batch
    (samples with their vectors), label events, rounds with their items, models,
    dataset versions. Metrics are left out: derived, a re-run of `train` completes them."""
    return {"batch": (c["samples"], [(k, v) for k, v in sorted(c.items()) if k.startswith("vectors:")]),
            "labels": c["labels"], "rounds": (c["rounds"], c["items"]),
            "models": (c["models"], c["models_classes"]),
            "versions": (c["versions"], c["policy"])}


def check_ok(project: Path) -> bool:
    from longtail.project import Project

    with Project(project) as p:
        return bool(p.check().ok)


def prepare(root: Path, n: int, seed: int = 0) -> tuple[Path, dict[str, Path]]:
    """A project after: ingest of pool A, labels L1, train, a round, its labels L2;
    plus the files the phases use (pool B, labels C)."""
    from longtail.project import Project

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, DIM)) * 3

    def pool(path: Path, start: int, m: int) -> Path:
        y = rng.integers(0, 3, m)
        X = centers[y] + rng.normal(size=(m, DIM))
        lines = ["id,text," + ",".join(f"v{j}" for j in range(DIM)) + ",truth"]
        lines += [f"s{start + i},text {start + i}," + ",".join(f"{x:.5f}" for x in X[i])
                  + f",c{y[i]}" for i in range(m)]
        path.write_text("\n".join(lines) + "\n")
        return path

    def labels(path: Path, ids: list[str], truth: dict[str, str], who: str) -> Path:
        path.write_text("id,label,who\n" + "".join(f"{i},{truth[i]},{who}\n" for i in ids))
        return path

    files = {"pool_a": pool(root / "pool_a.csv", 0, n), "pool_b": pool(root / "pool_b.csv", n, n // 3)}
    # pool A again with the first tenth of its rows moved (their vectors replaced)
    lines = files["pool_a"].read_text().splitlines()
    for i in range(1, 1 + n // 10):
        cells = lines[i].split(",")
        cells[2:2 + DIM] = [f"{float(x) + 1.5:.5f}" for x in cells[2:2 + DIM]]
        lines[i] = ",".join(cells)
    files["pool_a2"] = root / "pool_a2.csv"
    files["pool_a2"].write_text("\n".join(lines) + "\n")
    base = root / "base"
    p = Project.init(base, eval_rate=0.1)
    p.ingest(files["pool_a"], text="text", vector_prefix="v")
    with p.store.reading() as uow:
        truth = {b[1]: b[3]["truth"] for chunk in uow.samples.iter() for b in chunk}
    cands = [f"s{r}" for r in p.candidates()]
    p.import_labels(labels(root / "l1.csv", cands[:60], truth, "alice"), annotator="who")
    p.train()
    q = p.query(30, strategy="random")
    p.import_labels(labels(root / "l2.csv", q.ids, truth, "alice"), annotator="who")
    rest = [f"s{r}" for r in p.candidates()]
    # labels C: 30 new samples and 10 second opinions
    files["labels_c"] = labels(root / "l3.csv", rest[:30] + cands[:10], truth, "bob")
    p.close()
    for sub, f in (("data", files["pool_b"]), ("labels", files["labels_c"])):
        (base / "inbox" / sub).mkdir(parents=True)
        shutil.copy(f, base / "inbox" / sub / f.name)
    return base, files


def command(phase: str, files: dict[str, Path], project: Path) -> list[str]:
    """The phase's CLI arguments for `project`."""
    values = {**{k: str(v) for k, v in files.items()}, "project": str(project)}
    return [a.format(**values) for a in PHASES[phase][0]]


def trial(base: Path, work: Path, phase: str, files: dict[str, Path], reference: dict,
          before: dict, point: str | None, kill_after: float | None) -> dict:
    """One SIGKILL trial on a copy of `base`: its record."""
    idempotent = PHASES[phase][2]
    proj = work / "p"
    args = command(phase, files, proj)
    shutil.rmtree(proj, ignore_errors=True)
    shutil.copytree(base, proj)
    rc, seconds = cli(proj, args, crash_at=point, kill_after=kill_after)
    killed = rc == -signal.SIGKILL
    after = content(proj)
    acknowledged = before["labels"]
    lost = sum(1 for e in acknowledged if e not in set(after["labels"]))
    # Each unit must be as before or as after the command: a multi-step command (`run`)
    # killed between steps leaves some units written ("partial"), none half-written.
    got, was, will = parts(after), parts(before), parts(reference)
    half = [k for k in got if got[k] != was[k] and got[k] != will[k]]
    state = ("half" if half else "before" if got == was else "after" if got == will
             else "partial")
    whole = check_ok(proj)
    rerun_ok = True
    reran = after != reference or idempotent
    if reran:
        rc2, _ = cli(proj, args)
        rerun_ok = rc2 == 0 and content(proj) == reference and check_ok(proj)
    return {"phase": phase, "hooked": point is not None, "point": point,
            "kill_after_s": None if kill_after is None else round(kill_after, 3),
            "killed": killed, "seconds": round(seconds, 3), "state": state,
            "lost_labels": lost, "half_write": bool(half) or not whole, "half_units": half,
            "check_ok": whole, "reran": reran, "rerun_ok": rerun_ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    # The header (git commit and dirtiness) is taken before the trials: the code that ran.
    head = header("crash", f"synthetic {size['pool']} x {DIM}, 3 classes",
                  {"size": args.size, "seed": args.seed, "phases": sorted(PHASES),
                   "per_point": size["per_point"]}, now_iso())
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="longtail-crash-") as tmp:
        root = Path(tmp)
        base, files = prepare(root, size["pool"], args.seed)
        before = content(base)
        references, durations = {}, {}
        for phase in PHASES:
            ref = root / f"ref-{phase}"
            shutil.copytree(base, ref)
            _, durations[phase] = cli(ref, command(phase, files, ref))
            references[phase] = content(ref)
        plan: list[tuple[str, str | None]] = [
            (phase, point) for phase, (_, points, _) in PHASES.items()
            for point in points for _ in range(size["per_point"])]
        while len(plan) < size["trials"]:
            plan.append((rnd.choice(sorted(PHASES)), None))
        runs = []
        for i, (phase, point) in enumerate(plan):
            delay = None if point else rnd.uniform(0.0, durations[phase])
            rec = trial(base, root / f"t{i}", phase, files, references[phase], before, point, delay)
            runs.append(rec)
            print(f"trial {i + 1}/{len(plan)} {phase} {point or f'random {delay:.2f}s'}: "
                  f"{rec['state']}, rerun {'ok' if rec['rerun_ok'] else 'FAILED'}", flush=True)
    result = {
        **head,
        "trials": len(runs),
        "killed": sum(r["killed"] for r in runs),
        "lost_labels": sum(r["lost_labels"] for r in runs),
        "visible_half_writes": sum(r["half_write"] for r in runs),
        "failed_reruns": sum(not r["rerun_ok"] for r in runs),
        "phases": {ph: sum(r["phase"] == ph for r in runs) for ph in PHASES},
        "reference_seconds": {k: round(v, 3) for k, v in durations.items()},
        "runs": runs,
    }
    path = write_result(result, args.out)
    print(f"{result['trials']} trials: {result['lost_labels']} lost labels, "
          f"{result['visible_half_writes']} half-writes, {result['failed_reruns']} failed "
          f"re-runs -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
