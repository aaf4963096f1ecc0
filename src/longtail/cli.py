"""The `longtail` command line: each command parses options, calls one Project method,
and renders the result (a rich table, a progress bar, or JSON with --json)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from longtail.errors import LongtailError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="longtail: decide what to label next, run the loop, prove it pays off.")
console = Console()
err = Console(stderr=True)

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def handled(fn: Callable) -> Callable:
    """Turn a LongtailError into one red line and exit code 2 (no stack trace)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LongtailError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _open(project: Path):
    from longtail.project import Project

    return Project(project)


def _emit(result: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    if as_json or render is None:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        render(result)


class _Bar:
    """A rich progress bar that the API drives through a (done, total) callback."""

    def __init__(self, label: str, quiet: bool = False):
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=err, transient=True,
                                 disable=quiet or not err.is_terminal)
        self.task = None

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        self.task = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int | None) -> None:
        self.progress.update(self.task, completed=done, total=total)


def _kv_table(title: str, data: dict) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for k, v in data.items():
        table.add_row(str(k), str(v))
    return table


def _fmt_metric(m: dict | None) -> str:
    if not m or m.get("value") is None:
        return "-"
    if m.get("lo") is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


@app.command()
@handled
def init(path: Annotated[Path, typer.Argument(help="Directory for the new project.")] = Path("."),
         eval_rate: Annotated[float, typer.Option(help="Share of new samples kept for the "
                                                  "managed eval set.")] = 0.05,
         eval_cap: Annotated[int, typer.Option(help="Most samples in the eval set.")] = 5000,
         eval_stratify: Annotated[str | None, typer.Option(help="Metadata column to stratify "
                                                           "the eval set by.")] = None,
         eval_share: Annotated[float, typer.Option(help="Largest share of a batch given to "
                                                   "pending eval labels.")] = 0.2,
         control_share: Annotated[float, typer.Option(help="Random control slice of each "
                                                      "batch (0 disables).")] = 0.1,
         seed: Annotated[int, typer.Option(help="Project seed.")] = 0) -> None:
    """Create a project: a directory with a SQLite catalog and vector files."""
    from longtail.errors import InputError
    from longtail.project import Project

    for name, value in (("eval-rate", eval_rate), ("eval-share", eval_share),
                        ("control-share", control_share)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"--{name} must be between 0 and 1, got {value}")
    Project.init(path, eval_rate=eval_rate, eval_cap=eval_cap, seed=seed,
                 eval_stratify=eval_stratify, eval_share=eval_share,
                 control_share=control_share).close()
    console.print(f"created project at {path.resolve()}")


@app.command()
@handled
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.")],
    project: ProjectOpt = Path("."),
    id: Annotated[str, typer.Option("--id", help="Column of unique sample ids.")] = "id",
    text: Annotated[str | None, typer.Option(help="Column of text.")] = None,
    label: Annotated[str | None, typer.Option(help="Column of labels (become import "
                                              "annotations).")] = None,
    vector: Annotated[str | None, typer.Option(help="A list column holding each vector.")] = None,
    vector_prefix: Annotated[str | None, typer.Option(help="Vector columns PREFIX0, PREFIX1, "
                                                      "...")] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="Metadata columns to keep (default: "
                                                       "every other column).")] = None,
    update: Annotated[bool, typer.Option(help="Replace samples whose id exists with other "
                                         "content.")] = False,
    float16: Annotated[bool, typer.Option(help="Store vectors as float16.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a file to the pool, all-or-nothing. Re-ingesting the same file changes nothing."""
    with _open(project) as p, _Bar(f"ingest {file.name}", as_json) as bar:
        report = p.ingest(file, id=id, text=text, label=label, vector=vector,
                          vector_prefix=vector_prefix, metadata=metadata, update=update,
                          vector_dtype="float16" if float16 else "float32", progress=bar)
    _emit(report.to_dict(), as_json, lambda r: console.print(
        f"{r['file']}: {r['rows']} rows, [bold]{r['new']} new[/bold], {r['updated']} updated, "
        f"{r['unchanged']} unchanged, {r['labels']} labels, {r['eval_rows']} to the eval set"))


@app.command()
@handled
def embed(project: ProjectOpt = Path("."),
          encoder: Annotated[str, typer.Option(help="precomputed, minilm or tabular.")] = "minilm",
          as_json: JsonOpt = False) -> None:
    """Compute vectors for samples that have none for ENCODER (resumes when interrupted)."""
    with _open(project) as p, _Bar(f"embed ({encoder})", as_json) as bar:
        result = p.embed(encoder, progress=bar)
    _emit(result, as_json, lambda r: console.print(
        f"{r['embedded']} samples embedded with {r['encoder']} ({r['total']} in the project)"))


@app.command("import-labels")
@handled
def import_labels(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet with id and label.")],
    project: ProjectOpt = Path("."),
    id: Annotated[str, typer.Option("--id", help="Column of sample ids.")] = "id",
    label: Annotated[str, typer.Option(help="Column of labels.")] = "label",
    annotator: Annotated[str | None, typer.Option(help="Column naming the annotator.")] = None,
    seconds: Annotated[str | None, typer.Option(help="Column of seconds spent.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record labels; unknown ids are an error; re-importing a file changes nothing."""
    with _open(project) as p:
        result = p.import_labels(file, id=id, label=label, annotator=annotator, seconds=seconds)
    _emit(result, as_json, lambda r: console.print(
        f"{r['rows']} rows: [bold]{r['new_labels']} new labels[/bold], {r['unchanged']} unchanged"
        + (f"; closed rounds {r['closed_rounds']}" if r["closed_rounds"] else "")))


@app.command()
@handled
def train(project: ProjectOpt = Path("."),
          encoder: Annotated[str | None, typer.Option(help="Vector set to train on.")] = None,
          cold: Annotated[bool, typer.Option(help="Train from scratch, not warm-started.")] = False,
          as_json: JsonOpt = False) -> None:
    """Train the learner on the labeled pool samples and score it on the eval set."""
    with _open(project) as p:
        result = p.train(encoder=encoder, warm_start=not cold)

    def render(r: dict) -> None:
        console.print(f"model {r['model_id']}: {r['labels']} labels, {r['classes']} classes, "
                      f"fit in {r['fit_seconds']} s")
        if "eval" in r:
            e = r["eval"]
            console.print(f"eval set ({e['n']} labeled): accuracy {_fmt_metric(e['accuracy'])}, "
                          f"macro-F1 {_fmt_metric(e['macro_f1'])}")
        if "lift" in r:
            console.print(f"lift: {r['lift']['verdict']}")
        if "stopping" in r:
            console.print(f"stopping: {r['stopping']}")

    _emit(result, as_json, render)


@app.command()
@handled
def evaluate(project: ProjectOpt = Path("."),
             test: Annotated[Path | None, typer.Option(help="A labeled file outside the pool "
                                                       "(default: the managed eval set).")] = None,
             id: Annotated[str, typer.Option("--id")] = "id",
             text: Annotated[str, typer.Option(help="Text column of the test file.")] = "text",
             label: Annotated[str, typer.Option(help="Label column of the test file.")] = "label",
             vector_prefix: Annotated[str | None, typer.Option()] = None,
             vector: Annotated[str | None, typer.Option()] = None,
             as_json: JsonOpt = False) -> None:
    """Score the latest model, with bootstrap 95% intervals."""
    with _open(project) as p:
        result = p.evaluate(test, id=id, text=text, label=label, vector=vector,
                            vector_prefix=vector_prefix)
    if result is None:
        err.print("[yellow]no labeled eval samples yet: label the eval rows `query` puts first, "
                  "or pass --test FILE[/yellow]")
        raise typer.Exit(1)

    def render(r: dict) -> None:
        table = Table(title=f"model {r['model_id']} on {r['eval_set']} (n={r['n']})")
        table.add_column("metric")
        table.add_column("value [95% CI]")
        for k in ("accuracy", "macro_f1", "worst_class_recall"):
            table.add_row(k, _fmt_metric(r[k]))
        console.print(table)

    _emit(result, as_json, render)


@app.command()
@handled
def query(budget: Annotated[int, typer.Option("--budget", "-n", help="Samples to select.")] = 100,
          strategy: Annotated[str, typer.Option(help="Strategy name (see `longtail "
                                                "strategies`).")] = "auto",
          out: Annotated[Path | None, typer.Option(help="Export the batch (.csv or .jsonl).")] = None,
          config: Annotated[Path | None, typer.Option(help="Selection config, YAML or JSON.")] = None,
          seed: Annotated[int | None, typer.Option(help="Seed (default: the project's).")] = None,
          project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Select the next batch to label and record it as an open round."""
    cfg = _read_config(config) if config else None
    with _open(project) as p:
        result = p.query(budget, strategy=strategy, out=out, config=cfg, seed=seed)

    def render(r) -> None:
        kinds = {k: r.kinds.count(k) for k in ("eval", "control", "selected")}
        arm = r.log.get("selection", {}).get("arm")
        console.print(f"round {r.round_id}: {len(r.rows)} samples ({kinds['selected']} selected "
                      f"by {r.log['strategy']}" + (f" → {arm}" if arm else "") +
                      f", {kinds['control']} random control, {kinds['eval']} eval)"
                      + (f" written to {r.out}" if r.out else ""))

    _emit(result.to_dict() if as_json else result, as_json, render)


def _read_config(path: Path) -> dict:
    from longtail.errors import InputError

    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        data = yaml.safe_load(text)
    except (ValueError, Exception) as e:  # yaml.YAMLError is not a ValueError
        raise InputError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                         f"{str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a selection config is a mapping, got {type(data).__name__}")
    return data


@app.command()
@handled
def status(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Counts, classes, rounds and the latest metrics."""
    with _open(project) as p:
        result = p.status()

    def render(r: dict) -> None:
        top = ", ".join(f"{k} ({v})" for k, v in list(r["classes"].items())[:8])
        more = f" and {len(r['classes']) - 8} more" if len(r["classes"]) > 8 else ""
        console.print(_kv_table("longtail status", {
            "project": r["project"],
            "samples": f"{r['samples']} ({r['pool']} pool, {r['eval']} eval)",
            "labeled": f"{r['labeled_pool']} pool, {r['labeled_eval']} eval "
                       f"({r['annotations']} annotation events)",
            "classes": f"{len(r['classes'])}: {top}{more}" if r["classes"] else "-",
            "vectors": ", ".join(f"{k}: {v}" for k, v in r["vectors"].items()) or "-",
            "encoder": r["encoder"] or "-",
            "rounds": f"{r['rounds']} ({r['open_rounds']} open)",
            "models": r["models"],
            **{f"last {k}": _fmt_metric(v) + f" on {v['eval_set']} at {v['n_labels']} labels"
               for k, v in r["metrics"].items()},
            "verdict": r["verdict"],
        }))

    _emit(result, as_json, render)


@app.command()
@handled
def forecast(target: Annotated[float | None, typer.Option(help="Metric value to reach, e.g. "
                                                          "0.90.")] = None,
             batch: Annotated[int, typer.Option(help="Size of the next batch.")] = 100,
             metric: Annotated[str, typer.Option(help="accuracy, macro_f1 or "
                                                 "worst_class_recall.")] = "accuracy",
             project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Fit the learning curve: labels still needed to reach TARGET, and the expected gain
    of the next batch, with 90% intervals."""
    with _open(project) as p:
        result = p.forecast(target, next_batch=batch, metric=metric)

    def render(r: dict) -> None:
        g = r["expected_gain"]
        console.print(f"{r['metric']} now measured at {r['labels_now']} labels ({r['points']} "
                      f"points); next {r['next_batch']} labels: expected gain "
                      f"{100 * g['mean']:+.2f} points (90%: {100 * g['lo']:+.2f} to "
                      f"{100 * g['hi']:+.2f})")
        if "target" in r:
            m = r["more_labels"]
            if m["n"] is None:
                console.print(f"target {r['target']}: out of reach on this curve")
            else:
                hi = "∞" if m["hi"] is None else f"{m['hi']:.0f}"
                console.print(f"target {r['target']}: about {m['n']:.0f} more labels "
                              f"(90%: {m['lo']:.0f} to {hi})")

    _emit(result, as_json, render)


@app.command("stopping")
@handled
def stopping_cmd(target: Annotated[float | None, typer.Option(help="Stop at this accuracy.")] = None,
                 budget: Annotated[int | None, typer.Option(help="Stop at this many labels.")] = None,
                 batch: Annotated[int, typer.Option(help="Size of the next batch.")] = 100,
                 project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Should labeling stop? Stabilising predictions, forecast gain, target and budget."""
    with _open(project) as p:
        result = p.stopping(target=target, budget=budget, next_batch=batch)

    def render(r: dict) -> None:
        table = Table(title="stop" if r["stop"] else "continue")
        for col in ("rule", "says", "why"):
            table.add_column(col)
        for d in r["rules"]:
            table.add_row(d["rule"], "stop" if d["stop"] else "continue", d["reason"])
        console.print(table)

    _emit(result, as_json, render)


@app.command()
def strategies(as_json: JsonOpt = False) -> None:
    """List the selection strategies."""
    from longtail.strategies import STRATEGIES

    rows = {name: {"needs": sorted(s.needs), "doc": s.doc} for name, s in sorted(STRATEGIES.items())}

    def render(r: dict) -> None:
        table = Table(title="strategies")
        for col in ("name", "needs", "what it does"):
            table.add_column(col)
        for name, v in r.items():
            table.add_row(name, ", ".join(v["needs"]) or "-", v["doc"])
        console.print(table)

    _emit(rows, as_json, render)


def _curve_table(title: str, curves: dict[str, dict]) -> Table:
    """Mean accuracy per budget for each strategy: rows are budgets."""
    import numpy as np

    table = Table(title=title)
    table.add_column("labels", justify="right")
    names = list(curves)
    for name in names:
        table.add_column(name, justify="right")
    first = curves[names[0]]["runs"][0]["n_labels"]
    for i, n in enumerate(first):
        cells = []
        for name in names:
            vals = [run[_metric_key(run)][i] for run in curves[name]["runs"]
                    if i < len(run["n_labels"]) and run[_metric_key(run)][i] is not None]
            cells.append(f"{np.mean(vals):.3f}" if vals else "-")
        table.add_row(str(n), *cells)
    return table


def _metric_key(run: dict) -> str:
    return "test_accuracy" if any(v is not None for v in run["test_accuracy"]) else "eval_accuracy"


@app.command()
@handled
def simulate(truth: Annotated[str, typer.Option(help="Metadata column holding the true label "
                                                "(the oracle).")] = "label",
             strategy: Annotated[list[str] | None, typer.Option(help="Strategy (repeat to "
                                                                "compare).")] = None,
             batch: Annotated[int, typer.Option(help="Labels per round.")] = 100,
             budget: Annotated[int, typer.Option(help="Labels in all.")] = 1000,
             seeds: Annotated[int, typer.Option(help="Repeats with different seeds.")] = 1,
             test: Annotated[Path | None, typer.Option(help="External labeled test file.")] = None,
             test_label: Annotated[str, typer.Option()] = "label",
             test_text: Annotated[str, typer.Option()] = "text",
             out: Annotated[Path | None, typer.Option(help="Write the curves as JSON.")] = None,
             project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Backtest strategies with an oracle: from 0 labels, rounds of BATCH up to BUDGET."""
    names = strategy or ["auto", "random"]
    results = {}
    with _open(project) as p:
        for name in names:
            with _Bar(f"simulate {name}", as_json) as bar:
                total_rounds = -(-budget // batch) * seeds
                done = [0]

                def tick(seed: int, point: dict, bar=bar, done=done, total=total_rounds) -> None:
                    done[0] += 1
                    bar(done[0], total)

                results[name] = p.simulate(truth, strategy=name, batch=batch, budget=budget,
                                           seeds=seeds, test=test, test_label=test_label,
                                           test_text=test_text, on_round=tick)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
    _emit(results, as_json, lambda r: console.print(_curve_table(
        "accuracy by labels (" + ("test set" if test else "managed eval set") + ")", r)))


@app.command()
@handled
def demo(dir: Annotated[Path | None, typer.Option("--dir", help="Project directory (default: "
                                                  "a new temporary one).")] = None,
         rounds: Annotated[int, typer.Option(help="Simulated rounds.")] = 10,
         batch: Annotated[int, typer.Option(help="Labels per round.")] = 100,
         limit: Annotated[int | None, typer.Option(help="Use only the first N messages of "
                                                   "each file (a quicker demo).")] = None) -> None:
    """The whole loop on the bundled Banking77 data: a project, embeddings, 10 simulated
    rounds of auto next to random, and an HTML summary."""
    from longtail.demo import run_demo

    run_demo(dir, rounds=rounds, batch=batch, console=console, progress=_Bar, limit=limit)


if __name__ == "__main__":  # pragma: no cover
    app()
