"""Label Studio's /predict at 1,000 tasks (issue 27, finding 7): how long longtail, as
Label Studio's ML backend, takes to answer one request carrying 1,000 Label Studio tasks
(about 835 bytes each, in the shape Label Studio 1.23 sends), over HTTP on loopback.

A project of N rows (vectors, 300 labels, one model, an open round of 100) is served
by `longtail serve --label-studio` (uvicorn in this process, default --max-body); a
client posts the batch as Label Studio does. Figures, each over `runs` repeats: the
first request after a model or round change (`cold`: it computes the order over the
whole pool), the requests after it (`warm`), the TASKS_CREATED webhook carrying the
same 1,000 tasks, and beside them the floor of parsing and writing the same JSON bodies
(`json_floor_seconds`). The target: every request under 5 s.

    python bench/labelstudio_predict.py --size smoke|full [--out PATH]

smoke: 3,000 rows, 2 runs.   full: 100,000 rows, 5 runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, peak_rss_bytes, write_result  # noqa: E402

SIZES = {"smoke": {"rows": 3000, "runs": 2}, "full": {"rows": 100_000, "runs": 5}}
DIM, LABELED, CLASSES, TASKS, ROUND = 32, 300, 10, 1000, 100


def make_project(root: Path, rows: int, seed: int = 0) -> None:
    """A project after its first round: vectors, labels, a model, the next round open."""
    from longtail.engine import data, labels, rounds, training
    from longtail.engine.settings import Settings
    from longtail.store import Store

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES, DIM)) * 2
    y = rng.integers(0, CLASSES, rows)
    X = centers[y] + rng.normal(size=(rows, DIM))
    pool = root / "pool.csv"
    with open(pool, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", *[f"v{j}" for j in range(DIM)]])
        for i in range(rows):
            w.writerow([f"s{i}", f"sample {i}", *[f"{v:.4f}" for v in X[i]]])
    st = Store.create(root / "p", {"seed": 0, "eval_rate": 0.0})
    try:
        data.ingest(st, Settings.load(st), pool, id="id", text="text", vector_prefix="v")
        first = rounds.plan_round(st, Settings.load(st), LABELED, strategy="random")
        labels.record_labels(st, [labels.LabelEvent(e, f"c{y[int(e[1:])]}") for e in first.ids])
        training.train(st, Settings.load(st))
        rounds.plan_round(st, Settings.load(st), ROUND, strategy="random")
    finally:
        st.close()


def ls_tasks(rows: int, n: int, seed: int = 1) -> list[dict]:
    """`n` tasks as Label Studio 1.23 serializes them for /predict (the fields of the
    recorded tasks in tests/fixtures/label_studio, about 430 bytes, plus a 400-character
    text: about 835 bytes a task, the size issue 27 measured)."""
    pick = np.random.default_rng(seed).choice(rows, size=n, replace=False)
    filler = " the customer writes about an order" * 12
    return [{"id": 1 + i, "data": {"text": (f"sample {r}" + filler)[:400],
                                   "longtail_id": f"s{r}"},
             "meta": {}, "created_at": "2026-12-05T21:04:30.144873Z",
             "updated_at": "2026-12-05T21:04:30.144895Z", "is_labeled": False, "overlap": 1,
             "inner_id": 1 + i, "total_annotations": 0, "cancelled_annotations": 0,
             "total_predictions": 0, "comment_count": 0, "unresolved_comment_count": 0,
             "last_comment_updated_at": None, "project": 1, "updated_by": None,
             "file_upload": 1, "comment_authors": [], "annotations": [], "predictions": []}
            for i, r in enumerate(pick.tolist())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(xs: list[float]) -> dict:
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "max": max(xs), "n": len(xs)}


def main(argv: list[str] | None = None) -> int:
    import httpx
    import uvicorn

    from longtail.engine import training
    from longtail.engine.settings import Settings
    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings
    from longtail.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    size = SIZES[args.size]
    result = header("labelstudio_predict", f"synthetic project, {size['rows']} rows",
                    {"size": args.size, **size, "dim": DIM, "classes": CLASSES,
                     "labeled": LABELED, "tasks": TASKS, "round": ROUND,
                     "max_body": ServerSettings().max_body})
    with tempfile.TemporaryDirectory(prefix="longtail-lsp-") as tmp:
        root = Path(tmp)
        make_project(root, size["rows"])
        settings = ServerSettings(label_studio=True, label_studio_url="http://127.0.0.1:9",
                                  label_studio_token="unused-legacy-key")
        app = create_app(root / "p", settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(url + "/health", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            tasks = ls_tasks(size["rows"], TASKS)
            body = json.dumps({"tasks": tasks, "project": "1.1796504668",
                               "label_config": "<View/>", "params": {
                                   "login": None, "password": None, "context": None}})
            hook = json.dumps({"action": "TASKS_CREATED", "project": {"id": 1}, "tasks": tasks})
            head = {"content-type": "application/json"}
            cold, warm, webhook, floor = [], [], [], []
            with httpx.Client(base_url=url, timeout=120) as c:
                for k in range(size["runs"]):
                    if k:  # a retrain: a new version, the order computed again
                        st = Store.open(root / "p")
                        try:
                            training.train(st, Settings.load(st))
                        finally:
                            st.close()
                    for i in range(1 + size["runs"]):
                        t0 = time.perf_counter()
                        r = c.post("/predict", content=body, headers=head)
                        dt = time.perf_counter() - t0
                        assert r.status_code == 200 and len(r.json()["results"]) == TASKS, r.text[:200]
                        (cold if i == 0 else warm).append(dt)
                    t0 = time.perf_counter()
                    r = c.post("/webhook", content=hook, headers=head)
                    webhook.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text[:200]
                    t0 = time.perf_counter()
                    json.dumps(json.loads(body)), json.dumps(r.json())
                    floor.append(time.perf_counter() - t0)
        finally:
            server.should_exit = True
            thread.join(30)
    result.update({
        "body_bytes": len(body), "bytes_per_task": round(len(body) / TASKS, 1),
        "cold_seconds": stats(cold), "warm_seconds": stats(warm),
        "tasks_created_webhook_seconds": stats(webhook), "json_floor_seconds": stats(floor),
        "warm_over_floor": statistics.fmean(warm) / statistics.fmean(floor),
        "all_under_5s": max(cold + warm + webhook) < 5.0, "peak_rss_bytes": peak_rss_bytes()})
    path = write_result(result, args.out)
    print(json.dumps({k: result[k] for k in ("cold_seconds", "warm_seconds",
                                             "tasks_created_webhook_seconds",
                                             "all_under_5s")}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
