"""Commands about the model: train, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import JsonOpt, ProjectOpt, console, emit, err, fmt_metric, handled
from longtail.cli.data import open_project


@app.command()
@handled
def train(project: ProjectOpt = Path("."),
          encoder: Annotated[str | None, typer.Option(help="Vector set to train on (default: "
                                                      "the project's).")] = None,
          cold: Annotated[bool, typer.Option("--cold", help="Train from scratch, not "
                                             "warm-started.")] = False,
          as_json: JsonOpt = False) -> None:
    """Train the learner on the labeled pool samples and score it on the eval set.

    Example: longtail train -p my-project
    """
    with open_project(project) as p:
        result = p.train(encoder=encoder, warm_start=not cold)
    emit(result, as_json, render_train)


def render_train(r: dict) -> None:
    """The model line, its eval scores, lift and the stopping hint."""
    if r.get("skipped"):
        console.print(r.get("reason", "nothing new to train on"))
        return
    console.print(f"model {r['model_id']}: {r['labels']} labels, {r['classes']} classes, "
                  f"fit in {r['fit_seconds']} s")
    if "eval" in r:
        e = r["eval"]
        console.print(f"eval set ({e['n']} labeled): accuracy {fmt_metric(e['accuracy'])}, "
                      f"macro-F1 {fmt_metric(e['macro_f1'])}")
    if "lift" in r:
        console.print(f"lift: {r['lift']['verdict']}")
    if "stopping" in r:
        console.print(f"stopping: {r['stopping']}")
    for w in r.get("warnings") or []:
        err.print(f"[yellow]{w}[/yellow]", highlight=False, soft_wrap=True)


@app.command()
@handled
def evaluate(project: ProjectOpt = Path("."),
             test: Annotated[Path | None, typer.Option(help="A labeled file outside the pool "
                                                       "(default: the managed eval set).")] = None,
             id: Annotated[str, typer.Option("--id", help="Id column of the test file.")] = "id",
             text: Annotated[str, typer.Option(help="Text column of the test file.")] = "text",
             label: Annotated[str, typer.Option(help="Label column of the test file.")] = "label",
             vector_prefix: Annotated[str | None, typer.Option(
                 help="Vector columns PREFIX0, PREFIX1, ... of the test file (a project "
                      "with precomputed vectors).")] = None,
             vector: Annotated[str | None, typer.Option(
                 help="A list column of the test file holding each vector.")] = None,
             as_json: JsonOpt = False) -> None:
    """Score the latest model, with bootstrap 95% intervals.

    Example: longtail evaluate -p my-project --test test.csv --label label
    """
    with open_project(project) as p:
        result = p.evaluate(test, id=id, text=text, label=label, vector=vector,
                            vector_prefix=vector_prefix)
    if result is None:
        message = ("no labeled eval samples yet: label the eval rows `query` puts first, "
                   "or pass --test FILE")
        if as_json:
            emit({"error": {"type": "NoEvalSet", "message": message}}, True)
        else:
            err.print(f"[yellow]{message}[/yellow]")
        raise typer.Exit(1)

    def render(r: dict) -> None:
        from rich.table import Table

        table = Table(title=f"model {r['model_id']} on {r['eval_set']} (n={r['n']})")
        table.add_column("metric")
        table.add_column("value [95% CI]")
        for k in ("accuracy", "macro_f1", "worst_class_recall"):
            table.add_row(k, fmt_metric(r[k]))
        console.print(table)

    emit(result, as_json, render)
