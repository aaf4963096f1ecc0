"""`longtail settings`: show the project's settings, or set one."""

# No `from __future__ import annotations`: typer reads the annotations at start-up.

import json
from pathlib import Path
from typing import Annotated

import typer

from longtail.cli._app import app
from longtail.cli._ui import JsonOpt, ProjectOpt, console, emit, handled
from longtail.cli.data import open_project


@app.command("settings")
@handled
def settings_cmd(project: ProjectOpt = Path("."),
                 key: Annotated[str | None, typer.Argument(help="The setting to show or set.")] = None,
                 value: Annotated[str | None, typer.Argument(
                     help="Its new value, read as JSON (0.5, true, null, [..]), else as "
                          "text.")] = None,
                 as_json: JsonOpt = False) -> None:
    """Show every project setting, one, or set one (checked as `init` checks them).

    With no KEY, every setting; with KEY, that one; with KEY VALUE, set it (e.g.
    pseudo_labels propagation, media_root /data/photos after moving an image folder).

    Example: longtail settings -p my-project pseudo_labels propagation
    """
    with open_project(project) as p:
        if value is None:
            shown = p.settings
            if key is not None:
                from longtail.engine.settings import DEFAULTS
                from longtail.errors import InputError

                if key not in DEFAULTS and key not in shown:
                    raise InputError(f"unknown setting {key!r}")
                shown = {key: shown.get(key, DEFAULTS.get(key))}
            emit(shown, as_json, lambda r: [console.print(f"{k} = {json.dumps(v)}")
                                            for k, v in sorted(r.items())])
            return
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        result = p.configure(key, parsed)
    emit(result, as_json, lambda r: console.print(
        f"{r['key']}: {json.dumps(r['old'])} -> {json.dumps(r['new'])}"))
