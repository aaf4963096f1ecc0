"""The typer application every command module registers on, and `--version`."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from typer._coercion import RuntimeParam
from typer.core import TyperOption, _TyperParameter

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


class _PlainRuntimeParam(RuntimeParam):
    """Coerces a str, int, float, bool or Path value without pydantic. typer builds a
    pydantic TypeAdapter for each parameter it parses, and importing pydantic alone costs
    more than `longtail status` does its work; these types need none of it."""

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        kind = _plain_type(self.annotation)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        if kind is bool:
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
        else:
            try:
                return kind(value)
            except (TypeError, ValueError):
                pass
        name = {int: "an integer", float: "a number", str: "a text", Path: "a path",
                bool: "true or false"}[kind]
        raise typer.BadParameter(f"{value!r} is not {name}", ctx=ctx, param=param)


_PLAIN = (str, int, float, bool, Path)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _plain_type(annotation: Any) -> type | None:
    """str, int, float, bool or Path for `X` or `X | None`, else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in _PLAIN else None


_runtime_param = _TyperParameter.get_runtime_param


def _plain_runtime_param(self: Any) -> RuntimeParam:
    desc = self.type_descriptor
    info = desc.parameter_info
    plain = (self._runtime_param is None and _plain_type(desc.annotation) is not None
             and desc.file_annotation is None and getattr(info, "min", None) is None
             and getattr(info, "max", None) is None and getattr(info, "parser", None) is None
             and getattr(info, "click_type", None) is None)
    if plain:
        self._runtime_param = _PlainRuntimeParam(parameter_info=info, annotation=desc.annotation)
    return _runtime_param(self)


_TyperParameter.get_runtime_param = _plain_runtime_param  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        from longtail import __version__

        typer.echo(f"longtail {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """longtail: decide what to label next, run the loop, prove it pays off."""
