"""Render the report's data as one HTML file that works offline.

Plots are plotly figures drawn as SVG (no WebGL, so a headless browser without a GPU
draws them and a test can count their points); plotly.js is inlined once. Each section
has a renderer ``_NAME(data) -> html`` registered in ``RENDERERS`` under the name of
its data section (see ``longtail.engine.report.SECTIONS``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#c9cfdb}
main{max-width:1180px;margin:0 auto;padding:16px 32px 48px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;margin:18px 0;padding:16px 20px}
h2{font-size:17px;margin:0 0 10px}
.kpis{display:flex;gap:14px;flex-wrap:wrap}
.kpi{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:10px 16px;min-width:120px}
.kpi b{display:block;font-size:20px}
.kpi span{color:#667;font-size:12px}
.verdict{font-size:15px;padding:8px 12px;border-left:4px solid #3b7ddd;background:#eef4fd}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#f0f2f5}
.flag{color:#b3261e;font-weight:600}
.ex{color:#445;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.note{color:#667;font-size:12px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fig(fig: Any, name: str) -> str:
    """A plotly figure as a div (no JavaScript library: the page inlines it once)."""
    fig.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 45}, height=360,
                      template="plotly_white", font={"size": 12})
    return (f'<div class="lt-plot" data-plot="{_e(name)}">'
            + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot-{name}",
                          config={"displaylogo": False, "responsive": True})
            + "</div>")


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


# --------------------------------------------------------------------------- sections


def _curves(d: dict) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = {"accuracy": "#3b7ddd", "macro_f1": "#2f9e6b"}
    for metric, pts in d["curves"].items():
        if not pts:
            continue
        x = [p["n_labels"] for p in pts]
        fig.add_trace(go.Scatter(
            x=x, y=[p["value"] for p in pts], mode="lines+markers",
            name=f"{metric} (selected)", line={"color": colours.get(metric)},
            error_y={"type": "data", "symmetric": False,
                     "array": [(p["hi"] - p["value"]) if p["hi"] is not None else 0 for p in pts],
                     "arrayminus": [(p["value"] - p["lo"]) if p["lo"] is not None else 0
                                    for p in pts]}))
    if d["random_arm"]:
        fig.add_trace(go.Scatter(x=[p["n_labels"] for p in d["random_arm"]],
                                 y=[p["value"] for p in d["random_arm"]], mode="markers",
                                 name="random arm (accuracy)",
                                 text=[p["source"] for p in d["random_arm"]],
                                 marker={"symbol": "x", "size": 10, "color": "#c0392b"}))
    fig.update_layout(title="Learning curves on the managed eval set (95% intervals)",
                      xaxis_title="labels", yaxis_title="score")
    return "<section><h2>Learning curves</h2>" + _fig(fig, "curves") + "</section>"


def _lift(d: dict) -> str:
    eq = d.get("equal_count") or {}
    rows = ""
    if eq:
        rows += (f"<tr><td>at equal label count ({_e(eq.get('method'))})</td>"
                 f"<td>{100 * eq['lift']:+.1f} points</td>"
                 f"<td>[{100 * eq['lo']:+.1f}, {100 * eq['hi']:+.1f}]</td>"
                 f"<td>{_e(eq.get('n_labels'))} labels each</td></tr>")
    pr = d.get("per_round")
    if pr:
        rows += (f"<tr><td>per round, combined</td><td>{100 * pr['lift']:+.1f} points</td>"
                 f"<td>[{100 * pr['lo']:+.1f}, {100 * pr['hi']:+.1f}]</td>"
                 f"<td>{pr['rounds']} rounds</td></tr>")
    return (f'<section><h2>Lift over random</h2><p class="verdict">{_e(d.get("verdict"))}</p>'
            f"<table><tr><th>measure</th><th>lift</th><th>95% interval</th><th>on</th></tr>"
            f"{rows}</table></section>")


def _transfer(d: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(t['learner'])}</td><td>{_e(t['selected_with'])}</td>"
        f"<td>{100 * t['gain']:+.1f} points</td>"
        f"<td>[{100 * t['lo']:+.1f}, {100 * t['hi']:+.1f}] ({100 * t['level']:.0f}%)</td>"
        f"<td>{_pct(t['acc_selected'])} vs {_pct(t['acc_random'])}</td>"
        f"<td>{_e(t['n_labels'])} labels each ({_e(t['method'])})</td></tr>"
        for t in d["results"])
    return ("<section><h2>Does the selection carry over?</h2><p class=note>Another model "
            "family trained on the labels selection bought and on as many random labels "
            "(<code>longtail transfer</code>): the gain in accuracy on the eval set.</p>"
            "<table><tr><th>trained with</th><th>selected with</th><th>gain</th>"
            "<th>interval</th><th>accuracy, selected vs random</th><th>on</th></tr>"
            f"{rows}</table></section>")


def _classes(d: dict) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Bar(x=d["classes"], y=d["pool_predicted"], name="pool (predicted class)",
                         marker_color="#9aa7bd"))
    fig.add_trace(go.Bar(x=d["classes"], y=d["labeled"], name="labeled", marker_color="#3b7ddd"))
    fig.update_layout(title="Class distribution: labeled against the pool (log scale)",
                      barmode="group", yaxis_type="log", yaxis_title="samples")
    return "<section><h2>Classes</h2>" + _fig(fig, "classes") + "</section>"


def _map(d: dict) -> str:
    import plotly.graph_objects as go

    x, y = d["x"], d["y"]
    hover = [f"row {r}" + (f", label {lab}" if lab else "") for r, lab in
             zip(d["rows"], d["label"], strict=True)]
    figs = []
    state = go.Figure()
    for s, colour in (("unlabeled", "#c3cad6"), ("labeled", "#d9480f")):
        idx = [i for i, v in enumerate(d["state"]) if v == s]
        state.add_trace(go.Scatter(x=[x[i] for i in idx], y=[y[i] for i in idx], mode="markers",
                                   name=s, text=[hover[i] for i in idx],
                                   marker={"size": 5 if s == "unlabeled" else 7, "color": colour}))
    state.update_layout(title="Labeled or not")
    figs.append((state, "map-state"))
    if "predicted" in d:
        pred = go.Figure()
        classes = sorted(set(d["predicted"]))
        for c in classes:
            idx = [i for i, v in enumerate(d["predicted"]) if v == c]
            pred.add_trace(go.Scatter(x=[x[i] for i in idx], y=[y[i] for i in idx],
                                      mode="markers", name=c, text=[hover[i] for i in idx],
                                      marker={"size": 5}, showlegend=len(classes) <= 20))
        pred.update_layout(title="Predicted class")
        figs.append((pred, "map-predicted"))
        err = go.Figure(go.Scatter(x=x, y=y, mode="markers", text=hover, name="error",
                                   marker={"size": 5, "color": d["error"], "colorscale": "Reds",
                                           "showscale": True, "cmin": 0, "cmax": 1}))
        err.update_layout(title="Predicted error (1 − confidence)")
        figs.append((err, "map-error"))
    if "novelty" in d:
        nov = go.Figure(go.Scatter(x=x, y=y, mode="markers", text=hover, name="novelty",
                                   marker={"size": 5, "color": d["novelty"],
                                           "colorscale": "Viridis", "showscale": True,
                                           "cmin": 0, "cmax": 1}))
        nov.update_layout(title="Novelty (distance to the labeled set, percentile)")
        figs.append((nov, "map-novelty"))
    body = "".join(_fig(f, n) for f, n in figs)
    return (f"<section><h2>The pool in two dimensions</h2><p class=note>{len(x):,} of "
            f"{d['pool_rows']:,} pool rows, projected on their first two principal "
            f"directions.</p><div class=grid>{body}</div></section>")


def _slices(d: dict) -> str:
    rows = []
    for s in d["slices"]:
        ex = "".join(f"<div class=ex>{_e(e['id'])}: {_e(e['text'])} "
                     f"<i>({_e(e['predicted'])}, {_pct(e['confidence'])})</i></div>"
                     for e in s.get("examples", []))
        flag = '<span class=flag>under-represented, struggling</span>' if s["flag"] else (
            "under-represented" if s["under_represented"] else
            "struggling" if s["struggling"] else "")
        rows.append(
            f"<tr><td>{_e(s['name'])}</td><td>{flag}</td><td>{s['pool_rows']:,}</td>"
            f"<td>{_pct(s['pool_share'])} / {_pct(s['labeled_share'])}</td>"
            f"<td>{_pct(s['error'])} [{_pct(s['error_lo'])}, {_pct(s['error_hi'])}]"
            f" <span class=note>({s['eval_labeled']} eval)</span></td>"
            f"<td>{_pct(s['confidence'])}</td><td>{ex}</td></tr>")
    notes = "; ".join(d.get("notes") or [])
    return ("<section><h2>Failure slices</h2><p class=note>Ranked under-represented and "
            "struggling first, then by expected errors per label. Error: the model's "
            "predicted error corrected by the slice's eval labels (95% interval). "
            f"{_e(notes)}</p><table id=slices><tr><th>slice</th><th></th><th>pool rows</th>"
            "<th>pool / labeled share</th><th>error</th><th>confidence</th>"
            f"<th>examples (least confident)</th></tr>{''.join(rows)}</table></section>")


def _triggers(d: dict) -> str:
    def last(t: dict) -> str:
        run = (t.get("runs") or [None])[-1]
        return f"{run['on']}: {run['hits']} of {run['rows']} rows" if run else "not run yet"

    rows = "".join(f"<tr><td>{_e(t.get('name'))}</td><td><code>{_e(t.get('rule'))}</code></td>"
                   f"<td>{_e(t.get('hits', 0))}</td><td>{_e(last(t))}</td></tr>"
                   for t in d["triggers"])
    queued = "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>"
                     for k, v in sorted(d["queued_by_source"].items()))
    return ("<section><h2>Triggers and the queue</h2>"
            "<table><tr><th>trigger</th><th>rule</th><th>hits</th><th>last run</th></tr>"
            f"{rows}</table><h3>Queued for the next round</h3><table><tr><th>source</th>"
            f"<th>rows</th></tr>{queued}</table></section>")


def _rounds(d: dict) -> str:
    rounds = "".join(f"<tr><td>{r['id']}</td><td>{_e(r['created_at'])}</td>"
                     f"<td>{_e(r['strategy'])}</td><td>{_e(r['arm'])}</td><td>{r['size']}</td>"
                     f"<td>{r['labeled']}</td><td>{_e(r['status'])}</td></tr>"
                     for r in d["rounds"])
    versions = "".join(f"<tr><td>{v['id']}</td><td>{_e(v['created_at'])}</td>"
                       f"<td>{_e(v['reason'])}</td><td>{_e(v['round_id'])}</td>"
                       f"<td>{_e(v['n_labeled'])}</td><td>{_e(v['n_samples'])}</td></tr>"
                       for v in d["versions"])
    return ("<section><h2>Rounds and versions</h2><div class=grid><table><tr><th>round</th>"
            "<th>created</th><th>strategy</th><th>arm</th><th>size</th><th>labeled</th>"
            f"<th>status</th></tr>{rounds}</table><table><tr><th>version</th><th>created</th>"
            "<th>reason</th><th>round</th><th>labels</th><th>samples</th></tr>"
            f"{versions}</table></div></section>")


RENDERERS: dict[str, Callable[[dict], str]] = {
    "curves": _curves, "lift": _lift, "transfer": _transfer, "classes": _classes, "map": _map,
    "slices": _slices,
    "triggers": _triggers, "rounds": _rounds,
}


def render(data: dict) -> str:
    """The whole report as one HTML string (about 5 MB: plotly.js is inlined)."""
    import plotly.offline

    p = data["project"]
    acc = (p.get("metrics") or {}).get("accuracy") or {}
    kpis = [("pool samples", f"{p['pool']:,}"), ("labeled (pool)", f"{p['labeled_pool']:,}"),
            ("labeled (eval)", f"{p['labeled_eval']:,}"), ("rounds", p["rounds"]),
            ("models", p["models"]),
            ("accuracy", _pct(acc.get("value")) if acc else "–")]
    head = "".join(f"<div class=kpi><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in kpis)
    body = "".join(RENDERERS[name](data[name]) for name in RENDERERS if name in data)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    payload = json.dumps(data["project"], default=str).replace("</", "<\\/")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>longtail report: {_e(p['project'])}</title><style>{_CSS}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<header><h1>longtail report</h1><p>{_e(p['project'])} · {stamp} · "
        f"{_e(p.get('verdict'))}</p></header><main><div class=kpis>{head}</div>{body}</main>"
        f"<script type=application/json id=report-data>{payload}</script>"
        "</body></html>")
