"""Commands about the long tail: report, slices (and queueing a slice)."""

# No `from __future__ import annotations`: typer reads every command's annotations.

from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import JsonOpt, ProjectOpt, at_least, console, emit, handled
from longtail.cli.data import open_project


@app.command()
@handled
def report(project: ProjectOpt = Path("."),
           out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")]
           = Path("report.html"),
           encoder: Annotated[str | None, typer.Option(help="Vector set (default: the "
                                                       "project's).")] = None,
           as_json: JsonOpt = False) -> None:
    """Write the project report: one HTML file that works offline (learning curves and
    the random arm, the lift verdict, classes, a map of the pool, failure slices,
    triggers, rounds and versions).

    Example: longtail report --out report.html
    """
    with open_project(project) as p:
        result = p.report(out, encoder=encoder)
    emit(result, as_json, lambda r: console.print(
        f"wrote {r['out']} ({r['bytes'] / 1e6:.1f} MB): {', '.join(r['sections'])}"))


@app.command()
@handled
def slices(project: ProjectOpt = Path("."),
           by: Annotated[str, typer.Option(help="all, cluster or metadata.")] = "all",
           limit: Annotated[int, typer.Option(help="Slices to show.")] = 10,
           examples: Annotated[int, typer.Option(help="Example samples per slice.")] = 3,
           enqueue: Annotated[str | None, typer.Option(
               "--enqueue", help="Queue this slice's most useful samples for the next "
                                 "round: cluster:N or COLUMN=VALUE.")] = None,
           n: Annotated[int, typer.Option("-n", help="Samples to queue with --enqueue.")] = 50,
           encoder: Annotated[str | None, typer.Option(help="Vector set (default: the "
                                                       "project's).")] = None,
           as_json: JsonOpt = False) -> None:
    """Where the model struggles: clusters and metadata values ranked under-represented
    and struggling first, with error intervals and examples.

    Example: longtail slices && longtail slices --enqueue cluster:3 -n 40
    """
    at_least("--limit", limit, 0)
    at_least("--examples", examples, 0)
    with open_project(project) as p:
        if enqueue:
            at_least("-n", n, 1)
            result = p.enqueue_slice(enqueue, n, encoder=encoder)
            emit(result, as_json, lambda r: console.print(
                f"queued {r['queued']} samples from {r['source']} ({r['queue']} in the "
                "queue): the next `longtail query` takes them first"))
            return
        result = p.slices(by=by, limit=limit, examples=examples, encoder=encoder)
    emit(result, as_json, render_slices)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def render_slices(r: dict) -> None:
    """A table of slices, then each flagged slice's examples."""
    from rich.table import Table

    t = Table(title=f"failure slices ({r['n_slices']} in all; pool {r['pool']:,}, "
                    f"labeled {r['labeled']:,})")
    for col in ("slice", "", "pool rows", "pool/labeled share", "error [95%]", "conf."):
        t.add_column(col)
    for s in r["slices"]:
        mark = "[red]under-represented, struggling[/]" if s["flag"] else (
            "under-represented" if s["under_represented"] else
            "struggling" if s["struggling"] else "")
        t.add_row(s["name"], mark, f"{s['pool_rows']:,}",
                  f"{_pct(s['pool_share'])} / {_pct(s['labeled_share'])}",
                  f"{_pct(s['error'])} [{_pct(s['error_lo'])}, {_pct(s['error_hi'])}] "
                  f"({s['eval_labeled']} eval)", _pct(s["confidence"]))
    console.print(t)
    for s in r["slices"]:
        if s["examples"]:
            console.print(f"[bold]{s['name']}[/]")
            for e in s["examples"]:
                console.print(f"  {e['id']}: {e['text'][:80]}  ({e['predicted']}, "
                              f"{_pct(e['confidence'])})", markup=False, highlight=False)
    for note in r.get("notes") or []:
        console.print(note, style="dim")
