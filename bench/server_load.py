"""Benchmark 5, server_load: does the service hold many annotators?

`longtail serve` in its own process on loopback; a load generator (httpx, asyncio)
in another process runs N annotator clients, each submitting one task after another
(a submission = POST /tasks/lease + POST /tasks/{id}/label). Two modes per backend:

- open: the clients together offer R submissions/s (each waits for its response, then
  for its share of the schedule), for D seconds: achieved rate and latency;
- closed: the same clients with no think time: the saturation rate and latency.

Afterwards the catalog is read back: every acknowledged label must be there (`lost`)
and no sample may carry more label events than the overlap (`duplicates`); the
catalog's label count must equal the acknowledged count. Backends: SQLite, and
PostgreSQL when a server answers at --pg (default $LONGTAIL_TEST_PG, else the local test server).

    python bench/server_load.py --size smoke|full [--out PATH] [--pg URL]
        [--clients N] [--duration S] [--rate R] [--pool N]   (override the size)
        [--rates sqlite=600,postgresql=300]                   (the offered rate per backend)

Besides the rates, each record has the CPU the server process and the load generator
spent per acknowledged submission (`server_cpu_ms_per_submission`,
`client_cpu_ms_per_submission`): on a shared machine the wall-clock rates say what the
server got, the CPU figures what a submission costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, write_result  # noqa: E402

SIZES = {
    "smoke": {"clients": 10, "duration_s": 3.0, "offered_per_s": 30.0, "pool": 3_000},
    "full": {"clients": 200, "duration_s": 60.0, "offered_per_s": 300.0, "pool": 120_000},
}
LABELS = ["billing", "card", "transfer", "refund", "other"]
OVERLAP = 1
LEASE_TTL = 600.0
SEED = 0
# The PostgreSQL the test suites use (tests/conftest.py): the PostgreSQL runs go there
# unless --pg or $LONGTAIL_TEST_PG says otherwise, and are left out when none answers.
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- the project and the server --------------------------------------------------------

def make_project(root: Path, pool: int, clients: int, db_url: str | None) -> list[str]:
    """A catalog with `pool` text samples in one open round and `clients` annotators;
    their tokens."""
    import json as _json

    from longtail.engine import users
    from longtail.store import Store

    store = Store.create(root, {"seed": SEED}, db_url=db_url)
    try:
        with store.unit_of_work() as uow:
            batch = uow.samples.add_batch("synthetic", "0" * 64, {})
            uow.samples.insert(batch, [(i, f"s{i}", f"{i:032x}", f"message number {i}",
                                        _json.dumps({})) for i in range(pool)])
            uow.label_set.set(LABELS)
            uow.rounds.add("random", {"budget": pool}, 0, {"strategy": "random"},
                           [(i, i, "selected") for i in range(pool)], None)
        return [users.add_user(store, f"a{i:03d}")[1] for i in range(clients)]
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "longtail.cli", "serve", "-p", str(root), "--host", "127.0.0.1",
           "--port", str(port), "--lease-ttl", str(LEASE_TTL), "--overlap", str(OVERLAP),
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_up(port, proc)
    except BaseException:
        proc.kill()  # never left running (it would hold the catalog's schema)
        proc.wait(30)
        raise
    return proc


# A full-size pool's slots are made before the server answers: minutes on a loaded
# machine with PostgreSQL.
START_TIMEOUT = 600.0


def wait_up(port: int, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start in time")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def catalog_check(root: Path, acked: list[list]) -> dict:
    """Lost (acknowledged, not in the catalog) and duplicates (label events beyond the
    overlap on one sample, or twice by one annotator), read back from the catalog."""
    from collections import Counter

    from sqlalchemy import select

    from longtail.store import Store
    from longtail.store import schema as s

    store = Store.open(root)
    try:
        with store.engine.connect() as conn:
            ev = conn.execute(select(s.annotations.c.row, s.annotations.c.annotator)
                              .where(s.annotations.c.kind == "label")).all()
            t = s.task_leases
            stuck = conn.execute(select(t.c.id).where(t.c.state == "leased")).all()
    finally:
        store.close()
    have = Counter((int(r), a) for r, a in ev)
    per_row = Counter(int(r) for r, _ in ev)
    acked_set = Counter((int(r), a) for r, a in acked)
    return {"catalog_labels": len(ev),
            "lost": sum(1 for k in acked_set if k not in have),
            "duplicates": sum(n - OVERLAP for n in per_row.values() if n > OVERLAP)
            + sum(n - 1 for n in have.values() if n > 1),
            "unacknowledged_in_catalog": sum(1 for k in have if k not in acked_set),
            "leases_held_at_end": len(stuck)}


# -- the load generator (its own process) -------------------------------------------------

async def _client(http, token: str, name: str, i: int, n: int, mode: str, rate: float,
                  t0: float, until: float, out: dict) -> None:
    import httpx

    head = {"Authorization": f"Bearer {token}"}
    per_client = rate / n if mode == "open" else 0.0
    k = 0
    while True:
        # The run lasts `duration` of wall time in both modes: a client behind its
        # schedule (the server is slower than offered) does not go on catching up.
        if time.perf_counter() >= until:
            return
        if mode == "open":
            due = t0 + (k + i / n) / per_client
            if due >= until:
                return
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        k += 1
        t = time.perf_counter()
        try:
            r = await http.post("/tasks/lease", headers=head)
        except httpx.HTTPError:
            out["transport_errors"] += 1  # counted, never acknowledged
            continue
        out["lat"].append(1000 * (time.perf_counter() - t))
        if r.status_code != 200:
            out["errors"] += 1
            continue
        task = r.json()["task"]
        if task is None:
            out["exhausted"] += 1
            return
        t2 = time.perf_counter()
        try:
            r = await http.post(f"/tasks/{task['id']}/label", headers=head,
                                json={"label": LABELS[task["id"] % len(LABELS)], "seconds": 1.0})
        except httpx.HTTPError:
            out["transport_errors"] += 1  # the label may be in: not acknowledged
            continue
        now = time.perf_counter()
        out["lat"].append(1000 * (now - t2))
        out["sub"].append(1000 * (now - t))
        if r.status_code == 200:
            out["acked"].append([task["id"], name])
        else:
            out["errors"] += 1


async def _load(port: int, tokens: list[str], mode: str, rate: float, duration: float) -> dict:
    import httpx

    out = {"lat": [], "sub": [], "acked": [], "errors": 0, "transport_errors": 0, "exhausted": 0}
    # One client (one keep-alive connection) per annotator, as 200 browsers would be:
    # httpx's pool looks at every connection it holds on each request, so one shared
    # pool of 200 costs the load generator more CPU than the server spends.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # verify=False: plain http, so no certificate store loaded per client.
    https = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30.0,
                               verify=False) for _ in tokens]
    # The load generator's CPU while it runs (not its imports and set-up).
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        t0 = time.perf_counter()
        until = t0 + duration
        await asyncio.gather(*[_client(http, tok, f"a{i:03d}", i, len(tokens), mode, rate, t0,
                                       until, out)
                               for i, (http, tok) in enumerate(zip(https, tokens, strict=True))])
        out["elapsed_s"] = time.perf_counter() - t0
    finally:
        for http in https:
            await http.aclose()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["client_cpu_s"] = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    return out


def quiet_failed_imports() -> None:
    """httpcore imports sniffio on every request (to tell asyncio from trio); where it is
    not installed, each failed import searches all of sys.path again, which cost the
    load generator more CPU than its HTTP. A None entry fails the import at once."""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


def client_main(args: argparse.Namespace) -> int:
    quiet_failed_imports()
    spec = json.loads(Path(args.client).read_text())
    out = asyncio.run(_load(spec["port"], spec["tokens"], spec["mode"], spec["rate"],
                            spec["duration"]))
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


# -- one run ---------------------------------------------------------------------------

def run_one(backend: str, db_url: str | None, mode: str, size: dict, work: Path) -> dict:
    root = work / f"{backend}-{mode}"
    tokens = make_project(root, size["pool"], size["clients"], db_url)
    # The machine's load when the run starts: on a shared machine the figures below
    # are what the server got, not what it can do.
    load_before = os.getloadavg()[0]
    port = free_port()
    server = start_server(root, port)
    try:
        cpu0 = cpu_seconds(server.pid)
        spec = {"port": port, "tokens": tokens, "mode": mode, "rate": size["offered_per_s"],
                "duration": size["duration_s"], "out": str(work / f"{backend}-{mode}.out.json")}
        (work / "spec.json").write_text(json.dumps(spec))
        subprocess.run([sys.executable, __file__, "--client", str(work / "spec.json")], check=True)
        server_cpu = cpu_seconds(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(30)
    got = json.loads(Path(spec["out"]).read_text())
    check = catalog_check(root, got["acked"])
    rec = {"backend": backend, "mode": mode, "clients": size["clients"],
           "duration_s": round(got["elapsed_s"], 2),
           "offered_per_s": size["offered_per_s"] if mode == "open" else None,
           "submissions_per_s": round(len(got["acked"]) / got["elapsed_s"], 1),
           "acknowledged": len(got["acked"]),
           "p50_ms": round(percentile(got["lat"], 50) or 0, 2),
           "p99_ms": round(percentile(got["lat"], 99) or 0, 2),
           "submission_p50_ms": round(percentile(got["sub"], 50) or 0, 2),
           "submission_p99_ms": round(percentile(got["sub"], 99) or 0, 2),
           "errors": got["errors"], "transport_errors": got["transport_errors"],
           "queue_exhausted_clients": got["exhausted"],
           "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "cpu_count": os.cpu_count(),
           "client_cpu_s": round(got["client_cpu_s"], 2), "server_cpu_s": round(server_cpu, 2),
           **check}
    rec["catalog_equals_acknowledged"] = rec["catalog_labels"] == rec["acknowledged"]
    n = max(len(got["acked"]), 1)
    rec["server_cpu_ms_per_submission"] = round(1000 * server_cpu / n, 3)
    rec["client_cpu_ms_per_submission"] = round(1000 * got["client_cpu_s"] / n, 3)
    return rec


def pg_base(url: str | None):
    """(admin engine, url) when a PostgreSQL server answers at `url`, else None."""
    if not url:
        return None
    try:
        from sqlalchemy import create_engine, text

        from longtail.store.catalog import parse_db_url

        u = parse_db_url(url)
        engine = create_engine(u, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return engine, u
    except Exception as e:  # noqa: BLE001 - no server: the PostgreSQL runs are left out
        print(f"PostgreSQL at {url} unusable ({str(e).splitlines()[0]}): SQLite only", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", default=None, help="result file (default bench/results/)")
    parser.add_argument("--pg", default=os.environ.get("LONGTAIL_TEST_PG", PG_DEFAULT),
                        help="PostgreSQL URL for the PostgreSQL runs "
                        " (default $LONGTAIL_TEST_PG, else the local test server)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--modes", default="open,closed")
    parser.add_argument("--clients", type=int, default=None, help="override the size's clients")
    parser.add_argument("--duration", type=float, default=None, help="override its seconds")
    parser.add_argument("--rate", type=float, default=None, help="override its offered rate")
    parser.add_argument("--rates", default=None,
                        help="offered rate per backend, e.g. sqlite=600,postgresql=300 "
                        "(the issue's targets differ by backend)")
    parser.add_argument("--pool", type=int, default=None, help="override its pool size")
    parser.add_argument("--note", default=None,
                        help="what the record should say about the run (the machine's load)")
    parser.add_argument("--client", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args)
    try:
        import fastapi  # noqa: F401
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        print(f"server_load: the serve extra is not installed ({e}); nothing run")
        return 0
    size = dict(SIZES[args.size])
    for key, value in (("clients", args.clients), ("duration_s", args.duration),
                       ("offered_per_s", args.rate), ("pool", args.pool)):
        if value is not None:
            size[key] = value
    rates = {b: float(r) for b, _, r in (x.partition("=") for x in (args.rates or "").split(",")
                                         if x)}
    params = {"size": args.size, **size, "offered_per_s_by_backend": rates or None,
              "overlap": OVERLAP, "lease_ttl": LEASE_TTL,
              "labels": len(LABELS), "submission": "POST /tasks/lease + POST /tasks/{id}/label",
              "seed": SEED, "path": "longtail serve (default settings) over HTTP on loopback",
              # On a shared machine the rates and latencies say what the server got; the
              # load average at the start says how shared it was (each run has its own).
              "load_average_1m_at_start": round(os.getloadavg()[0], 2), "note": args.note}
    result = header("server_load", "synthetic text pool, one open round", params)
    result["runs"] = []
    backends = [b for b in args.backends.split(",") if b]
    pg = pg_base(args.pg) if "postgresql" in backends else None
    with tempfile.TemporaryDirectory(prefix="lt-server-load-") as tmp:
        for backend in backends:
            if backend == "postgresql" and pg is None:
                continue
            for mode in [m for m in args.modes.split(",") if m]:
                db_url, schema = None, None
                if backend == "postgresql":
                    from sqlalchemy import text

                    schema = f"lt_load_{uuid.uuid4().hex[:10]}"
                    with pg[0].begin() as conn:
                        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                    db_url = pg[1].update_query_dict(
                        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
                try:
                    rec = run_one(backend, db_url, mode,
                                  {**size, "offered_per_s": rates.get(backend,
                                                                      size["offered_per_s"])},
                                  Path(tmp))
                finally:
                    if schema:
                        from sqlalchemy import text

                        with pg[0].begin() as conn:
                            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                result["runs"].append(rec)
                print(f"{backend:>10} {mode:>6}: {rec['submissions_per_s']:7.1f} submissions/s "
                      f"(offered {rec['offered_per_s']}), p50 {rec['p50_ms']:.1f} ms, p99 "
                      f"{rec['p99_ms']:.1f} ms, lost {rec['lost']}, duplicates "
                      f"{rec['duplicates']}, catalog = acknowledged: "
                      f"{rec['catalog_equals_acknowledged']}, client CPU {rec['client_cpu_s']} s, "
                      f"server CPU {rec['server_cpu_s']} s "
                      f"({rec['server_cpu_ms_per_submission']} ms/submission), load "
                      f"{rec['load_average_1m']}", flush=True)
    path = write_result(result, args.out)
    print(f"wrote {path}")
    bad = [r for r in result["runs"] if r["lost"] or r["duplicates"]
           or not r["catalog_equals_acknowledged"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
