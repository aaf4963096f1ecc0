"""The typer application every command module registers on, `--version`, and usage
errors as JSON when --json is given."""

from __future__ import annotations

import copy
import importlib
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


# The modules that register commands, in the order of `longtail --help`, and which one
# registers each command: a command run by name imports its own module only (the other
# modules and the typed results they reference cost start-up time). A name missing here
# (or registered elsewhere) still runs: every module is then imported.
# tests/test_imports.py checks this table against what the modules register.
MODULES = ("data", "model", "loop", "stream", "service", "money", "discovery", "settings")
COMMANDS = {
    **dict.fromkeys(("init", "ingest", "embed", "import-labels"), "data"),
    **dict.fromkeys(("train", "evaluate", "transfer"), "model"),
    **dict.fromkeys(("query", "rounds", "status", "forecast", "stopping", "strategies",
                     "simulate", "demo"), "loop"),
    **dict.fromkeys(("versions", "export", "diff", "history", "consensus", "annotators",
                     "check", "duplicates", "suspects", "tracking", "run"), "stream"),
    "serve": "service", "costs": "money",
    **dict.fromkeys(("report", "slices", "search"), "discovery"),
    "settings": "settings",
}


def _command_name(c: Any) -> str | None:
    return c.name or (c.callback.__name__.replace("_", "-") if c.callback else None)


class _Typer(typer.Typer):
    """Imports and builds only the command named on the command line: typer builds every
    command's parameters before dispatching to one (~0.1 s CPU, a sixth of a `longtail
    search`), and each command module costs its imports. Anything else (no command, an
    unknown one, a group such as `triggers`) imports and builds all. Reading
    `registered_commands` or `registered_groups` (what typer and its test runner do)
    imports every command module first, in the help's order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pinned = 0  # > 0: registering, or running one command; no imports
        self._all = False
        self._group_module: dict[int, str | None] = {}
        super().__init__(*args, **kwargs)

    @property
    def registered_commands(self) -> list:
        self._load_all()
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list) -> None:
        self._commands = value

    @property
    def registered_groups(self) -> list:
        self._load_all()
        return self._groups

    @registered_groups.setter
    def registered_groups(self, value: list) -> None:
        self._groups = value

    def command(self, *args: Any, **kwargs: Any) -> Any:
        decorator = super().command(*args, **kwargs)

        def register(f: Any) -> Any:
            self._pinned += 1  # typer appends to registered_commands: no imports then
            try:
                return decorator(f)
            finally:
                self._pinned -= 1

        return register

    def add_typer(self, typer_instance: typer.Typer, **kwargs: Any) -> None:
        self._pinned += 1
        try:
            super().add_typer(typer_instance, **kwargs)
        finally:
            self._pinned -= 1
        # the module registering the group: the help's order is the modules' order
        self._group_module[id(self._groups[-1])] = sys._getframe(1).f_globals.get("__name__")

    def _load_all(self) -> None:
        if self._all or self._pinned or not MODULES:
            return
        self._all = True
        self._pinned += 1
        try:
            for m in MODULES:
                importlib.import_module(f"longtail.cli.{m}")
        finally:
            self._pinned -= 1
        # A module imported earlier on its own registered first: restore the help's order.
        rank = {f"longtail.cli.{m}": i for i, m in enumerate(MODULES)}
        self._commands.sort(key=lambda c: rank.get(getattr(c.callback, "__module__", ""), -1))
        self._groups.sort(key=lambda g: rank.get(self._group_module.get(id(g)) or "", -1))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("args", args[0] if args else None)
        argv = list(sys.argv[1:] if given is None else given)
        name = next((a for a in argv if not a.startswith("-")), None)
        if name in COMMANDS and not self._all:
            self._pinned += 1
            try:
                importlib.import_module(f"longtail.cli.{COMMANDS[name]}")
            finally:
                self._pinned -= 1
        self._pinned += 1
        try:
            keep = [c for c in self._commands if name is not None and _command_name(c) == name]
            named_group = any(g.name == name for g in self._groups)
        finally:
            self._pinned -= 1
        if name is None and (not argv or any(a in ("-h", "--help") for a in argv)):
            # The list of commands: each shown by its name and help, so each is built
            # without its parameters (typer would build every option of every command).
            self._load_all()
            return self._run_with([_overview(c) for c in self._commands], self._groups,
                                  *args, **kwargs)
        if len(keep) != 1 or named_group:
            self._load_all()
            return super().__call__(*args, **kwargs)
        return self._run_with(keep, [], *args, **kwargs)

    def _run_with(self, commands: list, groups: list, *args: Any, **kwargs: Any) -> Any:
        """Run typer over these commands and groups instead of every registered one."""
        every, every_group = self._commands, self._groups
        self._commands, self._groups = commands, groups
        self._pinned += 1
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._pinned -= 1
            self._commands, self._groups = every, every_group


def _overview(info: Any) -> Any:
    """A copy of a registered command whose callback takes no parameters: what the
    list of commands shows (name, help, panel) without building its options."""
    real = info.callback

    def shown() -> None:  # never run: the list of commands only prints
        raise AssertionError("an overview command was run")

    for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(shown, attr, getattr(real, attr))
    out = copy.copy(info)
    out.callback = shown
    return out


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
