"""The typer application every command module registers on, and `--version`."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperOption

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="longtail: decide what to label next, run the loop, prove it pays off.\n\n"
         "Example: longtail init my-project && longtail ingest pool.csv -p my-project --text text",
)

_display_type = TyperOption.display_type_rich


def _flag_display_type(self: TyperOption, ctx: typer.Context) -> str | None:
    # typer shows every option's type, a flag as `--json <bool>`, which reads as if it
    # took a value; a flag takes none, so show no type for it.
    if getattr(self, "is_flag", False):
        return None
    return _display_type(self, ctx)


TyperOption.display_type_rich = _flag_display_type  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        from longtail import __version__

        typer.echo(f"longtail {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """longtail: decide what to label next, run the loop, prove it pays off."""
