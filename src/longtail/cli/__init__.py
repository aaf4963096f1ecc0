"""The `longtail` command line: each command parses and checks its options, calls one
Project method, and renders the result (a rich table, progress, or JSON with --json).

One module per command group (data, model, loop, ...); each imports what its commands
use inside them, so starting the CLI loads only typer, rich and the standard library.
The entry point is `longtail.cli:app`: a command run by name imports only the module
that registers it (`_app.COMMANDS`); `--help`, groups and anything typer reads from the
app import every module, in the order of `longtail --help` (`_app.MODULES`).
"""

from longtail.cli._app import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
