"""Commands that run and watch the loop: query, status, forecast, stopping, strategies,
simulate, demo."""

# No `from __future__ import annotations`: typer reads every command's annotations
# when the CLI starts, and evaluating them from strings costs more than the command.

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import (
    Bar,
    JsonOpt,
    ProjectOpt,
    at_least,
    console,
    curve_source,
    curve_table,
    emit,
    fmt_metric,
    handled,
    in_range,
    plain,
    plain_table,
    warn,
)
from longtail.cli.data import open_project
from longtail.errors import InputError

if TYPE_CHECKING:
    from longtail.engine.rounds import RoundSummary


@app.command()
@handled
def query(budget: Annotated[int | None, typer.Option(
              "--budget", "-n", help="Samples to select (1 or more; default 100, or as many "
                                     "as --budget-money buys).")] = None,
          budget_money: Annotated[float | None, typer.Option(
              "--budget-money", help="Money the batch may cost at predicted cost (pools' "
                                     "rates, `longtail costs --model`): never more.")] = None,
          annotators: Annotated[int | None, typer.Option(
              help="Split the batch into this many work packages, balanced by predicted "
                   "labeling time.")] = None,
          pool: Annotated[str | None, typer.Option(
              help="One work package per member of this annotator pool.")] = None,
          overlap: Annotated[float, typer.Option(
              help="Share of the batch (0 to 1) put in two packages, for agreement.")] = 0.0,
          out_dir: Annotated[Path | None, typer.Option(
              "--out-dir", help="Write each work package as DIR/package-NAME.csv.")] = None,
          cost_aware: Annotated[bool, typer.Option(
              "--cost-aware", help="Among 3x the strategy's picks keep the best return on "
                                   "investment: (1 - max probability) / predicted cost "
                                   "(setting cost_tradeoff).")] = False,
          strategy: Annotated[str, typer.Option(help="Strategy name (see `longtail "
                                                "strategies`).")] = "auto",
          out: Annotated[Path | None, typer.Option(help="Export the batch (.csv or .jsonl).")] = None,
          config: Annotated[Path | None, typer.Option(help="Selection config, YAML or JSON.")] = None,
          seed: Annotated[int | None, typer.Option(help="Seed, 0 or more (default: the "
                                                   "project's).")] = None,
          force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out "
                                              "file.")] = False,
          relabel: Annotated[float, typer.Option(
              help="Share of the batch (0 to 1) for likely label errors (`longtail "
                   "suspects`), taken from the strategy's picks; kind 'relabel' in the "
                   "batch.")] = 0.0,
          include_duplicates: Annotated[bool, typer.Option(
              "--include-duplicates", help="Also offer exact and near-duplicates of labeled "
              "samples (left out by default).")] = False,
          engine: Annotated[str, typer.Option(
              help="Where pool scoring and the near-duplicate search's encoding run: "
                   "local, or ray (Ray Data jobs; LONGTAIL_RAY_ADDRESS names the cluster; "
                   "auto and every strategy that uses probabilities).")] = "local",
          project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Select the next batch to label and record it as an open round.

    Example: longtail query -p my-project -n 100 --out batch-1.csv --relabel 0.1
    """
    at_least("--budget", budget, 1)
    if budget_money is not None and not budget_money > 0:
        raise InputError(f"--budget-money must be a positive amount, got {budget_money:g}")
    at_least("--seed", seed, 0)
    in_range("--relabel", relabel, 0.0, 1.0)
    cfg = _read_config(config) if config else None
    with open_project(project) as p:
        result = p.query(budget, strategy=strategy, out=out, config=cfg, seed=seed,
                         **({"budget_money": budget_money} if budget_money else {}),
                         **({"annotators": annotators} if annotators is not None else {}),
                         **({"pool": pool, "overlap": overlap} if pool or overlap else {}),
                         **({"out_dir": out_dir} if out_dir is not None else {}),
                         **({"cost_aware": True} if cost_aware else {}),
                         **({"overwrite": True} if force else {}),
                         **({"relabel": relabel} if relabel else {}),
                         **({"include_duplicates": True} if include_duplicates else {}),
                         **({"engine": engine} if engine != "local" else {}))

    def render(r) -> None:
        if isinstance(r, dict):  # emit hands renderers the to_dict() form
            from types import SimpleNamespace

            r = SimpleNamespace(**r)
        kinds = {k: r.kinds.count(k) for k in ("eval", "control", "selected", "relabel",
                                                 "queued")}
        arm = r.log.get("selection", {}).get("arm")
        console.print(f"round {r.round_id}: {len(r.rows)} samples ({kinds['selected']} selected "
                      f"by {r.log['strategy']}" + (f" → {arm}" if arm else "") +
                      (f", {kinds['control']} random control" if kinds["control"] else "")
                      + f", {kinds['eval']} eval"
                      + (f", {kinds['relabel']} relabel" if relabel else "")
                      + (f", {kinds['queued']} from the discovery queue" if kinds["queued"]
                         else "") + ")"
                      + (f" written to {r.out}" if r.out else ""))
        if relabel and not kinds["relabel"]:
            warn(r.log.get("relabel", {}).get("reason", "no relabel rows"))
        for pk in r.log.get("packages") or []:
            console.print(f"package {pk['package']}: {len(pk['rows'])} samples, "
                          f"~{pk['predicted_seconds'] / 60:.0f} min predicted"
                          + (f" ({out_dir}/package-{pk['package']}.csv)" if out_dir else ""))
        money = r.log.get("money")
        if money:
            console.print(f"predicted cost {money['predicted']:,.2f} of the "
                          f"{money['budget']:,.2f} budget ({money['cut']} planned samples "
                          "did not fit)")
        left_out = (r.log.get("duplicates") or {}).get("excluded", 0)
        if left_out:
            console.print(f"{left_out} candidates left out as duplicates of labeled samples "
                          "(--include-duplicates offers them)")
        for w in getattr(r, "warnings", None) or []:
            warn(w)

    emit(result.to_dict() if as_json else result, as_json, render)


@app.command()
@handled
def rounds(cancel: Annotated[int | None, typer.Option(help="Cancel this open round: its "
                                                      "unlabeled samples can be selected "
                                                      "again.")] = None,
           export: Annotated[int | None, typer.Option(help="Write this round's batch file "
                                                      "again (to --out).")] = None,
           out: Annotated[Path | None, typer.Option(help="Batch file for --export (.csv or "
                                                    ".jsonl).")] = None,
           force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out "
                                               "file.")] = False,
           project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List the rounds (open, closed, cancelled), cancel an open one, or write a round's
    batch file again.

    Example: longtail rounds -p my-project --cancel 3

    Example: longtail rounds -p my-project --export 3 --out batch-3.csv
    """
    at_least("--cancel", cancel, 1)
    at_least("--export", export, 1)
    if (export is None) != (out is None):
        raise InputError("--export N and --out FILE go together")
    if export is not None and cancel is not None:
        raise InputError("--export and --cancel: one at a time")
    with open_project(project) as p:
        if export is not None:
            result = p.export_round(export, out, overwrite=force)
            emit(result, as_json, lambda r: console.print(
                f"round {r.round} ({r.status}, {r.size} samples) written to {r.out}"))
            return
        if cancel is not None:
            result = p.cancel_round(cancel)
            emit(result, as_json, lambda r: console.print(
                f"round {r.round} cancelled: its unlabeled samples can be selected again"))
            return
        result = p.rounds()

    def render(rs: "list[RoundSummary]") -> None:
        from rich.table import Table

        if not rs:
            console.print("no rounds yet: `longtail query` opens one")
            return
        table = Table(title="rounds")
        for col in ("round", "created", "strategy", "status", "labeled"):
            table.add_column(col, justify="right" if col in ("round", "labeled") else "left")
        for r in rs:
            strategy = r.strategy + (f" → {r.arm}" if r.arm else "")
            table.add_row(str(r.id), str(r.created_at)[:19], strategy, r.status,
                          f"{r.labeled}/{r.size}")
        console.print(table)

    emit(result, as_json, render)


def _read_config(path: Path) -> dict:
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
    """Counts, classes, rounds and the latest metrics.

    Example: longtail status -p my-project
    """
    with open_project(project) as p:
        result = p.status()
    emit(result, as_json, lambda r: render_status(plain(r)))


def render_status(r: dict) -> None:
    """The status table, then its warnings in yellow."""
    top = ", ".join(f"{k} ({v})" for k, v in list(r["classes"].items())[:8])
    more = f" and {len(r['classes']) - 8} more" if len(r["classes"]) > 8 else ""
    rows = {
        "project": r["project"],
        "samples": f"{r['samples']} ({r['pool']} pool, {r['eval']} eval)",
        "labeled": f"{r['labeled_pool']} pool, {r['labeled_eval']} eval "
                   f"({r['annotations']} annotation events)",
        "classes": f"{len(r['classes'])}: {top}{more}" if r["classes"] else "-",
        "vectors": ", ".join(f"{k}: {v}" for k, v in r["vectors"].items()) or "-",
        "encoder": r["encoder"] or "-",
        "rounds": f"{r['rounds']} ({r['open_rounds']} open)",
        "models": r["models"],
        **{f"last {k}": fmt_metric(v) + f" on {v['eval_set']} at {v['n_labels']} labels"
           for k, v in r["metrics"].items()},
    }
    need = r.get("eval_need") or {}
    if need.get("halfwidth") is not None:
        rows["eval precision"] = (f"±{100 * need['halfwidth']:.1f} points by "
                                  f"{need.get('estimator', 'uniform')} on {need['labeled']} eval "
                                  f"labels (target ±{100 * need['target']:.1f}"
                                  + ("; too few errors for its large-sample interval, the "
                                     "exact one" if "Clopper" in need.get("estimate_note", "")
                                     else "") + f"): {need['reason']}")
    target = r.get("eval_target")
    if target:
        rows["eval target"] = target if isinstance(target, str) else \
            ", ".join(f"{k}: {v}" for k, v in target.items())
    for k, v in (r.get("test_file_metrics") or {}).items():
        rows[f"test file {k}"] = fmt_metric(v) + f" on {v['eval_set']}"
    spend = r.get("spend")
    if spend:
        rows["spend"] = (f"{spend['total_money']:,.2f}: labels {spend['label_money']:,.2f} "
                         f"(eval {spend['eval_label_money']:,.2f}), compute "
                         f"{spend['compute_money']:.2g} ({spend['cpu_seconds']:.0f} CPU s)")
    rows["verdict"] = r["verdict"]
    if r.get("money_verdict"):
        rows["money"] = r["money_verdict"]
    for t in r.get("transfer") or []:
        rows[f"transfer {t['learner']}"] = (
            f"{t['gain'] * 100:+.1f} points [{t['lo'] * 100:+.1f}, {t['hi'] * 100:+.1f}] at "
            f"{t['n_labels']} labels (selected with {t['selected_with']})")
    if r.get("queued"):
        rows["discovery queue"] = f"{r['queued']} rows (the next query takes them first)"
    for t in r.get("triggers") or []:
        last = t.get("last")
        rows[f"trigger {t['name']}"] = f"{t['hits']} queued" + (
            f"; last run ({last['on']}): {last['hits']} of {last['rows']} rows" if last else "")
    plain_table("longtail status", rows)
    for w in r.get("warnings") or []:
        warn(w)


@app.command()
@handled
def forecast(target: Annotated[float | None, typer.Option(help="Metric value to reach, in "
                                                          "(0, 1], e.g. 0.90.")] = None,
             batch: Annotated[int, typer.Option(help="Size of the next batch (1 or "
                                                "more).")] = 100,
             metric: Annotated[str, typer.Option(help="accuracy, macro_f1 or "
                                                 "worst_class_recall.")] = "accuracy",
             project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Labels still needed to reach TARGET, and the next batch's expected gain.

    Fits the learning curve of the managed eval set; both figures come with 90%
    intervals.

    Example: longtail forecast -p my-project --target 0.9
    """
    in_range("--target", target, 0.0, 1.0, low_open=True)
    at_least("--batch", batch, 1)
    with open_project(project) as p:
        result = p.forecast(target, next_batch=batch, metric=metric)

    def render(r: dict) -> None:
        g = r["expected_gain"]
        console.print(f"{r['metric']} now measured at {r['labels_now']} labels ({r['points']} "
                      f"points); next {r['next_batch']} labels: expected gain "
                      f"{100 * g['mean']:+.2f} points (90%: {100 * g['lo']:+.2f} to "
                      f"{100 * g['hi']:+.2f})")
        if "target" in r:
            m = r["more_labels"]
            # None: more than 5% of the forecast's curves never read the target before
            # the pool runs out (or it is above their asymptote)
            hi = "possibly never" if m["hi"] is None else f"{m['hi']:.0f}"
            if r.get("shown"):
                console.print(f"target {r['target']}: reached ({r['note']})")
            elif m["n"] is None:
                console.print(f"target {r['target']}: not reached with the pool's rows left in "
                              f"most forecasts (90%: at least {m['lo'] or 0:.0f} more labels, "
                              f"upper end {hi})")
            else:
                console.print(f"target {r['target']}: about {m['n']:.0f} more labels "
                              f"(90%: {m['lo']:.0f} to {hi})")
            if r.get("note") and not r.get("shown"):
                warn(r["note"])

    emit(result, as_json, lambda r: render(plain(r)))


@app.command("stopping")
@handled
def stopping_cmd(target: Annotated[float | None, typer.Option(help="Stop at this accuracy, in "
                                                              "(0, 1].")] = None,
                 budget: Annotated[int | None, typer.Option(help="Stop at this many labels (1 "
                                                            "or more).")] = None,
                 batch: Annotated[int, typer.Option(help="Size of the next batch (1 or "
                                                    "more).")] = 100,
                 project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Should labeling stop? Stabilising predictions, forecast gain, target and budget.

    Example: longtail stopping -p my-project --target 0.9 --budget 2000
    """
    in_range("--target", target, 0.0, 1.0, low_open=True)
    at_least("--budget", budget, 1)
    at_least("--batch", batch, 1)
    with open_project(project) as p:
        result = p.stopping(target=target, budget=budget, next_batch=batch)

    def render(r: dict) -> None:
        from rich.table import Table

        title = "stop" if r["stop"] else (
            "not enough evidence yet" if r["reason"].startswith("not enough") else "continue")
        table = Table(title=title)
        for col in ("rule", "says", "why"):
            table.add_column(col)
        for d in r["rules"]:
            table.add_row(d["rule"], "stop" if d["stop"] else "continue", d["reason"])
        console.print(table)
        ev = r.get("evidence") or {}
        if ev.get("why"):
            warn(ev["why"])

    emit(result, as_json, lambda r: render(plain(r)))


@app.command()
@handled
def strategies(as_json: JsonOpt = False) -> None:
    """List the selection strategies.

    Example: longtail strategies
    """
    from longtail.strategies import STRATEGIES

    rows = {name: {"needs": sorted(s.needs), "doc": s.doc} for name, s in sorted(STRATEGIES.items())}

    def render(r: dict) -> None:
        from rich.table import Table

        table = Table(title="strategies")
        for col in ("name", "needs", "what it does"):
            table.add_column(col)
        for name, v in r.items():
            table.add_row(name, ", ".join(v["needs"]) or "-", v["doc"])
        console.print(table)

    emit(rows, as_json, render)


@app.command()
@handled
def simulate(truth: Annotated[str, typer.Option(help="The oracle: a metadata column holding "
                                                "the true label, `label` for the imported "
                                                "labels, or a label file (id, label).")]
             = "label",
             strategy: Annotated[list[str] | None, typer.Option(help="Strategy (repeat to "
                                                                "compare).")] = None,
             batch: Annotated[int, typer.Option(help="Labels per round (1 or more).")] = 100,
             budget: Annotated[int, typer.Option(help="Labels paid in all, eval labels "
                                                 "included (1 or more).")] = 1000,
             seeds: Annotated[int, typer.Option(help="Repeats with different seeds (1 or "
                                                "more).")] = 1,
             test: Annotated[Path | None, typer.Option(help="External labeled test file.")] = None,
             test_label: Annotated[str, typer.Option(help="Label column of the --test "
                                                     "file.")] = "label",
             test_text: Annotated[str, typer.Option(help="Text column of the --test "
                                                    "file.")] = "text",
             out: Annotated[Path | None, typer.Option(help="Write the curves as JSON.")] = None,
             project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Backtest strategies with an oracle: from 0 labels, rounds of BATCH up to BUDGET.

    Each batch is split as `query` splits it (eval labels by need); each round is
    scored on the rows the run never labeled (or on --test), with n beside each figure.

    Example: longtail simulate -p my-project --truth label --strategy auto --strategy random
    """
    at_least("--batch", batch, 1)
    at_least("--budget", budget, 1)
    at_least("--seeds", seeds, 1)
    names = strategy or ["auto", "random"]
    results = {}
    with open_project(project) as p:
        for name in names:
            with Bar(f"simulate {name}", as_json, unit="rounds") as bar:
                total_rounds = -(-budget // batch) * seeds
                done = [0]

                def tick(seed: int, point: dict, bar=bar, done=done, total=total_rounds) -> None:
                    done[0] += 1
                    bar(done[0], total)

                results[name] = p.simulate(truth, strategy=name, batch=batch, budget=budget,
                                           seeds=seeds, test=test, test_label=test_label,
                                           test_text=test_text, on_round=tick).to_dict()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
    emit(results, as_json, lambda r: console.print(curve_table(
        "accuracy by training labels, on the " + curve_source(r), r)))


@app.command()
@handled
def demo(dir: Annotated[Path | None, typer.Option("--dir", help="Project directory (default: "
                                                  "a new temporary one).")] = None,
         rounds: Annotated[int, typer.Option(help="Simulated rounds (1 or more).")] = 10,
         batch: Annotated[int, typer.Option(help="Labels per round (1 or more).")] = 100,
         limit: Annotated[int | None, typer.Option(help="Use a seeded sample of N messages of "
                                                   "each file, stratified by intent (a "
                                                   "quicker demo).")] = None) -> None:
    """The whole loop on the bundled Banking77 data, with an HTML summary.

    A project, embeddings, simulated rounds of auto next to random, and a page with the
    learning curves.

    Example: longtail demo --dir demo-project --limit 2000
    """
    from longtail.demo import run_demo

    at_least("--rounds", rounds, 1)
    at_least("--batch", batch, 1)
    at_least("--limit", limit, 1)
    run_demo(dir, rounds=rounds, batch=batch, console=console, progress=Bar, limit=limit,
             curves_table=curve_table)
