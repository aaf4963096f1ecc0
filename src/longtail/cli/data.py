"""Commands that bring data in: init, ingest, embed, import-labels."""

# No `from __future__ import annotations`: typer reads every command's annotations
# when the CLI starts, and evaluating them from strings costs more than the command.

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import (
    Bar,
    DelimiterOpt,
    JsonOpt,
    ProjectOpt,
    Stopped,
    at_least,
    console,
    emit,
    handled,
    in_range,
    split_list,
    warn,
)

if TYPE_CHECKING:
    from longtail.engine.data import EmbedReport


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
         eval_share: Annotated[float, typer.Option(help="Largest share of a batch, and of "
                                                   "every label paid while the eval "
                                                   "target is unmet, given to eval labels, "
                                                   "in [0, 1].")] = 0.1,
         eval_halfwidth: Annotated[float, typer.Option(help="Eval labels are asked for until "
                                                       "accuracy's 95% interval is this narrow "
                                                       "(0.03 = ±3 points), in (0, 0.5).")] = 0.03,
         eval_estimator: Annotated[str, typer.Option(
             help="How eval labels become accuracy's interval: 'ppi' (prediction-powered "
             "over the whole eval split, tighter) or 'uniform' (the labeled rows "
             "alone).")] = "ppi",
         control_share: Annotated[float, typer.Option(help="A random control slice of each "
                                                      "batch, in [0, 1]; 0 (default): the lift "
                                                      "verdict cross-fits the eval set.")] = 0.0,
         seed: Annotated[int, typer.Option(help="Project seed (0 or more).")] = 0,
         near_duplicate_threshold: Annotated[float, typer.Option(
             help="Cosine from which two samples are near-duplicates, in [0.5, 1]; 0 turns "
             "the search off. Query leaves out duplicates of labeled samples.")] = 0.98,
         labels: Annotated[str | None, typer.Option(help="The allowed labels, comma-separated "
                                                    "(default: any label is accepted and new "
                                                    "ones are reported).")] = None,
         db: Annotated[str | None, typer.Option(help="Catalog database URL (e.g. "
                                                "postgresql://user@host/db); default SQLite "
                                                "in the directory.")] = None,
         mlflow: Annotated[str | None, typer.Option(help="Log every trained model to MLflow: "
                                                    "'local' (the project's mlruns/), a "
                                                    "directory or a tracking URI.")] = None,
         dtype: Annotated[str, typer.Option(help="How vectors are stored: float32, or "
                                            "float16 (half the disk; scores are still "
                                            "computed in float32 blocks).")] = "float32",
         as_json: JsonOpt = False) -> None:
    """Create a project: a directory with a SQLite catalog and vector files.

    Example: longtail init my-project --labels cat,dog,bird
    """
    from longtail.project import Project

    for name, value in (("--eval-rate", eval_rate), ("--eval-share", eval_share),
                        ("--control-share", control_share)):
        in_range(name, value, 0.0, 1.0)
    at_least("--eval-cap", eval_cap, 0)
    at_least("--seed", seed, 0)
    if not 0.0 < eval_halfwidth < 0.5:
        from longtail.errors import InputError

        raise InputError(f"--eval-halfwidth must be between 0 and 0.5 (0.03 = ±3 points), "
                         f"got {eval_halfwidth}")
    if eval_estimator not in ("ppi", "uniform"):
        from longtail.errors import InputError

        raise InputError(f"--eval-estimator must be 'ppi' or 'uniform', got {eval_estimator!r}")
    if dtype not in ("float32", "float16"):
        from longtail.errors import InputError

        raise InputError(f"--dtype must be 'float32' or 'float16', got {dtype!r}")
    allowed = split_list("--labels", labels)
    extra: dict = {"labels": allowed} if allowed else {}
    if eval_estimator != "ppi":
        extra["eval_estimator"] = eval_estimator
    if mlflow is not None:
        extra["mlflow"] = mlflow
    if dtype != "float32":
        extra["vector_dtype"] = dtype
    with Project.init(path, eval_rate=eval_rate, eval_cap=eval_cap, seed=seed,
                      eval_stratify=eval_stratify, eval_share=eval_share,
                      control_share=control_share, eval_halfwidth=eval_halfwidth, db=db,
                      near_duplicate_threshold=near_duplicate_threshold, **extra) as p:
        result = {"project": str(path.resolve()), "labels": p.label_set() if allowed else None}
    from longtail.evaluation.budget import eval_sample_size
    from longtail.evaluation.resolution import ASSUMED_ACCURACY, pool_needed

    result["eval_note"] = {
        "eval_rate": eval_rate, "halfwidth": eval_halfwidth,
        "labels_needed": eval_sample_size(ASSUMED_ACCURACY, eval_halfwidth),
        "rows_needed": pool_needed(eval_rate, eval_halfwidth)}

    def render(r: dict) -> None:
        console.print(f"created project at {r['project']}")
        if r["labels"]:
            console.print(f"labels: {', '.join(r['labels'])}")
        e = r["eval_note"]
        rows = (f"a project of at least {e['rows_needed']:,} rows" if e["rows_needed"]
                else "an eval rate above 0")
        console.print(f"eval set: {100 * e['eval_rate']:g}% of the rows; a ±"
                      f"{100 * e['halfwidth']:g}-point interval at 90% accuracy needs about "
                      f"{e['labels_needed']} eval labels, so {rows} (`status` says what "
                      "yours resolves; smaller projects also get cross-fitted figures)")

    emit(result, as_json, render)


@app.command()
@handled
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file, or a folder of "
                                         "images.")],
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
    float16: Annotated[bool, typer.Option("--float16", help="Store vectors as float16 "
                                          "(default: the project's `init --dtype`).")] = False,
    delimiter: DelimiterOpt = None,
    folder_labels: Annotated[bool, typer.Option(
        "--folder-labels", help="Images: each class sub-folder's name is its images' "
                                "import label.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a file to the pool, all-or-nothing. Re-ingesting the same file changes nothing.

    A folder is an image pool: one sample per image (PNG, JPEG, GIF, BMP, TIFF, WebP; each
    checked with Pillow first, a bad one named and nothing written); the folder becomes
    the project's media root. Then `longtail embed --encoder pixels`.

    Example: longtail ingest pool.csv -p my-project --id id --text text
    Example: longtail ingest photos/ -p my-project --folder-labels
    """
    with open_project(project) as p, Bar(f"ingest {file.name}", as_json) as bar:
        report = p.ingest(file, id=id, text=text, label=label, vector=vector,
                          vector_prefix=vector_prefix, metadata=metadata, update=update,
                          vector_dtype="float16" if float16 else None, progress=bar,
                          delimiter=delimiter,
                          **({"folder_labels": True} if folder_labels else {}))
    emit(report.to_dict(), as_json, lambda r: console.print(
        f"{r['file']}: {r['rows']} rows, [bold]{r['new']} new[/bold], {r['updated']} updated, "
        f"{r['unchanged']} unchanged, {r['labels']} labels, {r['eval_rows']} to the eval set"))


@app.command()
@handled
def embed(project: ProjectOpt = Path("."),
          encoder: Annotated[str, typer.Option(help="precomputed, minilm (text), tabular "
                                               "(numeric columns), pixels (images: PCA "
                                               "of their pixels), pixels-raw (images as "
                                               "pixels, for --learner cnn) or "
                                               "torch:package.module:fn (your network).")] = "minilm",
          features: Annotated[str | None, typer.Option(
              help="tabular: the columns to use, comma-separated; shell patterns such as f* "
                   "allowed (default: every numeric column but labels).")] = None,
          exclude: Annotated[str | None, typer.Option(
              help="tabular: columns never to use, comma-separated (patterns allowed).")] = None,
          max_categories: Annotated[int | None, typer.Option(
              help="tabular: text columns with at most this many distinct values are "
                   "one-hot encoded, others left out (default 20).")] = None,
          engine: Annotated[str, typer.Option(
              help="Where encoding runs: local, or ray (a Ray Data job over the project's "
                   "column files; LONGTAIL_RAY_ADDRESS names the cluster).")] = "local",
          encoder_param: Annotated[list[str] | None, typer.Option(
              help="KEY=VALUE for the encoder, repeatable (VALUE read as JSON), e.g. "
                   "size=224 for --encoder torch:package.module:fn.")] = None,
          as_json: JsonOpt = False) -> None:
    """Compute vectors for samples that have none for ENCODER; resumes after a Ctrl-C.

    Each batch is kept as it is written, so running the same command again continues
    where it stopped. The tabular encoder shows the columns it uses, the missing cells it
    filled (median of a numeric column, most frequent value of a text one), the text
    columns it one-hot encoded and the columns it left out, with the reason.

    Example: longtail embed -p my-project --encoder tabular --exclude digit
    """
    at_least("--max-categories", max_categories, 2)
    if engine not in ("local", "ray"):
        from longtail.errors import InputError

        raise InputError(f"--engine must be one of local, ray, got {engine!r}")
    params = {k: v for k, v in (("features", split_list("--features", features)),
                                ("exclude", split_list("--exclude", exclude)),
                                ("max_categories", max_categories)) if v}
    if encoder_param:
        from longtail.learners import parse_learner_params

        params.update(parse_learner_params(encoder_param, option="--encoder-param"))
    if encoder.startswith("torch:"):  # a user's network: torch:package.module:fn
        encoder, params["fn"] = "torch", encoder.split(":", 1)[1]
    with open_project(project) as p, Bar(f"embed ({encoder})", as_json) as bar:
        if "on_phase" in inspect.signature(p.embed).parameters:
            params["on_phase"] = bar.phase  # the encoder says "loading model" and the like
        elif encoder != "precomputed":
            bar.phase(f"loading model {encoder}")
        try:
            result = p.embed(encoder, progress=bar, **params,
                             **({"engine": engine} if engine != "local" else {}))
        except KeyboardInterrupt:
            kept = bar.done if bar.done is not None else _vector_rows(p, encoder)
            raise Stopped(f"stopped: {kept:,} rows kept; run again to resume") from None
        if result.describe is None:
            with p.store.reading() as uow:
                info = uow.vectors.info(encoder) or {}
            cols = (info.get("config") or {}).get("columns")
            result.describe = {"dim": info.get("dim"), **({"columns": cols} if cols else {})}

    def render(r: "EmbedReport") -> None:
        console.print(f"{r.embedded} samples embedded with {r.encoder} ({r.total} in "
                      "the project)")
        line = describe_vectors(r.encoder, r.describe or {})
        if line:
            console.print(line, highlight=False)

    emit(result, as_json, render)


def describe_vectors(encoder: str, d: dict) -> str | None:
    """"tabular: 64 columns (f0..f63) -> 64 dims; left out: digit", then one line per
    imputed column (its count of missing cells and what filled them), the one-hot
    columns, and the columns left out with the reason; None when the encoder says
    nothing beyond its dimension."""
    from longtail.cli._ui import people

    cols = list(d.get("columns") or [])
    if not cols:
        return f"{encoder}: {d['dim']} dims" if d.get("dim") else None
    shown = ", ".join(cols) if len(cols) <= 6 else f"{cols[0]}..{cols[-1]}"
    line = f"{encoder}: {len(cols)} columns ({shown}) -> {d.get('dim') or len(cols)} dims"
    out = [*(d.get("excluded") or [])]
    if out:
        line += f"; left out: {', '.join(out[:10])}" + (" ..." if len(out) > 10 else "")
    lines = [line]
    one_hot = d.get("one_hot") or {}
    if one_hot:
        lines.append("  one-hot: " + ", ".join(f"{c} ({n} values)" for c, n in one_hot.items()))
    for column, how in (d.get("imputed") or {}).items():
        value = how["with"]
        value = people(value) if isinstance(value, float) else repr(value)
        lines.append(f"  note: {column}: {how['count']:,} missing value(s) filled with the "
                     f"{how['how']} ({value})")
    reasons = d.get("left_out") or {}
    for column in d.get("skipped") or []:
        lines.append(f"  not used: {column}: {reasons.get(column, 'not numeric')}")
    return "\n".join(lines)


def _vector_rows(p, encoder: str) -> int:
    """Rows the catalog says have `encoder` vectors (0 when the set is not made yet)."""
    try:
        with p.store.reading() as uow:
            info = uow.vectors.info(encoder)
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
    annotator_name: Annotated[str | None, typer.Option(
        help="Who gave every label of the file (instead of an --annotator column).")] = None,
    delimiter: DelimiterOpt = None,
    format: Annotated[str, typer.Option(help="table (CSV, JSONL, Parquet) or label-studio "
                                             "(Label Studio's JSON export: choices as labels, "
                                             "completed_by as annotator, lead_time as "
                                             "seconds, cancelled as skips).")] = "table",
    as_json: JsonOpt = False,
) -> None:
    """Record labels; an empty label is a skip; re-importing a file changes nothing.

    Unknown ids are an error naming them. With a label set (`longtail labels set`) an
    unknown label is an error listing the allowed ones; without, new classes are
    accepted and reported.

    Example: longtail import-labels batch-1.csv -p my-project --label label
    """
    if format not in ("table", "label-studio"):
        from longtail.errors import InputError

        raise InputError(f"--format must be table or label-studio, got {format!r}")
    with open_project(project) as p:
        if format == "label-studio":
            from longtail.engine import labelstudio

            result = labelstudio.import_export(p.store, file).to_dict()
        else:
            result = p.import_labels(file, id=id, label=label, annotator=annotator,
                                     seconds=seconds, annotator_name=annotator_name,
                                     delimiter=delimiter)
    emit(result, as_json, render_import)


def render_import(r: dict) -> None:
    """One line of counts, then what deserves a second look (new classes, warnings)."""
    parts = [f"[bold]{r['new_labels']} new labels[/bold]"]
    for key in ("changed", "skipped", "unsure"):
        if r.get(key):
            parts.append(f"{r[key]} {key}")
    parts.append(f"{r['unchanged']} unchanged")
    console.print(f"{r['rows']} rows: " + ", ".join(parts)
                  + (f"; round{'s' if len(r['closed_rounds']) > 1 else ''} "
                     f"{', '.join(map(str, r['closed_rounds']))} closed"
                     if r.get("closed_rounds") else ""))
    new = r.get("new_classes") or []
    warnings = r.get("warnings") or []
    if new and not any("new class" in w for w in warnings):
        shown = ", ".join(new[:10]) + (f" and {len(new) - 10} more" if len(new) > 10 else "")
        line = f"{len(new)} new class{'es' if len(new) > 1 else ''}: {shown}"
        if _look_alike(new):
            warn(line + " — a typo?")
        else:
            console.print(line, highlight=False)
    for w in warnings:
        warn(w)


def _look_alike(names: list[str]) -> bool:
    """True when two names differ only in case, spaces or punctuation ("cat", "Cat")."""
    keys = ["".join(ch for ch in n.casefold() if ch.isalnum()) for n in names]
    return len(set(keys)) < len(keys)


labels_app = typer.Typer(no_args_is_help=True, help="Show or fix the allowed labels.\n\n"
                         "Example: longtail labels set cat,dog,bird -p my-project")
app.add_typer(labels_app, name="labels")


def _render_labels(r: dict) -> None:
    if r["labels"] is None:
        console.print("open label set: any label is accepted, new classes are reported "
                      "(`longtail labels set a,b,c` fixes it)")
    else:
        console.print(f"{len(r['labels'])} labels: {', '.join(map(repr, r['labels']))}",
                      highlight=False)


@labels_app.command("show")
@handled
def labels_show(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """The allowed labels, or that any label is accepted.

    Example: longtail labels show -p my-project
    """
    with open_project(project) as p:
        emit({"labels": p.label_set()}, as_json, _render_labels)


@labels_app.command("set")
@handled
def labels_set(values: Annotated[str, typer.Argument(help="The labels, comma-separated.")],
               project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Allow exactly these labels from now on.

    Example: longtail labels set cat,dog,bird -p my-project
    """
    items = split_list("LABELS", values)
    with open_project(project) as p:
        emit({"labels": p.set_labels(items)}, as_json, _render_labels)


@labels_app.command("add")
@handled
def labels_add(values: Annotated[str, typer.Argument(help="Labels to allow, comma-separated.")],
               project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Allow more labels (fixing the label set if it was open).

    Example: longtail labels add fish -p my-project
    """
    items = split_list("LABELS", values)
    with open_project(project) as p:
        emit({"labels": p.add_labels(items)}, as_json, _render_labels)


@labels_app.command("rename")
@handled
def labels_rename(old: Annotated[str, typer.Argument(help="The label as it was given.")],
                  new: Annotated[str, typer.Argument(help="What it should be.")],
                  project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Fix a label everywhere: each sample labeled OLD gets NEW as a new label event
    (the history keeps both); a closed label set has OLD replaced by NEW.

    Example: longtail labels rename CLASS_2 class_2 -p my-project
    """
    with open_project(project) as p:
        result = p.rename_label(old, new)
    emit(result, as_json, lambda r: console.print(
        f"{r['samples']:,} sample(s) relabeled {r['old']!r} -> {r['new']!r} "
        f"({r['events']:,} new label event(s))", highlight=False))
