"""`longtail report` writes one HTML file that draws every plot offline, in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from longtail.cli import app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# Per plot: the DOM elements plotly draws for each data point (SVG, no WebGL).
_COUNT = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
  id: el.id,
  traces: (el.data || []).length,
  points: (el.data || []).map(t => (t.x || []).length),
  drawn: el.querySelectorAll('g.trace path.point, g.trace g.point path, g.points path.point').length,
  bars: el.querySelectorAll('g.trace.bars g.point').length,
  error_bars: el.querySelectorAll('g.errorbar').length,
}))"""


def _chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium; .ci/run does)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def test_report_draws_every_plot_offline(tail_project, tmp_path):
    p, (X, y, source) = tail_project
    p.query(20, strategy="random")  # a round, so the rounds section has a row
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["report", "-p", str(p.path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = p.report_data()
    html = out.read_text()
    assert "<script src=" not in html  # nothing to fetch: plotly.js is inlined
    sync_api = _chromium()
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2400})

        def block(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "about:")):
                return route.continue_()
            outside.append(url)
            return route.abort()

        page.route("**/*", block)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 6")
        plots = {d["id"]: d for d in page.evaluate(_COUNT)}
        if not (Path(__file__).parents[2] / "docs" / "report.png").exists():
            page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    assert not outside and not errors
    sample = len(data["map"]["x"])
    # the map: every sampled row drawn once on each of its plots
    for name in ("map-state", "map-predicted", "map-error", "map-novelty"):
        d = plots[f"plot-{name}"]
        assert sum(d["points"]) == sample and d["drawn"] == sample, (name, d)
    assert plots["plot-map-state"]["traces"] == 2
    assert plots["plot-map-predicted"]["traces"] == len(set(data["map"]["predicted"]))
    # classes: one bar per class with a count (log scale: zero bars are not drawn)
    c = data["classes"]
    assert plots["plot-classes"]["traces"] == 2
    want = sum(v > 0 for v in c["labeled"]) + sum(v > 0 for v in c["pool_predicted"])
    assert plots["plot-classes"]["bars"] == want
    # learning curve: one point per model on each metric, with its interval
    cur = data["curves"]["curves"]
    d = plots["plot-curves"]
    assert d["points"][:2] == [len(cur["accuracy"]), len(cur["macro_f1"])]
    assert d["drawn"] >= len(cur["accuracy"]) + len(cur["macro_f1"])
    assert d["error_bars"] >= len(cur["accuracy"])
    # the tables
    assert "source=mobile" in html and "Rounds and versions" in html


def test_dashboard_search_box_and_slices_in_a_browser(tail_project):
    """The dashboard's search box finds samples and queues them; the slices table fills."""
    pytest.importorskip("fastapi")
    import socket
    import threading
    import time

    import uvicorn

    from longtail.engine import users
    from longtail.server.app import create_app

    p, (X, y, source) = tail_project
    token = users.add_user(p.store, "root", "admin")[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(p.path), host="127.0.0.1", port=port,
                                           log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    sync_api = _chromium()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/dashboard")
            page.fill("#token", token)
            page.click("#login-form button")
            page.wait_for_selector("#slices tbody tr")
            assert "source=mobile" in page.inner_text("#slices")
            page.select_option("#search-by", "id")
            page.fill("#search-q", "s1")
            page.check("#search-enqueue")
            page.click("#search-form button")
            page.wait_for_selector("#search tbody tr")
            assert page.locator("#search tbody tr").count() == 20
            assert "queued" in page.inner_text("#search-note")
            browser.close()
    finally:
        server.should_exit = True
        th.join(10)
    assert len(p.queue()) == 20
