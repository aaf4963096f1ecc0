"""What every command shares: the consoles, error handling (one red line or one JSON
object, exit 2), checks of numeric options, the progress reporter and small renderers.

Imports only typer, rich and the standard library at import time, so `longtail --help`
and `longtail status` start fast; anything heavier is imported by the command using it.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from longtail.errors import InputError, LongtailError


class _LazyConsole:
    """A rich Console made on first use: importing rich.console costs about as much as
    a command's own work, and `status`, `--json` and errors print without it."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console = None

    def get(self) -> Any:
        """The rich Console itself (made now if not yet)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result (or the error) as one "
                                       "JSON object on stdout.")]

DelimiterOpt = Annotated[str | None, typer.Option(
    help="A CSV's delimiter (, ; | or '\\t'); default: sniffed from the file's start.")]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C


class Stopped(Exception):
    """Raised by a command that caught Ctrl-C and knows what was kept."""


def handled(fn: Callable) -> Callable:
    """Turn a LongtailError into one red line on stderr (or, with --json, one JSON object
    `{"error": {"type", "message"}}` on stdout) and exit code 2, never a stack trace; a
    Ctrl-C into a "stopped" line and exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except LongtailError as e:
            _fail(type(e).__name__, str(e), as_json)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except (KeyboardInterrupt, Stopped) as e:
            message = str(e) if isinstance(e, Stopped) else "stopped"
            _fail("Interrupted", message, as_json, style="yellow", prefix="")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _fail(kind: str, message: str, as_json: bool, style: str = "red",
          prefix: str = "error: ") -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": {"type": kind, "message": message}}) + "\n")
        return
    # click styles only on a terminal and never reads the message as markup
    if prefix:
        typer.secho(prefix, fg=style, err=True, nl=False)
        typer.echo(message, err=True)
    else:
        typer.secho(message, fg=style, err=True)


def plain(result: Any) -> Any:
    """An engine result as JSON-ready values: a typed record by its `to_dict()`, lists
    and tuples item by item."""
    if hasattr(result, "to_dict"):
        return result.to_dict()
    if isinstance(result, list | tuple):
        return [plain(r) for r in result]
    return result


def emit(result: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print `result` as JSON (with --json, or when there is no renderer; a typed result
    in its `to_dict()` form), else render it."""
    if as_json or render is None:
        sys.stdout.write(json.dumps(plain(result), indent=2, default=str) + "\n")
    else:
        render(result)


def warn(message: str) -> None:
    """One yellow line on stderr."""
    typer.secho(message, fg="yellow", err=True)


# -- numeric options, checked at the edge ------------------------------------------------

def at_least(option: str, value: float | None, low: float) -> None:
    """Raise InputError unless `value` is None or >= `low`."""
    if value is not None and not value >= low:
        raise InputError(f"{option} must be at least {low:g}, got {value:g}")


def in_range(option: str, value: float | None, low: float, high: float, *,
             low_open: bool = False, high_open: bool = False) -> None:
    """Raise InputError unless `value` is None or inside the interval, which the message
    writes out: [low, high], (low, high], ..."""
    if value is None:
        return
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):  # NaN fails both
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InputError(f"{option} must be in {interval}, got {value:g}")


def split_list(option: str, value: str | None) -> list[str] | None:
    """`a,b, c` -> ['a', 'b', 'c']; an empty item is an InputError."""
    if value is None:
        return None
    items = [s.strip() for s in value.split(",")]
    if not items or any(not s for s in items):
        raise InputError(f"{option}: give a comma-separated list without empty items, got "
                         f"{value!r}")
    return items


# -- progress ------------------------------------------------------------------------------

class Bar:
    """Progress that a (done, total) callback drives: a rich bar on a terminal; otherwise
    (a log, CI, a pipe) a plain line at every tenth of the way or every `every_s`
    seconds, e.g. "embed: 4,096/10,003 rows". `quiet` (--json) prints nothing.
    `phase(text)` announces a step without a count ("loading model")."""

    def __init__(self, label: str, quiet: bool = False, *, unit: str = "rows",
                 every_s: float = 5.0, terminal: bool | None = None):
        self.label, self.unit, self.every_s, self.quiet = label, unit, every_s, quiet
        self.terminal = _stderr_is_terminal() if terminal is None else terminal
        self.done: int | None = None
        self.total: int | None = None
        self._progress = None
        self._task = None
        self._last_tenth = -1
        self._last_time = 0.0

    def __enter__(self) -> Bar:
        if self.terminal and not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeRemainingColumn(), console=err.get(),
                                      transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=None)
        self._last_time = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def phase(self, text: str) -> None:
        """Announce a step that has no count yet (a model loading, a transform fitting)."""
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.label}: {text}")
        else:
            typer.echo(f"{self.label}: {text}", err=True)

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total,
                                  description=self.label)
            return
        now = time.monotonic()
        tenth = 10 * done // total if total else -1
        if tenth > self._last_tenth or now - self._last_time >= self.every_s:
            self._last_tenth, self._last_time = max(tenth, self._last_tenth), now
            count = f"{done:,}/{total:,}" if total else f"{done:,}"
            typer.echo(f"{self.label}: {count} {self.unit}", err=True)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def plain_table(title: str, data: dict) -> None:
    """Key-value lines, keys aligned and bold on a terminal (no rich: `status` starts
    faster without it, and the lines grep well)."""
    typer.secho(title, bold=True)
    width = max((len(str(k)) for k in data), default=0)
    for k, v in data.items():
        typer.echo("  " + typer.style(str(k).ljust(width), bold=True) + "  " + str(v))


# -- renderers -----------------------------------------------------------------------------

def fmt_metric(m: dict | None) -> str:
    """0.812 [0.790, 0.833], or 0.812 without an interval, or - for none."""
    if not m or m.get("value") is None:
        return "-"
    if m.get("lo") is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def fmt_estimate(e: dict | None) -> str:
    """'0.861 [0.834, 0.888] by ppi on 310 eval labels (surrogate over 500 eval rows)'."""
    if not e or e.get("value") is None:
        return "-"
    text = f"{fmt_metric(e)} by {e['estimator']} on {e['n_labels']} eval labels"
    if e.get("population"):
        text += f" (surrogate over {e['population']} eval rows)"
    if e.get("small_n_fallback"):
        text += ": too few labels for its large-sample interval, the exact one instead"
    return text


def curve_table(title: str, curves: dict[str, dict]):
    """Mean accuracy per budget for each strategy of a simulate result: rows are budgets,
    each figure with the n it was measured on (the test file, else the held-out rows
    the run never labeled, else the managed eval set)."""
    from statistics import fmean

    from rich.table import Table

    table = Table(title=title)
    table.add_column("labels", justify="right")
    names = list(curves)
    for name in names:
        table.add_column(name, justify="right")
    first = curves[names[0]]["runs"][0]["n_labels"]
    for i, n in enumerate(first):
        cells = []
        for name in names:
            runs = [run for run in curves[name]["runs"] if i < len(run["n_labels"])]
            key, n_key = _metric_key(runs[0]) if runs else ("eval_accuracy", "eval_labels")
            vals = [run[key][i] for run in runs if run[key][i] is not None]
            ns = [run[n_key][i] for run in runs if run.get(n_key) and run[n_key][i] is not None]
            cells.append(f"{fmean(vals):.3f} (n={min(ns):,})" if vals and ns else
                         f"{fmean(vals):.3f}" if vals else "-")
        table.add_row(str(n), *cells)
    return table


def curve_source(curves: dict[str, dict]) -> str:
    """Which figures `curve_table` shows, in words."""
    run = next(iter(curves.values()))["runs"][0]
    return {"test_accuracy": "test file", "heldout_accuracy": "held-out rows the run never "
            "labeled", "eval_accuracy": "managed eval set"}[_metric_key(run)[0]]


def _metric_key(run: dict) -> tuple[str, str]:
    """(figure, its n) of one simulated run: test file, held-out rows, managed eval set."""
    for key, n_key in (("test_accuracy", "test_n"), ("heldout_accuracy", "heldout_n")):
        if any(v is not None for v in run.get(key) or []):
            return key, n_key
    return "eval_accuracy", "eval_labels"


# -- figures and tables for people -----------------------------------------------------

WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column, however wide "
                                       "(the default drops low-value columns to fit the "
                                       "terminal, 80 columns when not one).")]


def people(value: Any) -> str:
    """A figure as a person reads it: - for none or NaN, 1,234 for counts, a fraction to 3
    decimals, larger numbers to 3 significant figures or whole. (--json keeps full
    precision: only renderers call this.)"""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "-"
        if value == int(value) and abs(value) >= 1000:
            return f"{int(value):,}"
        size = abs(value)
        if size <= 1:  # accuracies, rates, shares
            if 0 < size < 0.0005:
                return "<0.001" if value > 0 else ">-0.001"
            return f"{value:.3f}"
        if size >= 100:
            return f"{value:,.0f}"
        if size >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def print_table(title: str, columns: list[str], rows: list[list], *, optional: list[str] = (),
                right: tuple[str, ...] = (), wide: bool = False) -> None:
    """Print a table that fits the console (80 columns off a terminal): cells go through
    `people`, and while the table is wider than the console the `optional` columns are
    left out, first named first, with a caption saying which and that --wide shows them.
    With `wide`, every column at its full width, however wide the console."""
    from rich.table import Table

    cells = [[people(v) for v in r] for r in rows]
    keep = list(range(len(columns)))

    def width(idx: list[int]) -> int:
        # a cell's text, one space of padding either side, one border character each
        return 1 + sum(3 + max([len(columns[j])] + [len(r[j]) for r in cells]) for j in idx)

    dropped: list[str] = []
    limit = console.width
    if not wide:
        for name in optional:
            if width(keep) <= limit:
                break
            j = columns.index(name)
            keep.remove(j)
            dropped.append(name)
    caption = f"not shown: {', '.join(dropped)} (--wide)" if dropped else None
    table = Table(title=title, caption=caption)
    numeric = [all(isinstance(r[j], int | float) or r[j] is None or r[j] == "" for r in rows)
               for j in range(len(columns))]
    for j in keep:
        table.add_column(columns[j], overflow="fold",
                         justify="right" if columns[j] in right or numeric[j] else "left")
    for r in cells:
        table.add_row(*[r[j] for j in keep])
    if wide and width(keep) > limit:
        from rich.console import Console

        # The shared console clips to its width; a wider one of the same kind prints all.
        Console(width=width(keep), force_terminal=console.is_terminal).print(table)
    else:
        console.print(table)
