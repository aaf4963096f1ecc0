"""Commands about the model: train, evaluate, transfer."""

# No `from __future__ import annotations`: typer reads every command's annotations
# when the CLI starts, and evaluating them from strings costs more than the command.

from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import (
    JsonOpt,
    ProjectOpt,
    WideOpt,
    console,
    emit,
    err,
    fmt_estimate,
    fmt_metric,
    handled,
    people,
    plain,
    warn,
)
from longtail.cli.data import open_project

TOP_CONFUSIONS = 15  # rows of the folded view, when the full matrix does not fit


@app.command()
@handled
def train(project: ProjectOpt = Path("."),
          encoder: Annotated[str | None, typer.Option(help="Vector set to train on (default: "
                                                      "the project's).")] = None,
          cold: Annotated[bool, typer.Option("--cold", help="Train from scratch, not "
                                             "warm-started.")] = False,
          learner: Annotated[str | None, typer.Option(
              help="linear (default), mlp or cnn (torch; cnn on --encoder pixels-raw "
                   "vectors), or any scikit-learn classifier with predict_proba by "
                   "dotted path, e.g. sklearn.ensemble.RandomForestClassifier.")] = None,
          learner_param: Annotated[list[str] | None, typer.Option(
              help="KEY=VALUE for the learner, repeatable; VALUE is read as JSON, else as a "
                   "string (n_estimators=200).")] = None,
          force: Annotated[bool, typer.Option("--force", help="Train even when no label is "
                                              "new since the last model.")] = False,
          release: Annotated[bool, typer.Option("--release", help="Fit the model to ship on "
                                                "every label, eval included, with its "
                                                "accuracy by cross-fitting; kept apart from "
                                                "the loop's models.")] = False,
          mlflow: Annotated[bool, typer.Option(
              "--mlflow", help="Log the model to MLflow (needs the mlflow extra): where "
                               "the project's setting says, else its mlruns/.")] = False,
          mlflow_uri: Annotated[str | None, typer.Option(
              "--mlflow-uri", help="Log the model to MLflow at this directory or tracking "
                                   "URI (implies --mlflow).")] = None,
          as_json: JsonOpt = False) -> None:
    """Train the learner on the labeled pool samples and score it on the eval set.

    With no label new since the last model it trains nothing and says so (exit 0),
    unless --force. With --release, the model to ship instead (see above).

    Example: longtail train --learner sklearn.tree.DecisionTreeClassifier --learner-param max_depth=8
    """
    extra: dict = {}
    if learner_param:
        from longtail.learners import parse_learner_params

        extra["learner_params"] = parse_learner_params(learner_param)
    if learner:
        extra["learner"] = learner
    if force:
        extra["force"] = True
    if mlflow or mlflow_uri:
        extra["mlflow"] = mlflow_uri or True
    with open_project(project) as p:
        if release:
            extra.pop("force", None)
            extra.pop("mlflow", None)
            result = p.release(encoder=encoder, **extra)
            emit(result, as_json, lambda r: render_release(plain(r)))
            return
        result = p.train(encoder=encoder, warm_start=not cold, **extra)
    emit(result, as_json, lambda r: render_train(plain(r)))


def render_release(r: dict) -> None:
    """The release line and its cross-fitted accuracy."""
    console.print(f"release {r['release_id']}: {r['labels']} labels ({r['pool_labels']} pool, "
                  f"{r['eval_labels']} eval), {len(r['classes'])} classes, "
                  f"fit in {people(r['fit_seconds'])} s")
    m = (r.get("metrics") or {}).get("accuracy")
    console.print(f"accuracy {fmt_metric(m)} ({r['estimate']})" if m else r["estimate"])


def _crossfit_line(e: dict) -> None:
    """A small pool's second estimate, named and counted beside the eval set's."""
    c = e.get("crossfit")
    if c:
        console.print(f"every labeled row ({c['n']} labels: {c['pool_labels']} pool, "
                      f"{c['eval_labels']} eval; cross-fitted): accuracy "
                      f"{fmt_metric(c['accuracy'])} — {c['caveat']}")


def render_train(r: dict) -> None:
    """The model line, its eval scores, lift and the stopping hint."""
    if r.get("skipped"):
        console.print(r.get("reason", "nothing new to train on"))
        if r.get("mlflow_run"):
            console.print(f"MLflow run {r['mlflow_run']}")
        return
    console.print(f"model {r['model_id']}: {r['labels']:,} labels, {r['classes']} classes, "
                  f"fit in {people(r['fit_seconds'])} s")
    if "eval" in r:
        e = r["eval"]
        console.print(f"eval set ({e['n']} labeled): accuracy {fmt_metric(e['accuracy'])}, "
                      f"macro-F1 {fmt_metric(e['macro_f1'])}")
        if e.get("estimate"):
            console.print(f"accuracy (the eval budget's): {fmt_estimate(e['estimate'])}")
        _crossfit_line(e)
        for w in e.get("warnings") or []:
            warn(w)
    if "lift" in r:
        console.print(f"lift: {r['lift']['verdict']}")
    if "stopping" in r:
        console.print(f"stopping: {r['stopping']}")
    if r.get("mlflow_run"):
        console.print(f"MLflow run {r['mlflow_run']}")
    for w in r.get("warnings") or []:
        warn(w)


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
             per_class: Annotated[bool, typer.Option(
                 "--per-class", help="Also show precision, recall and F1 of each class and "
                 "the confusion matrix (its most frequent confusions when the full matrix "
                 "is wider than the terminal; --wide for all, --json always has both).")
             ] = False,
             wide: WideOpt = False,
             as_json: JsonOpt = False) -> None:
    """Score the latest model, with bootstrap 95% intervals.

    Example: longtail evaluate -p my-project --test test.csv --label label --per-class
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
        if r.get("estimate"):
            console.print(f"accuracy (the eval budget's): {fmt_estimate(r['estimate'])}; "
                          f"the table's figures are the {r['n']} labeled rows alone "
                          "(uniform; exact interval for accuracy)")
        _crossfit_line(r)
        if per_class and r.get("per_class"):
            console.print(per_class_table(r["per_class"]))
            conf = r.get("confusion")
            if conf:
                print_confusion(conf, wide=wide)
        for w in r.get("warnings") or []:
            warn(w)

    emit(result, as_json, lambda r: render(plain(r)))


def per_class_table(per_class: dict[str, dict]):
    """One row per class: precision, recall, F1, support; the worst recall first."""
    from rich.table import Table

    table = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def num(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    for name, m in sorted(per_class.items(), key=lambda kv: (kv[1].get("recall") is None,
                                                              kv[1].get("recall") or 0, kv[0])):
        table.add_row(name, num(m.get("precision")), num(m.get("recall")), num(m.get("f1")),
                      str(m.get("support", "-")))
    return table


def confusion_width(conf: dict) -> int:
    """Characters the full matrix takes: the row-label column and one column per class,
    each its widest cell plus one space either side and a border."""
    labels, matrix = conf["labels"], conf["matrix"]
    cols = [max([len(lab)] + [len(str(row[j])) for row in matrix])
            for j, lab in enumerate(labels)]
    return 1 + 3 + max((len(lab) for lab in labels), default=0) + sum(3 + w for w in cols)


def confusion_table(conf: dict):
    """Rows are the true class, columns the predicted one."""
    from rich.table import Table

    table = Table(title="confusion (rows: true, columns: predicted)")
    table.add_column("")
    for lab in conf["labels"]:
        table.add_column(lab, justify="right")
    for lab, row in zip(conf["labels"], conf["matrix"], strict=True):
        table.add_row(lab, *(str(v) if v else "." for v in row))
    return table


def top_confusions(conf: dict, limit: int = TOP_CONFUSIONS) -> list[tuple[str, str, int, float]]:
    """The off-diagonal cells, most frequent first: (true, predicted, count, share of the
    true class's rows); ties by name. O(C²) for C classes."""
    labels, matrix = conf["labels"], conf["matrix"]
    cells = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, v in enumerate(row):
            if i != j and v:
                cells.append((labels[i], labels[j], int(v), v / total))
    cells.sort(key=lambda c: (-c[2], c[0], c[1]))
    return cells[:limit]


def print_confusion(conf: dict, *, wide: bool = False) -> None:
    """The full matrix when it fits the console (or with `wide`, however wide); else the
    folded view: its most frequent confusions, one per row, names folded to fit."""
    from rich.console import Console
    from rich.table import Table

    need = confusion_width(conf)
    if need <= console.width:
        console.print(confusion_table(conf))
        return
    if wide:
        # The shared console clips to its width; a wider one of the same kind prints all.
        Console(width=need, force_terminal=console.is_terminal).print(confusion_table(conf))
        return
    cells = top_confusions(conf)
    off = sum(v for i, row in enumerate(conf["matrix"]) for j, v in enumerate(row) if i != j)
    shown = sum(c[2] for c in cells)
    table = Table(
        title=f"most frequent confusions ({len(conf['labels'])} classes: the full matrix "
              f"is {need} columns wide)",
        caption=f"{shown} of {off} errors shown; --wide for the full matrix, --json for all")
    table.add_column("true", overflow="fold")
    table.add_column("predicted", overflow="fold")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("share of true", justify="right", no_wrap=True)
    for true, pred, count, share in cells:
        table.add_row(true, pred, f"{count:,}", f"{share:.3f}")
    if not cells:
        table.add_row("-", "-", "0", "-")
    console.print(table)


@app.command()
@handled
def transfer(project: ProjectOpt = Path("."),
             learner: Annotated[str, typer.Option(
                 help="The other model family: mlp, cnn, linear, or a scikit-learn "
                      "classifier by dotted path.")] = "mlp",
             learner_param: Annotated[list[str] | None, typer.Option(
                 help="KEY=VALUE for that learner, repeatable (VALUE read as JSON).")] = None,
             encoder: Annotated[str | None, typer.Option(
                 help="Vector set that learner trains on (default: the project's), e.g. "
                      "pixels-raw for cnn.")] = None,
             as_json: JsonOpt = False) -> None:
    """Does the labeled set selection built help another model? Trains LEARNER on it and
    on an equal number of random labels, and reports the gain with a 95% interval.

    The random arm is the rounds' control labels (10 or more), else half the eval set,
    cross-fitted. The result is kept and shown by `status`.

    Example: longtail transfer -p my-project --learner sklearn.ensemble.RandomForestClassifier
    """
    params = None
    if learner_param:
        from longtail.learners import parse_learner_params

        params = parse_learner_params(learner_param)
    with open_project(project) as p:
        result = p.transfer(learner, learner_params=params, encoder=encoder)

    def render(r: dict) -> None:
        console.print(
            f"selected with [bold]{r['selected_with']}[/bold], trained with "
            f"[bold]{r['learner']}[/bold] on {r['encoder']}: at {r['n_labels']} labels each, "
            f"{r['acc_selected']:.3f} vs random's {r['acc_random']:.3f} on {r['eval_set']}")
        console.print(f"gain {r['gain'] * 100:+.1f} points "
                      f"[{r['lo'] * 100:+.1f}, {r['hi'] * 100:+.1f}] ({r['level'] * 100:.0f}%): "
                      f"{r['verdict']}")

    emit(result, as_json, lambda r: render(plain(r)))
