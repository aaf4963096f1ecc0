"""Two adjustments to typer's internals, each installed only where the typer in use has
the parts it replaces (otherwise typer behaves as it ships, correct but slower or less
tidy):

- a flag is shown as `--json`, not `--json <bool>` (typer shows every option's type,
  which reads as if a flag took a value);
- str, int, float, bool and Path values, and lists of them (a repeatable option), are
  converted without pydantic: typer 0.29
  builds a pydantic TypeAdapter for each parameter it parses, and importing pydantic
  alone costs more than `longtail status` spends on its work (issue 17's start-up).
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import typer

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_PLAIN = (str, int, float, bool, Path)
_installed = False


def plain_type(annotation: Any) -> type | None:
    """str, int, float, bool or Path for `X` or `X | None`, else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in _PLAIN else None


def plain_list_type(annotation: Any) -> type | None:
    """X for `list[X]` or `list[X] | None` with X str, int, float, bool or Path, else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return args[0] if len(args) == 1 and args[0] in _PLAIN else None
    return None


def coerce_plain(kind: type, value: Any) -> Any:
    """`value` (a command-line string, or a default) as `kind`; ValueError if it is not."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool:
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("true or false")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError({int: "an integer", float: "a number", str: "a text",
                          Path: "a path"}[kind]) from None


def install() -> None:
    """Install both adjustments once (a no-op on a typer without the parts they replace)."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from typer._coercion import RuntimeParam
        from typer.core import TyperOption, _TyperParameter

        display_type = TyperOption.display_type_rich
        runtime_param = _TyperParameter.get_runtime_param
    except (ImportError, AttributeError):  # another typer: leave it as it is
        return

    def flag_display_type(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else display_type(self, ctx)

    class PlainRuntimeParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                item = plain_list_type(self.annotation)
                if item is not None:
                    return [coerce_plain(item, v) for v in value]
                return coerce_plain(plain_type(self.annotation), value)
            except ValueError as e:
                raise typer.BadParameter(f"{value!r} is not {e}", ctx=ctx, param=param) from None

    def plain_runtime_param(self: Any) -> Any:
        desc = self.type_descriptor
        info = desc.parameter_info
        if (self._runtime_param is None and (plain_type(desc.annotation) is not None
                                             or plain_list_type(desc.annotation) is not None)
                and desc.file_annotation is None
                and all(getattr(info, k, None) is None for k in ("min", "max", "parser",
                                                                  "click_type"))):
            self._runtime_param = PlainRuntimeParam(parameter_info=info,
                                                    annotation=desc.annotation)
        return runtime_param(self)

    TyperOption.display_type_rich = flag_display_type
    _TyperParameter.get_runtime_param = plain_runtime_param
