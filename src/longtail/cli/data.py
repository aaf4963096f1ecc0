"""Commands that bring data in: init, ingest, embed, import-labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import (
    Bar,
    JsonOpt,
    ProjectOpt,
    Stopped,
    at_least,
    console,
    emit,
    handled,
    in_range,
    warn,
)


def open_project(project: Path):
    """The Project at `project` (imported here: the catalog's libraries load on first use)."""
    from longtail.project import Project

    return Project(project)


@app.command()
@handled
def init(path: Annotated[Path, typer.Argument(help="Directory for the new project.")] = Path("."),
         eval_rate: Annotated[float, typer.Option(help="Share of new samples kept for the "
                                                  "managed eval set, in [0, 1].")] = 0.05,
         eval_cap: Annotated[int, typer.Option(help="Most samples in the eval set (0 or "
                                               "more).")] = 5000,
         eval_stratify: Annotated[str | None, typer.Option(help="Metadata column to stratify "
                                                           "the eval set by.")] = None,
         eval_share: Annotated[float, typer.Option(help="Largest share of a batch given to "
                                                   "pending eval labels, in [0, 1].")] = 0.2,
         control_share: Annotated[float, typer.Option(help="Random control slice of each "
                                                      "batch, in [0, 1] (0 disables).")] = 0.1,
         seed: Annotated[int, typer.Option(help="Project seed (0 or more).")] = 0,
         db: Annotated[str | None, typer.Option(help="Catalog database URL (e.g. "
                                                "postgresql://user@host/db); default SQLite "
                                                "in the directory.")] = None,
         as_json: JsonOpt = False) -> None:
    """Create a project: a directory with a SQLite catalog and vector files.

    Example: longtail init my-project --eval-rate 0.1
    """
    from longtail.project import Project

    for name, value in (("--eval-rate", eval_rate), ("--eval-share", eval_share),
                        ("--control-share", control_share)):
        in_range(name, value, 0.0, 1.0)
    at_least("--eval-cap", eval_cap, 0)
    at_least("--seed", seed, 0)
    Project.init(path, eval_rate=eval_rate, eval_cap=eval_cap, seed=seed,
                 eval_stratify=eval_stratify, eval_share=eval_share,
                 control_share=control_share, db=db).close()
    emit({"project": str(path.resolve())}, as_json,
         lambda r: console.print(f"created project at {r['project']}"))


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
    metadata: Annotated[list[str] | None, typer.Option(help="Metadata column to keep; repeat "
                                                       "for more (default: every other "
                                                       "column).")] = None,
    update: Annotated[bool, typer.Option("--update", help="Replace samples whose id exists "
                                         "with other content.")] = False,
    float16: Annotated[bool, typer.Option("--float16", help="Store vectors as float16.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a file to the pool, all-or-nothing. Re-ingesting the same file changes nothing.

    Example: longtail ingest pool.csv -p my-project --id id --text text
    """
    with open_project(project) as p, Bar(f"ingest {file.name}", as_json) as bar:
        report = p.ingest(file, id=id, text=text, label=label, vector=vector,
                          vector_prefix=vector_prefix, metadata=metadata, update=update,
                          vector_dtype="float16" if float16 else "float32", progress=bar)
    emit(report.to_dict(), as_json, lambda r: console.print(
        f"{r['file']}: {r['rows']} rows, [bold]{r['new']} new[/bold], {r['updated']} updated, "
        f"{r['unchanged']} unchanged, {r['labels']} labels, {r['eval_rows']} to the eval set"))


@app.command()
@handled
def embed(project: ProjectOpt = Path("."),
          encoder: Annotated[str, typer.Option(help="precomputed, minilm (text) or tabular "
                                               "(numeric columns).")] = "minilm",
          as_json: JsonOpt = False) -> None:
    """Compute vectors for samples that have none for ENCODER; resumes after a Ctrl-C.

    Each batch is kept as it is written, so running the same command again continues
    where it stopped.

    Example: longtail embed -p my-project --encoder minilm
    """
    with open_project(project) as p, Bar(f"embed ({encoder})", as_json) as bar:
        if encoder != "precomputed":
            # Loading a model takes seconds with nothing else to show; say so first.
            bar.phase(f"loading model {encoder}")
        try:
            result = p.embed(encoder, progress=bar)
        except KeyboardInterrupt:
            kept = bar.done if bar.done is not None else _vector_rows(p, encoder)
            raise Stopped(f"stopped: {kept:,} rows kept; run again to resume") from None
    emit(result, as_json, lambda r: console.print(
        f"{r['embedded']} samples embedded with {r['encoder']} ({r['total']} in the project)"))


def _vector_rows(p, encoder: str) -> int:
    """Rows the catalog says have `encoder` vectors (0 when the set is not made yet)."""
    try:
        info = p.store.vector_set_info(encoder)
    except Exception:  # the catalog is what we report from; if it cannot say, say 0
        return 0
    return int(info["n_rows"]) if info else 0


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
    """Record labels; unknown ids are an error; re-importing a file changes nothing.

    Example: longtail import-labels batch-1.csv -p my-project --label label
    """
    with open_project(project) as p:
        result = p.import_labels(file, id=id, label=label, annotator=annotator, seconds=seconds)
    emit(result, as_json, render_import)


def render_import(r: dict) -> None:
    """One line of counts, then what deserves a second look (new classes, warnings)."""
    parts = [f"[bold]{r['new_labels']} new labels[/bold]"]
    for key in ("changed", "skipped", "unsure"):
        if r.get(key):
            parts.append(f"{r[key]} {key}")
    parts.append(f"{r['unchanged']} unchanged")
    console.print(f"{r['rows']} rows: " + ", ".join(parts)
                  + (f"; closed rounds {r['closed_rounds']}" if r.get("closed_rounds") else ""))
    new = r.get("new_classes") or []
    if new:
        shown = ", ".join(new[:10]) + (f" and {len(new) - 10} more" if len(new) > 10 else "")
        hint = " — a typo?" if _look_alike(new) else ""
        warn(f"{len(new)} new class{'es' if len(new) > 1 else ''}: {shown}{hint}")
    for w in r.get("warnings") or []:
        warn(w)


def _look_alike(names: list[str]) -> bool:
    """True when two names differ only in case, spaces or punctuation ("cat", "Cat")."""
    keys = ["".join(ch for ch in n.casefold() if ch.isalnum()) for n in names]
    return len(set(keys)) < len(keys)
