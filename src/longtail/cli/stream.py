"""Commands of continuous operation: versions, export, diff, history, consensus,
annotators, check, duplicates, suspects, tracking, run."""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import (
    JsonOpt,
    ProjectOpt,
    WideOpt,
    console,
    emit,
    err,
    handled,
    plain,
    split_list,
)
from longtail.cli.data import open_project

if TYPE_CHECKING:
    from longtail.engine.history import RoundRecord
    from longtail.engine.integrity import IntegrityReport
    from longtail.engine.versions import VersionDiff, VersionExport


def _table(title: str, columns: list[str], rows: list[list], *, optional: list[str] = (),
           wide: bool = False) -> None:
    """A table fitted to the console (`print_table`): `optional` columns go first."""
    from longtail.cli._ui import print_table

    print_table(title, columns, rows, optional=optional, wide=wide)


def _policy_text(p: dict) -> str:
    return p["policy"] + (f" ({', '.join(p['annotators'])})" if p.get("annotators") else "")


@app.command()
@handled
def versions(project: ProjectOpt = Path("."),
             commit: Annotated[bool, typer.Option("--commit", help="Record the dataset as it "
                                                  "stands as a new version first.")] = False,
             wide: WideOpt = False, as_json: JsonOpt = False) -> None:
    """List the dataset versions (each round commits one; so does a policy change).

    Example: longtail versions -p my-project
    """
    with open_project(project) as p:
        if commit:
            p.commit_version()
        result = p.versions()
    emit(result, as_json, lambda vs: _table(
        "dataset versions", ["version", "created", "reason", "round", "samples", "labeled",
                             "policy", "eval version"],
        [[v.id, str(v.created_at)[:16].replace("T", " "), v.reason, v.round_id, v.n_samples,
          v.n_labeled, _policy_text(v.policy), v.eval_version_id] for v in vs],
        optional=["eval version", "policy", "created"], wide=wide))


@app.command()
@handled
def export(out: Annotated[Path, typer.Argument(help="File to write (.parquet, .csv, .jsonl).")],
           project: ProjectOpt = Path("."),
           version: Annotated[int | None, typer.Option(help="Dataset version (default: the "
                                                       "dataset as it stands).")] = None,
           format: Annotated[str | None, typer.Option(help="parquet, csv or jsonl (default: "
                                                      "by the file's suffix), or label-studio "
                                                      "(a round's tasks in Label Studio's "
                                                      "import format).")] = None,
           round: Annotated[int | None, typer.Option("--round", help="With --format "
                                                     "label-studio: the round (default: the "
                                                     "most recent open one).")] = None,
           label_studio_config: Annotated[Path | None, typer.Option(
               "--label-studio-config", help="With --format label-studio: also write the "
                                             "matching labeling config (XML) here.")] = None,
           force: Annotated[bool, typer.Option("--force", help="Overwrite the file.")] = False,
           as_json: JsonOpt = False) -> None:
    """Write a dataset version's labeled samples (id, text, label, split), or with
    --format label-studio a round's tasks for Label Studio (sorted by prediction score,
    lowest first, they come in longtail's order).

    Example: longtail export labels-v3.parquet --version 3 -p my-project
    """
    if format == "label-studio":
        from longtail.cli.service import render_label_studio_export, write_label_studio_tasks

        emit(write_label_studio_tasks(project, out, round, label_studio_config, force),
             as_json, render_label_studio_export)
        return
    with open_project(project) as p:
        result = p.export(out, version=version, format=format, overwrite=force)

    def render(r: "VersionExport") -> None:
        console.print(f"version {r.version}: {r.rows} labeled samples -> {r.path} "
                      f"({r.format}, policy {_policy_text(r.policy)})")
        for w in r.warnings:
            err.print(f"[yellow]{w}[/yellow]", highlight=False, soft_wrap=True)

    emit(result, as_json, render)


@app.command()
@handled
def diff(a: Annotated[int, typer.Argument(help="Earlier dataset version.")],
         b: Annotated[int, typer.Argument(help="Later dataset version.")],
         project: ProjectOpt = Path("."),
         show: Annotated[int, typer.Option(help="Changes listed per kind.")] = 20,
         as_json: JsonOpt = False) -> None:
    """Labels added, removed and changed between two dataset versions.

    Example: longtail diff 2 3 -p my-project
    """
    with open_project(project) as p:
        result = p.diff(a, b)

    def render(r: "VersionDiff") -> None:
        c = r.counts
        console.print(f"version {r.a} -> {r.b}: {c['added']} added, {c['removed']} "
                      f"removed, {c['changed']} changed; {r.samples_added} new samples")
        for e in r.added[:show]:
            console.print(f"  + {e['id']}: {e['label']}", markup=False)
        for e in r.removed[:show]:
            console.print(f"  - {e['id']}: {e['label']}", markup=False)
        for e in r.changed[:show]:
            console.print(f"  ~ {e['id']}: {e['from']} -> {e['to']}", markup=False)

    emit(result, as_json, render)


def _money(spend: dict | None, key: str) -> str:
    """A round's spend figure for the history table (issue 29's ledger)."""
    value = (spend or {}).get(key)
    return "-" if value is None else f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.1g}"


@app.command()
@handled
def history(project: ProjectOpt = Path("."), wide: WideOpt = False,
            as_json: JsonOpt = False) -> None:
    """Per round: strategy, auto's decision, the models it trained with their hashes,
    metrics and timings; models trained before any round first. Every model is listed.

    Example: longtail history -p my-project --json
    """
    from longtail.cli._ui import print_table

    with open_project(project) as p:
        result = p.history()

    def acc(m: dict | None) -> float | None:
        a = (m or {}).get("metrics", {}).get("accuracy")
        return a["value"] if a else None

    def render(records: "list[RoundRecord]") -> None:
        rows = []
        for r in plain(records):  # the table shows what --json prints
            models = r["models"] or [None]
            for k, m in enumerate(models):
                first = k == 0
                rows.append([
                    (r["round"] if r["round"] is not None else "(none)") if first else "",
                    (r["status"] if first else ""),
                    (r["strategy"] or "-") if first else "",
                    (r["arm"] or "-") if first else "",
                    r["size"] if first else "",
                    r["dataset_version"] if first else "",
                    (r["picked_by"] or {}).get("id") if first else "",
                    (m or {}).get("id"), ((m or {}).get("sha256") or "-")[:8],
                    (m or {}).get("n_labels"), acc(m), (m or {}).get("fit_seconds"),
                    _money(r.get("spend"), "label_money") if first else "",
                    _money(r.get("spend"), "compute_money") if first else ""])
        print_table(
            "rounds and the models their labels trained",
            ["round", "status", "strategy", "arm", "size", "version", "picked by", "model",
             "sha256", "labels", "accuracy", "fit s"], rows,
            optional=["sha256", "version", "fit s", "picked by", "strategy", "labels"],
            right=("round", "size", "version", "picked by", "model", "labels", "accuracy",
                   "fit s"), wide=wide)

    emit(result, as_json, render)


@app.command()
@handled
def consensus(policy: Annotated[str | None, typer.Argument(
                  help="latest, majority or trusted (default: show the current one).")] = None,
              annotators: Annotated[str | None, typer.Option(
                  help="For 'trusted': annotators, most trusted first (a,b,c).")] = None,
              project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Show or set the consensus policy that gives each sample its current label.

    Example: longtail consensus majority -p my-project
    """
    with open_project(project) as p:
        if policy is None:
            result = {"policy": p.consensus().to_dict(), "changed": False}
        else:
            result = p.set_consensus(policy, split_list("--annotators", annotators))

    def render(r: dict) -> None:
        if policy is None:
            console.print(f"consensus: {_policy_text(r['policy'])}")
        elif not r["changed"]:
            console.print(f"consensus is already {_policy_text(r['policy'])}")
        else:
            console.print(f"consensus: {_policy_text(r['policy'])} (version {r['version']}, "
                          f"{r['relabeled']} samples' label moved)")

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def annotators(project: ProjectOpt = Path("."),
               bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the "
                                                      "intervals (0: none).")] = 1000,
               wide: WideOpt = False, as_json: JsonOpt = False) -> None:
    """Labels, seconds and agreement per annotator (Cohen's kappa, Krippendorff's alpha).

    Example: longtail annotators -p my-project
    """
    from longtail.cli._ui import at_least

    at_least("--bootstrap", bootstrap, 0)
    with open_project(project) as p:
        result = p.annotators(bootstrap=bootstrap)

    def ci(x: dict, key: str) -> str:
        if x.get(key) is None:
            return "-"
        return f"{x[key]:.3f}" + (f" [{x['lo']:.3f}, {x['hi']:.3f}]" if x.get("lo") is not None
                                  else "")

    def render(r: dict) -> None:
        _table("annotators", ["annotator", "labels", "samples", "skips", "unsure", "seconds",
                              "median s", "agrees"],
               [[who, a["labels"], a["samples"], a["skips"], a["unsure"], a["seconds_total"],
                 a["seconds_median"],
                 "-" if a["agreement_with_consensus"] is None else
                 f"{a['agreement_with_consensus']:.2f} of {a['shared_samples']}"]
                for who, a in r["annotators"].items()],
               optional=["median s", "seconds", "unsure", "skips"], wide=wide)
        if r["pairs"]:
            _table("Cohen's kappa", ["a", "b", "samples", "agreement", "kappa"],
                   [[x["a"], x["b"], x["samples"], f"{x['agreement']:.2f}", ci(x, "kappa")]
                    for x in r["pairs"]])
        if r["krippendorff"]:
            k = r["krippendorff"]
            console.print(f"Krippendorff's alpha: {ci(k, 'alpha')} over {k['samples']} samples, "
                          f"{k['annotators']} annotators")

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def check(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Integrity: the catalog, vector counts against it, model files against their hashes.
    Exit code 1 when a check fails.

    Example: longtail check -p my-project
    """
    with open_project(project) as p:
        result = p.check()

    def render(r: "IntegrityReport") -> None:
        for c in r.checks:
            mark = "[green]ok[/green]  " if c.ok else "[red]FAIL[/red]"
            console.print(f"{mark} {c.name}: ", end="")
            console.print(c.detail, markup=False, highlight=False)
        for n in r.notes:
            console.print(f"note: {n}", markup=False, highlight=False)

    emit(result, as_json, render)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@handled
def duplicates(project: ProjectOpt = Path("."),
               threshold: Annotated[float | None, typer.Option(
                   help="Cosine similarity from which two samples are near-duplicates "
                   "(default: the project's near-duplicate threshold, 0.98).")] = None,
               encoder: Annotated[str | None, typer.Option(help="Vector set (default: the "
                                                           "project's).")] = None,
               exact_only: Annotated[bool, typer.Option("--exact-only", help="Only samples with "
                                                        "the same content.")] = False,
               hash_bits: Annotated[int | None, typer.Option(
                   help="Images: bits (of 64) in which two difference hashes may differ and "
                   "still be near-duplicates (default 8, at most 16).")] = None,
               show: Annotated[int, typer.Option(help="Groups listed per kind.")] = 10,
               engine: Annotated[str, typer.Option(
                   help="Where a search still to do (after a bulk ingest) encodes the rows: "
                        "local, or ray (a Ray Data job; LONGTAIL_RAY_ADDRESS names the "
                        "cluster).")] = "local",
               as_json: JsonOpt = False) -> None:
    """List groups of exact duplicates and near-duplicates (FAISS on the vectors; for
    images also the same bytes, and difference hashes within a few bits).

    Example: longtail duplicates -p my-project --threshold 0.97
    """
    with open_project(project) as p:
        result = p.duplicates(threshold=threshold, encoder=encoder, near=not exact_only,
                              hash_bits=hash_bits,
                              **({"engine": engine} if engine != "local" else {}))

    def render(r: dict) -> None:
        c = r["counts"]
        console.print(f"{c['exact_groups']} groups of exact duplicates; {c['near_groups']} groups "
                      f"of near-duplicates ({c['near_rows']} samples, {c['near_with_labeled']} "
                      f"groups with a labeled sample) at cosine >= {r['threshold']:g}")
        if r.get("hash_bits") is not None:
            console.print(f"{c['perceptual_groups']} groups of images whose difference hashes "
                          f"differ in <= {r['hash_bits']} bits ({c['perceptual_rows']} images)")
        for kind in ("exact", "near", "perceptual"):
            for g in r[kind][:show]:
                console.print(f"  {kind}: " + ", ".join(
                    e["id"] + (f" ({e['label']})" if e["label"] else "") for e in g),
                    markup=False, highlight=False)

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def suspects(project: ProjectOpt = Path("."),
             limit: Annotated[int, typer.Option(help="Suspects listed (most likely first).")] = 20,
             folds: Annotated[int, typer.Option(help="Cross-fitting folds (2 or more).")] = 5,
             as_json: JsonOpt = False) -> None:
    """Likely label errors: cleanlab's confident learning on out-of-fold probabilities of
    the project's learner, lowest self-confidence first. `query --relabel 0.1` queues
    them for a second look.

    Example: longtail suspects -p my-project --limit 50
    """
    from longtail.cli._ui import at_least

    at_least("--limit", limit, 1)
    at_least("--folds", folds, 2)
    with open_project(project) as p:
        result = p.suspects(limit=limit, folds=folds)

    def render(r: dict) -> None:
        console.print(f"{r['n_suspects']} likely label errors among {r['labels']} labels "
                      f"({r['folds']}-fold {r['learner']} on {r['encoder']}); "
                      f"showing {len(r['suspects'])}")
        if r["left_out_classes"]:
            err.print("left out (fewer than 2 labels): " + ", ".join(
                f"{c} ({n})" for c, n in r["left_out_classes"].items()),
                style="yellow", markup=False, highlight=False)
        if r["suspects"]:
            _table("suspects", ["id", "split", "given", "suggested", "self-confidence"],
                   [[s["id"], s["split"], s["given"], s["suggested"], s["self_confidence"]]
                    for s in r["suspects"]], optional=["split"])

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def tracking(target: Annotated[str | None, typer.Argument(
                 help="'local' (the project's mlruns/), a directory or a tracking URI; "
                      "'off' stops tracking (default: show the setting).")] = None,
             project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Show or set MLflow tracking: every `train` then logs its model as one MLflow run
    (params, metrics, the dataset version as an input, the model file as an artifact).

    Example: longtail tracking local -p my-project
    """
    with open_project(project) as p:
        if target is None:
            result = p.tracking()
        else:
            result = p.set_tracking(None if target == "off" else target)

    def render(r: dict) -> None:
        if r["mlflow"] is None:
            console.print(f"MLflow tracking is off ({r['logged_models']} models logged "
                          "before); `longtail tracking local` turns it on")
        else:
            console.print(f"MLflow tracking to {r['tracking_uri']}, experiment "
                          f"{r['experiment']} ({r['logged_models']} models logged)",
                          markup=False, highlight=False, soft_wrap=True)

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def run(watch: Annotated[Path, typer.Argument(help="Folder to watch for data and label files.")],
        project: ProjectOpt = Path("."),
        batch: Annotated[int, typer.Option(help="Samples per batch to label.")] = 100,
        retrain_every: Annotated[int, typer.Option(help="Retrain after this many new labels.")] = 50,
        strategy: Annotated[str, typer.Option(help="Selection strategy.")] = "auto",
        target: Annotated[float | None, typer.Option(help="Stop at this accuracy.")] = None,
        budget: Annotated[int | None, typer.Option(help="Stop at this many labels.")] = None,
        budget_money: Annotated[float | None, typer.Option(
            "--budget-money", help="Stop once labels, eval labels and compute cost this much; "
                                   "batches are cut to what is left at predicted cost.")] = None,
        text: Annotated[str | None, typer.Option(help="Text column of data files.")] = None,
        vector_prefix: Annotated[str | None, typer.Option(help="Vector columns of data files.")] = None,
        poll: Annotated[float, typer.Option(help="Seconds between looks at the folder.")] = 2.0,
        once: Annotated[bool, typer.Option("--once", help="One pass over the folder, then "
                                           "exit.")] = False,
        max_passes: Annotated[int | None, typer.Option(help="Stop after this many passes.")] = None,
        ignore_stopping: Annotated[bool, typer.Option(
            "--ignore-stopping", help="Go on when the stopping rules say stop (only --target "
                                      "and --budget stop the loop).")] = False,
        relabel: Annotated[float, typer.Option(help="Share of each batch (0 to 1) for likely "
                                               "label errors, as `query --relabel`.")] = 0.0,
        mlflow: Annotated[bool, typer.Option(
            "--mlflow", help="Log each trained model to MLflow, as `train --mlflow`.")] = False,
        mlflow_uri: Annotated[str | None, typer.Option(
            "--mlflow-uri", help="... to this directory or tracking URI.")] = None,
        as_json: JsonOpt = False) -> None:
    """Run the loop unattended: new files in WATCH/data are ingested, WATCH/labels imported;
    retrain when enough labels arrived; write the next batch to WATCH/batches; stop when a
    stopping rule fires (--ignore-stopping: only at --target or --budget). Data files are
    read with the columns of the project's first ingest. Safe to kill and restart.

    Example: longtail run inbox -p my-project --batch 100 --target 0.9
    """
    from longtail.cli._ui import at_least

    at_least("--batch", batch, 1)
    at_least("--retrain-every", retrain_every, 1)
    from longtail.cli._ui import in_range

    in_range("--relabel", relabel, 0.0, 1.0)
    with open_project(project) as p:
        result = p.run(watch, batch=batch, retrain_every=retrain_every, strategy=strategy,
                       target=target, budget=budget, text=text, vector_prefix=vector_prefix,
                       poll=poll, max_passes=1 if once else max_passes, relabel=relabel,
                       ignore_stopping=ignore_stopping,
                       **({"budget_money": budget_money} if budget_money is not None else {}),
                       mlflow=(mlflow_uri or True) if mlflow or mlflow_uri else None,
                       on_event=None if as_json else (lambda m: err.print(m, markup=False,
                                                                          highlight=False)))
    emit(result, as_json, lambda r: console.print(
        f"stopped after {r.passes} pass(es), {len(r.events)} step(s): {r.stopped}"))
