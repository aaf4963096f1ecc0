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


@app.command()
@handled
def search(project: ProjectOpt = Path("."),
           id: Annotated[list[str] | None, typer.Option(
               "--id", help="A sample id to search like (repeatable).")] = None,
           text: Annotated[str | None, typer.Option(
               help="Free text, through the project's text encoder.")] = None,
           vector: Annotated[str | None, typer.Option(
               help="A vector: comma-separated numbers, or a .npy file.")] = None,
           k: Annotated[int, typer.Option("-k", help="Results.")] = 10,
           split: Annotated[str, typer.Option(help="pool, eval or all.")] = "pool",
           state: Annotated[str, typer.Option(help="any, labeled or unlabeled.")] = "any",
           where: Annotated[list[str] | None, typer.Option(
               help="COLUMN=VALUE on metadata (repeatable: all must hold).")] = None,
           enqueue: Annotated[bool, typer.Option(
               "--enqueue", help="Queue the unlabeled pool hits for the next round.")] = False,
           priority: Annotated[float | None, typer.Option(
               help="Their priority in the queue (default: their similarity).")] = None,
           exact: Annotated[bool, typer.Option("--exact", help="Exact search whatever the "
                                               "pool's size.")] = False,
           encoder: Annotated[str | None, typer.Option(help="Vector set (default: the "
                                                       "project's).")] = None,
           as_json: JsonOpt = False) -> None:
    """Find samples like some samples, a text or a vector (FAISS: exact up to 50,000 rows,
    an IVF index beyond).

    Example: longtail search --text "card stolen abroad" --state unlabeled -k 20 --enqueue
    """
    from longtail.errors import InputError

    at_least("-k", k, 1)
    vec = None
    if vector is not None:
        if vector.endswith(".npy"):
            import numpy as np

            try:
                vec = np.load(vector, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InputError(f"--vector {vector}: cannot be read ({e})") from None
        else:
            try:
                vec = [float(x) for x in vector.split(",") if x.strip()]
            except ValueError:
                raise InputError("--vector must be comma-separated numbers or a .npy "
                                 "file") from None
    with open_project(project) as p:
        result = p.search(ids=id or None, text=text, vector=vec, k=k, split=split,
                          state=state, where=where, encoder=encoder,
                          exact=True if exact else None, enqueue=enqueue, priority=priority)
    emit(result, as_json, render_search)


def render_search(r: dict) -> None:
    """One line per hit, then the queue line."""
    from rich.table import Table

    t = Table(title=f"{len(r['hits'])} like {r['query']} ({r['index']['kind']}, "
                    f"{r['seconds']} s)")
    for col in ("id", "similarity", "split", "label", "text"):
        t.add_column(col)
    for h in r["hits"]:
        t.add_row(h["id"], f"{h['similarity']:.3f}", h["split"], h["label"] or "",
                  h["text"][:70])
    console.print(t)
    if "enqueued" in r:
        q = r["enqueued"]
        console.print(f"queued {q['queued']} for the next round ({q['queue']} in the queue)")


triggers_app = typer.Typer(help="Standing triggers: rules re-run on every ingest and "
                                "round; matches join the discovery queue.",
                           no_args_is_help=True)
app.add_typer(triggers_app, name="triggers")


@triggers_app.command("add")
@handled
def triggers_add(name: Annotated[str, typer.Argument(help="The trigger's name.")],
                 rule: Annotated[str, typer.Argument(help='The rule, e.g. \'meta.country == '
                                                   '"DE" and confidence < 0.5\'.')],
                 project: ProjectOpt = Path("."),
                 priority: Annotated[float, typer.Option(help="Queue priority of its "
                                                         "matches.")] = 1.0,
                 as_json: JsonOpt = False) -> None:
    """Save a trigger. Fields: predicted, confidence, novelty, energy, text, id, split,
    label, meta.NAME, similar("id", ...); operators == != < <= > >=, in [...],
    contains, and, or, not.

    Example: longtail triggers add fraud 'text contains "chargeback" or similar("s17") >= 0.85'
    """
    with open_project(project) as p:
        result = p.add_trigger(name, rule, priority=priority)
    emit(result, as_json, lambda r: console.print(f"trigger {r['name']} saved: it runs on "
                                                  "every ingest and round"))


@triggers_app.command("list")
@handled
def triggers_list(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Every trigger with its hits."""
    with open_project(project) as p:
        result = p.triggers()

    def render(r: list) -> None:
        if not r:
            console.print("no triggers (longtail triggers add NAME RULE)")
        for t in r:
            last = (t.get("runs") or [None])[-1]
            console.print(f"{t['name']}: {t['rule']}  [{t['hits']} queued"
                          + (f"; last {last['on']}: {last['hits']}" if last else "") + "]",
                          markup=False, highlight=False)
    emit(result, as_json, render)


@triggers_app.command("test")
@handled
def triggers_test(rule: Annotated[str, typer.Argument(help="A rule, or a trigger's name.")],
                  project: ProjectOpt = Path("."),
                  examples: Annotated[int, typer.Option(help="Matches to show.")] = 5,
                  as_json: JsonOpt = False) -> None:
    """How many unlabeled pool rows a rule matches now (queues nothing)."""
    at_least("--examples", examples, 0)
    with open_project(project) as p:
        result = p.test_trigger(rule, examples=examples)

    def render(r: dict) -> None:
        console.print(f"{r['hits']} of {r['rows']} unlabeled pool rows match")
        for e in r["examples"]:
            console.print(f"  {e['id']}: {e['text'][:80]}", markup=False, highlight=False)
    emit(result, as_json, render)


@triggers_app.command("remove")
@handled
def triggers_remove(name: Annotated[str, typer.Argument(help="The trigger's name.")],
                    project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Delete a trigger (rows it queued stay queued)."""
    with open_project(project) as p:
        result = p.remove_trigger(name)
    emit(result, as_json, lambda r: console.print(f"trigger {r['removed']} removed"))
