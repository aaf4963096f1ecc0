"""Benchmark server_crash: does the service keep every acknowledged label when it dies?

The load of server_load (annotator clients leasing and labeling, httpx asyncio, in
their own process) runs while the server is SIGKILLed at random moments and started
again on the same port, `restarts` times. Clients retry through the outage. Then:

- lost: acknowledged labels (HTTP 200) missing from the catalog (must be 0);
- stuck_leases: leases still held past their TTL once one lease request has run
  after the TTL (must be 0: a killed server's leases return to the queue);
- over_overlap: samples with more label events than the overlap, or labeled twice by
  one annotator (must be 0).

    python bench/server_crash.py --size smoke|full [--out PATH] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, write_result  # noqa: E402

SIZES = {
    "smoke": {"clients": 10, "restarts": 3, "up_s": [0.5, 1.5], "pool": 3_000},
    "full": {"clients": 200, "restarts": 20, "up_s": [1.0, 4.0], "pool": 60_000},
}
OVERLAP = 2
LEASE_TTL = 3.0
LABELS = ["billing", "card", "transfer", "refund", "other"]
SEED = 0
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # as server_load


def start_server(root: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "longtail.cli", "serve", "-p", str(root), "--host", "127.0.0.1",
           "--port", str(port), "--lease-ttl", str(LEASE_TTL), "--overlap", str(OVERLAP),
           "--log-level", "warning"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- the load generator (its own process), stopped by a file -----------------------------

async def _client(http, token: str, name: str, stop: Path, out: dict) -> None:
    import httpx

    head = {"Authorization": f"Bearer {token}"}
    while not stop.exists():
        try:
            r = await http.post("/tasks/lease", headers=head)
            if r.status_code != 200:
                out["errors"] += 1
                await asyncio.sleep(0.05)
                continue
            task = r.json()["task"]
            if task is None:
                await asyncio.sleep(0.2)
                continue
            r = await http.post(f"/tasks/{task['id']}/label", headers=head,
                                json={"label": LABELS[task["id"] % len(LABELS)], "seconds": 1.0})
            if r.status_code == 200:
                out["acked"].append([task["id"], name])
            else:
                out["refused"][str(r.status_code)] = out["refused"].get(str(r.status_code), 0) + 1
        except httpx.HTTPError:
            out["transport_errors"] += 1  # the server is down: try again shortly
            await asyncio.sleep(0.05)


async def _load(port: int, tokens: list[str], stop: Path) -> dict:
    import httpx

    out = {"acked": [], "errors": 0, "transport_errors": 0, "refused": {}}
    # One client per annotator, as in server_load (a shared pool of 200 connections
    # costs the load generator O(connections) per request).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10.0,
                               verify=False) for _ in tokens]
    try:
        await asyncio.gather(*[_client(http, tok, f"a{i:03d}", stop, out)
                               for i, (http, tok) in enumerate(zip(https, tokens, strict=True))])
    finally:
        for http in https:
            await http.aclose()
    return out


def client_main(spec_path: str) -> int:
    import server_load as sl

    sl.quiet_failed_imports()
    spec = json.loads(Path(spec_path).read_text())
    out = asyncio.run(_load(spec["port"], spec["tokens"], Path(spec["stop"])))
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


# -- one run -----------------------------------------------------------------------------

def run_one(backend: str, db_url: str | None, size: dict, work: Path, rng: random.Random) -> dict:
    import server_load as sl

    root = work / f"crash-{backend}"
    tokens = sl.make_project(root, size["pool"], size["clients"], db_url)
    # The machine's load: on a shared machine the acknowledged count says what the
    # server got, not what it can do (lost and stuck must be 0 whatever the load).
    load_before = os.getloadavg()[0]
    port = sl.free_port()
    server = start_server(root, port)
    sl.wait_up(port, server)
    stop = work / f"stop-{backend}"
    spec = {"port": port, "tokens": tokens, "stop": str(stop), "out": str(work / f"{backend}.out")}
    (work / "crash-spec.json").write_text(json.dumps(spec))
    client = subprocess.Popen([sys.executable, __file__, "--client", str(work / "crash-spec.json")])
    restarts = 0
    try:
        for _ in range(size["restarts"]):
            time.sleep(rng.uniform(*size["up_s"]))
            server.send_signal(signal.SIGKILL)
            server.wait()
            server = start_server(root, port)
            sl.wait_up(port, server)
            restarts += 1
        time.sleep(rng.uniform(*size["up_s"]))
    except BaseException:
        server.kill()  # never left running
        server.wait(30)
        raise
    finally:
        stop.touch()
        client.wait(120)
    acked = json.loads(Path(spec["out"]).read_text())
    # Past the TTL, one lease request (it reclaims expired leases first); then count.
    time.sleep(LEASE_TTL + 0.5)
    import httpx

    httpx.post(f"http://127.0.0.1:{port}/tasks/lease", timeout=10,
               headers={"Authorization": f"Bearer {tokens[0]}"})
    server.terminate()
    server.wait(30)
    return {"backend": backend, "restarts": restarts, "clients": size["clients"],
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "cpu_count": os.cpu_count(), **check(root, acked)}


def check(root: Path, got: dict) -> dict:
    from sqlalchemy import select

    from longtail.store import Store
    from longtail.store import schema as s

    store = Store.open(root)
    try:
        with store.engine.connect() as conn:
            ev = conn.execute(select(s.annotations.c.row, s.annotations.c.annotator)
                              .where(s.annotations.c.kind == "label")).all()
            t = s.task_leases
            stuck = conn.execute(select(t.c.id).where(t.c.state == "leased")
                                 .where(t.c.expires_at <= time.time())).all()
    finally:
        store.close()
    have = Counter((int(r), a) for r, a in ev)
    per_row = Counter(int(r) for r, _ in ev)
    acked = {(int(r), a) for r, a in got["acked"]}
    return {"acknowledged": len(got["acked"]), "catalog_labels": len(ev),
            "lost": sum(1 for k in acked if k not in have),
            "stuck_leases": len(stuck),
            "over_overlap": sum(n - OVERLAP for n in per_row.values() if n > OVERLAP)
            + sum(n - 1 for n in have.values() if n > 1),
            "unacknowledged_in_catalog": sum(1 for k in have if k not in acked),
            "transport_errors": got["transport_errors"], "refused": got["refused"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", default=None, help="result file (default bench/results/)")
    parser.add_argument("--pg", default=os.environ.get("LONGTAIL_TEST_PG", PG_DEFAULT),
                        help="PostgreSQL URL for the PostgreSQL run "
                        " (default $LONGTAIL_TEST_PG, else the local test server)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args.client)
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        print(f"server_crash: the serve extra is not installed ({e}); nothing run")
        return 0
    import server_load as sl

    size = SIZES[args.size]
    params = {"size": args.size, **size, "overlap": OVERLAP, "lease_ttl": LEASE_TTL,
              "signal": "SIGKILL", "seed": SEED}
    result = header("server_crash", "synthetic text pool, one open round", params)
    result["runs"] = []
    rng = random.Random(SEED)
    backends = [b for b in args.backends.split(",") if b]
    pg = sl.pg_base(args.pg) if "postgresql" in backends else None
    with tempfile.TemporaryDirectory(prefix="lt-server-crash-") as tmp:
        for backend in backends:
            if backend == "postgresql" and pg is None:
                continue
            db_url, schema = None, None
            if backend == "postgresql":
                from sqlalchemy import text

                schema = f"lt_crash_{uuid.uuid4().hex[:10]}"
                with pg[0].begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                db_url = pg[1].update_query_dict(
                    {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
            try:
                rec = run_one(backend, db_url, size, Path(tmp), rng)
            finally:
                if schema:
                    from sqlalchemy import text

                    with pg[0].begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            result["runs"].append(rec)
            print(f"{backend:>10}: {rec['restarts']} restarts, {rec['acknowledged']} acknowledged, "
                  f"lost {rec['lost']}, stuck leases {rec['stuck_leases']}, over overlap "
                  f"{rec['over_overlap']}", flush=True)
    # The top-level keys of the issue: the runs together.
    for key in ("restarts", "acknowledged", "lost", "stuck_leases", "over_overlap"):
        result[key] = sum(r[key] for r in result["runs"])
    path = write_result(result, args.out)
    print(f"wrote {path}")
    return 1 if result["lost"] or result["stuck_leases"] or result["over_overlap"] else 0


if __name__ == "__main__":
    sys.exit(main())
