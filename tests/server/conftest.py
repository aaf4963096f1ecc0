"""Fixtures of the service suites: a small project with an open round, users, and a
test client over `create_app` with a clock the test moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The service is the `serve` extra (`make test` installs it); without it, say so.
pytest.importorskip("fastapi", reason="the service needs the serve extra: pip install -e '.[serve]'")

from longtail.engine import users
from longtail.store import Store

LABELS = ["billing", "card", "transfer"]


class Clock:
    """A clock a test sets: leases expire when the test says so."""

    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_store(root: Path, n: int = 20, round_sizes: tuple[int, ...] = (10,),
               label_set: list[str] | None = LABELS, db_url: str | None = None) -> Store:
    """A catalog with `n` text samples (rows 0..n-1) and one open round per size, each
    taking the next rows in order (position = order)."""
    store = Store.create(root, {"seed": 0}, db_url=db_url)
    with store.unit_of_work() as uow:
        batch = uow.samples.add_batch("pool.csv", "0" * 64, {})
        uow.samples.insert(batch, [(i, f"s{i}", f"{i:032x}", f"text number {i}",
                                    json.dumps({"source": "web"})) for i in range(n)])
        if label_set is not None:
            uow.label_set.set(label_set)
        start = 0
        for size in round_sizes:
            items = [(start + k, k, "selected") for k in range(size)]
            uow.rounds.add("random", {"budget": size}, 0, {"strategy": "random"}, items, None)
            start += size
    return store


@pytest.fixture
def db_url(catalog_url):
    """The service suites' name for `catalog_url` (tests/conftest.py): None (SQLite) or
    a PostgreSQL URL in a fresh schema of this test; skipped without a server unless
    LONGTAIL_TEST_PG is set."""
    return catalog_url


@pytest.fixture(autouse=True)
def _ml_workers_stopped(request):
    """Label Studio mode's worker thread (retrain, pin) finishes what a test asked of it
    before the test's catalog goes: on PostgreSQL, a query in flight would deadlock with
    the schema's DROP. Torn down before `db_url` (requested here when the test uses it,
    so no test gains a parameter)."""
    if "db_url" in request.fixturenames:
        request.getfixturevalue("db_url")
    yield
    from longtail.server.ml_backend import MLWorker

    for worker in list(MLWorker.made):
        worker.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, db_url) -> Store:
    """The small project, on SQLite and on PostgreSQL (see `db_url`)."""
    s = make_store(tmp_path / "proj", db_url=db_url)
    yield s
    s.close()


@pytest.fixture
def people(store: Store) -> dict[str, tuple[users.User, str]]:
    return {name: users.add_user(store, name, role)
            for name, role in (("ann", "annotator"), ("bob", "annotator"), ("cat", "annotator"),
                               ("root", "admin"))}


# -- the pages in a real browser (Playwright driving Debian's Chromium) -----------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def served():
    """Serve a project on a free loopback port, in a thread: `served(store, settings=None,
    clock=None)` -> its base URL. Every server started is stopped after the test."""
    import socket
    import threading
    import time

    import uvicorn

    from longtail.server.app import create_app
    from longtail.server.settings import ServerSettings

    running = []

    def start(store: Store, settings=None, clock=None) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        extra = {"clock": clock} if clock is not None else {}
        server = uvicorn.Server(uvicorn.Config(
            create_app(store.root, settings or ServerSettings(), **extra),
            host="127.0.0.1", port=port, log_level="warning"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        running.append((server, th))
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started, "the server did not start"
        return f"http://127.0.0.1:{port}"

    yield start
    for server, th in running:
        server.should_exit = True
        th.join(10)


@pytest.fixture
def chromium():
    """(browser, expect): Chromium, headless, with Playwright's `expect` waiting up to
    20 s (a loaded CI machine renders slowly); skipped without Chromium or Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        sync_api.expect.set_options(timeout=20_000)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser, sync_api.expect
        finally:
            browser.close()


def sign_in(browser, url: str, token: str, *, width: int = 1100, height: int = 700):
    """A new page at `url` (a page of the service), signed in with `token` typed on the
    keyboard."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.focus("#token")
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    return page
