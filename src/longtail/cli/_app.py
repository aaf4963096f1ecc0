"""The typer application every command module registers on, `--version`, and usage
errors as JSON when --json is given."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from longtail.cli import _typer_fixes

_typer_fixes.install()

# typer.BadParameter is click's; its ClickException base is what every usage error is
# (typer 0.29 vendors click, older versions use click itself: found either way).
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Group(TyperGroup):
    """With --json on the command line, a usage error (an unknown option, a value of the
    wrong type) is one JSON object on stdout and exit 2, like the commands' own errors."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except _ClickException as e:
            sys.stdout.write(json.dumps({"error": {"type": "UsageError",
                                                   "message": e.format_message()}}) + "\n")
            sys.exit(e.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_Group, add_completion=False, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="longtail: decide what to label next, run the loop, prove it pays off.\n\n"
         "Example: longtail init my-project && longtail ingest pool.csv -p my-project --text text",
)


def _version(value: bool) -> None:
    if value:
        from longtail import __version__

        typer.echo(f"longtail {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """longtail: decide what to label next, run the loop, prove it pays off."""
