"""Record what longtail sees of a real Label Studio 1.23.2, as JSON fixtures the tests
replay (tests/server/test_label_studio_recorded.py); no Label Studio is needed in CI.

    python tools/record_label_studio.py [--venv DIR] [--out tests/fixtures/label_studio]

It installs `label-studio==1.23.2` into its own virtualenv (`--venv`, created when it
lacks it; PyPI must be reachable then), starts it on 127.0.0.1 with its default
settings plus the two documented network settings (ML_BLOCK_LOCAL_IP=false,
SSRF_PROTECTION_ENABLED=false) in a fresh data folder, makes a Personal Access Token
for its admin, starts `longtail serve --label-studio` in this process on a small
project (built by `build_project` from `pool.csv`, the same way the tests build it),
and drives Label Studio through its API as a team would: create a project, connect
longtail as its ML backend (basic auth), import tasks, retrieve predictions, ask
`/next`, annotate, update, delete, skip, pass `--retrain-every`, connect a second
project (refused), run `label-studio sync`, rotate the PAT (the old one is refused).

Every request Label Studio sends longtail and longtail's answer (`to_longtail`), and
every request longtail sends Label Studio and its answer (`to_label_studio`), is saved
in order in `exchanges.json`; `steps.json` lists the driver's own calls (what a user
does) with their status; `export.json` is the project's JSON export at the end (what
`longtail label-studio import` reads). Both servers are stopped on the way out, whatever happens.

With LONGTAIL_LIVE_LABEL_STUDIO=1, tests/server/test_label_studio_recorded.py runs
`record` against a fresh Label Studio and checks the same things on what it recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LS_VERSION = "1.23.2"
EMAIL, PASSWORD = "admin@example.com", "longtail-Recorder-1"
ML_USER, ML_PASSWORD = "labelstudio", "recorded-ml-password"
LABELS = ["billing", "card", "transfer"]
HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "label_studio"
ML_PATHS = ("/health", "/setup", "/predict", "/webhook")


# -- the project both the recorder and the replaying tests build ---------------------------

def write_pool(path: Path, n: int = 60, seed: int = 0) -> Path:
    """A small pool: three separable clusters with 8-dim vectors, a text and a truth
    column (the vectors make training fast and deterministic)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)) * 3
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.normal(size=(n, 8))
    words = {"billing": "invoice charged twice", "card": "my card was declined",
             "transfer": "money transfer pending"}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", *[f"v{j}" for j in range(8)], "truth"])
        for i in range(n):
            lab = LABELS[y[i]]
            w.writerow([f"s{i}", f"{words[lab]} (customer {i})",
                        *[f"{v:.5f}" for v in X[i]], lab])
    return path


def build_project(root: Path, pool: Path) -> Any:
    """The longtail project the fixtures were recorded on: the pool ingested, the label
    set closed, 24 labels from the truth, a model, and an open round of 10 (random,
    seeded). Returns the open store (the caller closes it)."""
    from longtail.engine import data, labels, rounds, training
    from longtail.engine.settings import Settings
    from longtail.store import Store

    st = Store.create(root, {"seed": 0, "eval_rate": 0.0})
    data.ingest(st, Settings.load(st), pool, id="id", text="text", vector_prefix="v")
    with st.unit_of_work() as uow:
        uow.label_set.set(LABELS)
    truth = {r["id"]: r["truth"] for r in csv.DictReader(open(pool))}
    labels.record_labels(st, [labels.LabelEvent(f"s{i}", truth[f"s{i}"]) for i in range(24)])
    training.train(st, Settings.load(st))
    rounds.plan_round(st, Settings.load(st), 10, strategy="random", seed=0)
    return st


# -- recording --------------------------------------------------------------------------------

class Log:
    """The exchanges in order, from any thread."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.steps: list[dict] = []
        self._lock = threading.Lock()
        self.step = "start"

    def add(self, item: dict) -> None:
        with self._lock:
            self.items.append({"n": len(self.items), "step": self.step, **item})


def _body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class RecordingTransport:
    """An httpx transport that sends for real and logs each exchange (to_label_studio)."""

    def __init__(self, log: Log):
        import httpx

        self.inner, self.log = httpx.HTTPTransport(), log

    def handle_request(self, request: Any) -> Any:
        import httpx

        request.read()
        response = self.inner.handle_request(request)
        content = response.read()
        response.close()
        self.log.add({"direction": "to_label_studio", "method": request.method,
                      "path": request.url.path, "query": request.url.query.decode(),
                      "authorization": request.headers.get("authorization"),
                      "body": _body(request.content), "status": response.status_code,
                      "response": _body(content)})
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def close(self) -> None:
        self.inner.close()


class RecordingApp:
    """ASGI middleware around the service: logs Label Studio's calls to the ML-backend
    routes and longtail's answers (to_longtail)."""

    def __init__(self, app: Any, log: Log):
        self.app, self.log = app, log

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in ML_PATHS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        out: dict = {"body": []}

        async def rx() -> dict:
            msg = await receive()
            if msg["type"] == "http.request":
                chunks.append(msg.get("body", b""))
            return msg

        async def tx(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                out["body"].append(msg.get("body", b""))
            await send(msg)

        t0 = time.perf_counter()
        await self.app(scope, rx, tx)
        headers = {k.decode(): v.decode() for k, v in scope.get("headers", [])}
        self.log.add({"direction": "to_longtail", "method": scope["method"],
                      "path": scope["path"], "query": scope.get("query_string", b"").decode(),
                      "authorization": headers.get("authorization"),
                      "content_type": headers.get("content-type"),
                      "body": _body(b"".join(chunks)), "status": out.get("status"),
                      "response": _body(b"".join(out["body"])),
                      "ms": round(1000 * (time.perf_counter() - t0), 1)})


def ensure_venv(venv: Path) -> Path:
    """The `label-studio` executable of `venv`, installing label-studio==1.23.2 there
    when it is missing (its own virtualenv: it pins Django and friends)."""
    exe = venv / "bin" / "label-studio"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}"],
                   check=True)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, seconds: float, proc: Any = None, any_status: bool = False) -> None:
    """Until `url` answers 200 (any status with `any_status`)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200 or any_status:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not come up within {seconds:.0f} s")


class LabelStudio:
    """A Label Studio on loopback in a fresh data folder; `stop()` ends its process group."""

    def __init__(self, exe: Path, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false",
               "LABEL_STUDIO_BASE_DATA_DIR": str(folder)}
        self.logfile = open(folder / "label-studio.log", "w")
        self.proc = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "-p", str(self.port), "--data-dir", str(folder), "--username", EMAIL,
             "--password", PASSWORD], env=env, stdout=self.logfile, stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logfile.close()


def make_pat(url: str) -> str:
    """A Personal Access Token for the admin, as the UI makes one (Account & Settings >
    Personal Access Token): signed in with a session, POST /api/token/."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as c:
        c.get("/user/login/")
        c.post("/user/login/", data={"email": EMAIL, "password": PASSWORD,
                                     "csrfmiddlewaretoken": c.cookies.get("csrftoken")},
               headers={"Referer": url + "/user/login/"})
        r = c.post("/api/token/", headers={"X-CSRFToken": c.cookies.get("csrftoken") or "",
                                           "Referer": url + "/"})
        r.raise_for_status()
        return r.json()["token"]


class Driver:
    """The user's side: Label Studio's API with a Bearer token from the PAT; each call
    is a step in `steps.json`."""

    def __init__(self, url: str, pat: str, log: Log):
        import httpx

        self.c = httpx.Client(base_url=url, timeout=300)
        self.pat, self.log = pat, log
        self.settle: Any = None
        self.access = self.c.post("/api/token/refresh/", json={"refresh": pat}).json()["access"]

    def __call__(self, step: str, method: str, path: str, **kw: Any) -> Any:
        self.log.step = step
        r = self.c.request(method, path, headers={"Authorization": f"Bearer {self.access}"},
                           **kw)
        if r.status_code == 401:  # the access token lives 5 minutes
            self.access = self.c.post("/api/token/refresh/", json={"refresh": self.pat}
                                      ).json()["access"]
            r = self.c.request(method, path, headers={"Authorization": f"Bearer {self.access}"},
                               **kw)
        if self.settle is not None:  # longtail's worker done before the next step:
            self.settle()  # the recording does not depend on how fast it trains
        got = _body(r.content)
        shown = got if len(r.content) < 4000 else {  # long lists: their shape only
            "_truncated": len(r.content),
            "keys": sorted(got) if isinstance(got, dict) else None,
            "first": (got.get("tasks") or [None])[0] if isinstance(got, dict) else
            (got[0] if isinstance(got, list) and got else None)}
        sent = kw.get("json")
        if isinstance(sent, list) and len(json.dumps(sent)) > 4000:
            sent = {"_truncated": len(sent), "first": sent[:2]}
        self.log.steps.append({"step": step, "method": method, "path": path,
                               "params": kw.get("params"), "json": sent,
                               "status": r.status_code, "response": shown})
        return got


def _choice(label: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices",
             "value": {"choices": [label]}}]


def record(venv: Path, out: Path, work: Path | None = None) -> dict:
    """Run the whole flow against a fresh Label Studio and write the fixtures to `out`;
    a summary of what was seen."""
    import uvicorn

    from longtail.engine import labelstudio
    from longtail.engine.settings import Settings
    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings

    exe = ensure_venv(venv)
    work = Path(work or tempfile.mkdtemp(prefix="longtail-ls-record-"))
    out.mkdir(parents=True, exist_ok=True)
    pool = write_pool(out / "pool.csv")
    log = Log()
    (work / "ls-data").mkdir(parents=True, exist_ok=True)
    ls = LabelStudio(exe, work / "ls-data")
    server = thread = None
    try:
        wait_up(ls.url + "/health", 600, ls.proc)
        pat = make_pat(ls.url)
        st = build_project(work / "project", pool)
        tasks = [{"data": t.data} for t in labelstudio.export_tasks(st, Settings.load(st))]
        with st.reading() as uow:
            text_of = {e: t for chunk in uow.samples.iter() for _, e, t, _ in chunk}
        st.close()
        port = free_port()
        settings = ServerSettings(label_studio=True, label_studio_url=ls.url,
                                  label_studio_token=pat, retrain_every=3, auto_round=10,
                                  ml_auth=f"{ML_USER}:{ML_PASSWORD}")
        app = create_app(work / "project", settings, ls_transport=RecordingTransport(log))
        server = uvicorn.Server(uvicorn.Config(RecordingApp(app, log), host="127.0.0.1",
                                               port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        longtail = f"http://127.0.0.1:{port}"
        wait_up(longtail + "/health", 60, any_status=True)
        ls_api = Driver(ls.url, pat, log)
        cfg = labelstudio.labeling_config(LABELS)
        pid = ls_api("create project", "POST", "/api/projects",
                     json={"title": "longtail live", "label_config": cfg})["id"]
        ml = ls_api("connect longtail as the ML backend", "POST", "/api/ml", json={
            "project": pid, "url": longtail, "title": "longtail", "auth_method": "BASIC_AUTH",
            "basic_auth_user": ML_USER, "basic_auth_pass": ML_PASSWORD,
            "is_interactive": False})
        worker = app.state.service.ml_backend.worker
        ls_api.settle = lambda: worker.wait(timeout=300)
        worker.wait(timeout=120)  # longtail renames its backend to the served version
        # Label Studio made a webhook to <backend>/webhook without credentials; longtail
        # gave it the basic-auth header (its worker, recorded as to_label_studio).
        hooks = ls_api("webhooks after connecting", "GET", "/api/webhooks",
                       params={"project": pid})
        ls_api("project after connecting", "GET", f"/api/projects/{pid}")
        # Tasks: the open round's (with longtail_id), the rest of the pool by text only,
        # and one longtail does not know.
        round_ids = {t["data"]["longtail_id"] for t in tasks}
        data = [{"data": {k: t["data"][k] for k in ("text", "longtail_id")}} for t in tasks]
        data += [{"data": {"text": text_of[e]}} for e in sorted(text_of, key=lambda e: int(e[1:]))
                 if e not in round_ids]
        data += [{"data": {"text": "a text longtail has never seen"}}]
        ls_api("import tasks", "POST", f"/api/projects/{pid}/import", json=data)
        listed = ls_api("list tasks", "GET", "/api/tasks",
                        params={"project": pid, "page_size": 200})["tasks"]
        ls_api("use uncertainty sampling", "PATCH", f"/api/projects/{pid}",
               json={"sampling": "Uncertainty sampling"})
        ls_api("retrieve predictions", "POST", "/api/dm/actions",
               params={"id": "retrieve_tasks_predictions", "project": pid},
               json={"selectedItems": {"all": True, "excluded": []}})
        worker.wait(timeout=120)
        ls_api("project after retrieving predictions", "GET", f"/api/projects/{pid}")
        ls_api("sort by prediction score", "GET", "/api/tasks", params={
            "project": pid, "page_size": 200, "fields": "all",
            "query": json.dumps({"ordering": ["tasks:predictions_score"]})})
        first = ls_api("next task", "GET", f"/api/projects/{pid}/next")
        by_ext = {t["data"].get("longtail_id"): t["id"] for t in listed}
        truth = {r["id"]: r["truth"] for r in csv.DictReader(open(pool))}
        order = [t["data"]["longtail_id"] for t in tasks]
        a1 = ls_api("annotate", "POST", f"/api/tasks/{by_ext[order[0]]}/annotations",
                    json={"result": _choice(truth[order[0]]), "lead_time": 4.2})
        wrong = next(lab for lab in LABELS if lab != truth[order[1]])
        a2 = ls_api("annotate (wrong)", "POST", f"/api/tasks/{by_ext[order[1]]}/annotations",
                    json={"result": _choice(wrong), "lead_time": 2.5})
        ls_api("update an annotation", "PATCH", f"/api/annotations/{a2['id']}",
               json={"result": _choice(truth[order[1]])})
        ls_api("skip a task", "POST", f"/api/tasks/{by_ext[order[2]]}/annotations",
               json={"result": [], "was_cancelled": True, "lead_time": 1.0})
        a4 = ls_api("annotate then delete", "POST", f"/api/tasks/{by_ext[order[3]]}/annotations",
                    json={"result": _choice(truth[order[3]]), "lead_time": 1.5})
        ls_api("delete an annotation", "DELETE", f"/api/annotations/{a4['id']}")
        for e in order[4:9]:
            ls_api("annotate the round", "POST", f"/api/tasks/{by_ext[e]}/annotations",
                   json={"result": _choice(truth[e]), "lead_time": 3.0})
        worker.wait(timeout=300)
        log.step = "after the retrain"
        ls_api("project after the retrain", "GET", f"/api/projects/{pid}")
        ls_api("ML backend after the retrain", "GET", f"/api/ml/{ml['id']}")
        ls_api("retrieve predictions again", "POST", "/api/dm/actions",
               params={"id": "retrieve_tasks_predictions", "project": pid},
               json={"selectedItems": {"all": True, "excluded": []}})
        ls_api("next task after the retrain", "GET", f"/api/projects/{pid}/next")
        other = ls_api("create a second project", "POST", "/api/projects",
                       json={"title": "another team", "label_config": cfg})["id"]
        ls_api("connect longtail to the second project (refused)", "POST", "/api/ml", json={
            "project": other, "url": longtail, "title": "longtail",
            "auth_method": "BASIC_AUTH", "basic_auth_user": ML_USER,
            "basic_auth_pass": ML_PASSWORD})
        # A delivery that never came: the webhook off while one task is labeled, and
        # a task longtail does not know labeled (its webhook is refused, 422).
        hook_id = hooks[0]["id"] if hooks else None
        if hook_id is not None:
            ls_api("turn the webhook off", "PATCH", f"/api/webhooks/{hook_id}",
                   json={"is_active": False})
        ls_api("annotate while the webhook is off", "POST",
               f"/api/tasks/{by_ext[order[9]]}/annotations",
               json={"result": _choice(truth[order[9]]), "lead_time": 2.0})
        if hook_id is not None:
            ls_api("turn the webhook on", "PATCH", f"/api/webhooks/{hook_id}",
                   json={"is_active": True})
        unknown = next(t["id"] for t in listed if "longtail_id" not in t["data"]
                       and t["data"]["text"] == "a text longtail has never seen")
        ls_api("annotate a task longtail does not know", "POST",
               f"/api/tasks/{unknown}/annotations", json={"result": _choice("card")})
        # sync: what the webhooks missed is recorded, what they recorded is not
        log.step = "label-studio sync"
        from longtail.interop.label_studio_api import LabelStudioAPI
        from longtail.store import Store

        sync_api = LabelStudioAPI(ls.url, pat, transport=RecordingTransport(log))
        st2 = Store.open(work / "project")
        try:
            synced = labelstudio.sync(st2, sync_api, pid)
        finally:
            st2.close()
        sync_api.close()
        # The skipped task answered after all: the round's last open item, so the round
        # closes and --auto-round plans the next; the backend is renamed to it.
        ls_api("answer the skipped task", "POST", f"/api/tasks/{by_ext[order[2]]}/annotations",
               json={"result": _choice(truth[order[2]]), "lead_time": 2.0})
        worker.wait(timeout=300)
        ls_api("project after the next round", "GET", f"/api/projects/{pid}")
        ls_api("retrieve predictions for the next round", "POST", "/api/dm/actions",
               params={"id": "retrieve_tasks_predictions", "project": pid},
               json={"selectedItems": {"all": True, "excluded": []}})
        ls_api("next task in the next round", "GET", f"/api/projects/{pid}/next")
        # The file path: Label Studio's JSON export, as `longtail label-studio import`
        # reads it (kept whole in export.json).
        export = ls_api("export JSON", "GET", f"/api/projects/{pid}/export",
                        params={"exportType": "JSON"})
        rotated = ls_api("rotate the PAT", "POST", "/api/token/rotate/", json={"refresh": pat})
        log.step = "the old PAT after rotation"
        old = LabelStudioAPI(ls.url, pat, transport=RecordingTransport(log))
        try:
            old.fetch(f"/api/projects/{pid}")
            refused = False
        except Exception:  # noqa: BLE001 - the refusal is what is recorded
            refused = True
        old.close()
        summary = {"label_studio": LS_VERSION, "project": pid, "second_project": other,
                   "first_next": first.get("id") if isinstance(first, dict) else None,
                   "annotations": [a1["id"], a2["id"], a4["id"]],
                   "synced": synced.recorded, "sync_repeats": synced.repeats,
                   "old_pat_refused": refused, "rotated": "refresh" in (rotated or {}),
                   "retrains": app.state.service.ml_backend.worker.retrains,
                   "rounds_planned": app.state.service.ml_backend.worker.planned,
                   "worker_errors": app.state.service.ml_backend.worker.errors,
                   "pat": pat}
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(30)
        ls.stop()
    (out / "exchanges.json").write_text(json.dumps(log.items, indent=1) + "\n")
    (out / "steps.json").write_text(json.dumps(log.steps, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "export.json").write_text(json.dumps(export, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache" / "longtail" /
                    f"label-studio-{LS_VERSION}")
    ap.add_argument("--out", type=Path, default=FIXTURES)
    args = ap.parse_args()
    # A TERM (timeout, Ctrl-\\) unwinds through `record`'s finally: both servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary = record(args.venv, args.out)
    print(json.dumps({k: v for k, v in summary.items() if k != "pat"}, indent=1))


if __name__ == "__main__":
    main()
