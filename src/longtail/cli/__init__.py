"""The `longtail` command line: each command parses and checks its options, calls one
Project method, and renders the result (a rich table, progress, or JSON with --json).

One module per command group (data, model, loop); each imports what its commands use
inside them, so starting the CLI loads only typer, rich and the standard library.
The entry point is `longtail.cli:app`.
"""

# Importing a module registers its commands, in this order in `longtail --help`.
from longtail.cli import data, model, loop, stream, service, money, discovery, settings  # noqa: F401, I001
from longtail.cli._app import app

__all__ = ["app"]

if __name__ == "__main__":  # pragma: no cover
    app()
