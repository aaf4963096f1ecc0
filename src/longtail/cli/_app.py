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


class _Typer(typer.Typer):
    """Builds only the command named on the command line: typer builds every command's
    parameters before dispatching to one (~0.1 s CPU, a sixth of a `longtail search`).
    Anything else (no command, an unknown one, a group such as `triggers`) builds all."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("args", args[0] if args else None)
        argv = list(sys.argv[1:] if given is None else given)
        name = next((a for a in argv if not a.startswith("-")), None)
        keep = [c for c in self.registered_commands if name is not None and (
            c.name or (c.callback.__name__.replace("_", "-") if c.callback else None)) == name]
        if len(keep) != 1 or any(g.name == name for g in self.registered_groups):
            return super().__call__(*args, **kwargs)
        every, groups = self.registered_commands, self.registered_groups
        self.registered_commands, self.registered_groups = keep, []
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self.registered_commands, self.registered_groups = every, groups


app = _Typer(
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
