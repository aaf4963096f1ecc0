"""Commands about money (issue 29): annotator pools and their rates, and the spend report
(labeling and compute, per round and in total)."""

# No `from __future__ import annotations`: typer reads the annotations at start-up.

from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import JsonOpt, ProjectOpt, emit, handled, plain_table, warn
from longtail.cli.data import open_project

pools_app = typer.Typer(no_args_is_help=False, invoke_without_command=True,
                        help="Annotator pools: hourly rates, members, samples that need them."
                             "\n\nExample: longtail pools add crowd --rate 20/h --member ann")
app.add_typer(pools_app, name="pools")


@pools_app.callback()
@handled
def pools(ctx: typer.Context, project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """List the pools (with no subcommand).

    Example: longtail pools add crowd --rate 20/h --member ann --member bob
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_project(project) as p:
        emit(p.pools(), as_json, render_pools)


@pools_app.command("add")
@handled
def pools_add(name: Annotated[str, typer.Argument(help="Pool name, e.g. crowd or expert.")],
              rate: Annotated[str | None, typer.Option(
                  help="Money per hour: 20/h, 80/hour, 0.5/min (needed for a new pool).")] = None,
              member: Annotated[list[str] | None, typer.Option(
                  help="Annotator name (as label events record it), repeatable.")] = None,
              where: Annotated[list[str] | None, typer.Option(
                  help="Samples only this pool may label: label=CLASS or a metadata "
                       "KEY=VALUE, repeatable.")] = None,
              default: Annotated[bool | None, typer.Option(
                  "--default/--no-default", help="The pool of annotators in no pool.")] = None,
              project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Create a pool or change one (rate, more members, more rules).

    Example: longtail pools add expert --rate 80/h --where intent=fraud
    """
    with open_project(project) as p:
        result = p.add_pool(name, rate, members=member or [], where=where or [], default=default)
    emit(result, as_json, lambda r: render_pools([r]))


@pools_app.command("remove")
@handled
def pools_remove(name: Annotated[str, typer.Argument(help="Pool to remove.")],
                 project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Remove a pool.

    Example: longtail pools remove crowd
    """
    with open_project(project) as p:
        p.remove_pool(name)
        result = p.pools()
    emit(result, as_json, render_pools)


def render_pools(pools: list[dict]) -> None:
    """One line per pool."""
    if not pools:
        typer.echo("no pools yet: longtail pools add crowd --rate 20/h")
        return
    plain_table("pools", {
        p["name"]: f"{p['rate']:g}/h" + (" (default)" if p["default"] else "")
        + (f", members: {', '.join(p['members'])}" if p["members"] else "")
        + (f", needed where {' or '.join(p['where'])}" if p["where"] else "")
        for p in pools})


@app.command()
@handled
def costs(project: ProjectOpt = Path("."),
          cpu_rate: Annotated[str | None, typer.Option(
              help="Set the price of a CPU-hour (0.10 or 0.10/h) before reporting.")] = None,
          gpu_rate: Annotated[str | None, typer.Option(
              help="Set the price of a GPU-hour before reporting.")] = None,
          model: Annotated[bool, typer.Option(
              "--model", help="Also fit the per-sample cost model and report its held-out "
                              "error.")] = False,
          as_json: JsonOpt = False) -> None:
    """Labeling and compute spend, per round and in total.

    Labeling: every answer's seconds (idle time trimmed) at its pool's rate; compute:
    every command's CPU and GPU seconds at the project's prices.

    Example: longtail costs --cpu-rate 0.10/h
    """
    with open_project(project) as p:
        if cpu_rate is not None or gpu_rate is not None:
            p.set_compute_rates(cpu_rate, gpu_rate)
        result = p.costs()
        if model:
            result["model"] = p.cost_model()
    emit(result, as_json, render_costs)


def _money(x: float) -> str:
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def render_costs(r: dict) -> None:
    """A line per round, then the totals and the pools."""
    typer.secho("round  answers  label s     label $   compute s  compute $     total $",
                bold=True)
    for s in r["rounds"]:
        typer.echo(f"{s['round']:>5}  {s['events']:>7}  {s['label_seconds']:>7.0f}  "
                   f"{_money(s['label_money']):>10}  {s['cpu_seconds'] + s['gpu_seconds']:>9.1f}"
                   f"  {_money(s['compute_money']):>9}  {_money(s['total_money']):>10}")
    t = r["total"]
    rows = {
        "labeling": f"{_money(t['label_money'])} for {t['events']} answers "
                    f"({t['first']} first, {t['overlap']} overlap, {t['relabel']} relabels; "
                    f"{t['eval_events']} eval, {_money(t['eval_label_money'])}), "
                    f"{t['label_seconds'] / 3600:.2f} h",
        "compute": f"{_money(t['compute_money'])} for {t['commands']} commands, "
                   f"{t['cpu_seconds']:.1f} CPU s, {t['gpu_seconds']:.1f} GPU s "
                   f"(at {r['rates']['cpu_hour']:g}/CPU-h, {r['rates']['gpu_hour']:g}/GPU-h)",
        "total": _money(t["total_money"]),
        "idle cap": f"{r['cap_seconds']:.0f} s per answer",
        **{f"pool {k}": f"{v['events']} answers, {v['seconds'] / 3600:.2f} h, {_money(v['money'])}"
           for k, v in r["by_pool"].items()},
    }
    m = r.get("model")
    if m:
        h = m.get("heldout")
        rows["cost model"] = (
            f"{m['answers']} timed answers, prior {m['prior']:.4g} {m['unit']}"
            + (f" (weight {m['prior_weight']:.0%})" if "prior_weight" in m else "")
            + (f"; held-out error {h['mae']:.3g} [{h['lo']:.3g}, {h['hi']:.3g}] {m['unit']} "
               f"per answer vs {h['mae_constant']:.3g} for a constant" if h else
               "; held-out error: needs 10 or more timed answers"))
    plain_table("spend", rows)
    if t["unpriced"]:
        warn(f"{t['unpriced']} answers are in no pool and have no price: "
             "`longtail pools add NAME --rate R --default` prices them")
    if t["imputed"]:
        warn(f"{t['imputed']} answers carry no time: counted at their pool's median")
