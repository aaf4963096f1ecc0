"""CSV cells that a spreadsheet would run as formulas (`=HYPERLINK(...)`, `@SUM(1+1)`,
`+`, `-`, a leading tab or carriage return) are written with a leading `'`, as OWASP
advises, so opening an export is never running it. Plain numbers (`-3.5`) are left as
they are. The mark is reversible: `restore` undoes it when a file we wrote is read
back (a filled batch file), and a value that itself starts with quotes before such a
character gets one more, so every value comes back exactly."""

from __future__ import annotations

import re

_RISKY = re.compile(r"^'*[=+\-@\t\r]")
_MARKED = re.compile(r"^'+[=+\-@\t\r]")


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def neutralise(value: object) -> object:
    """`value` as a CSV cell safe to open in a spreadsheet (non-strings unchanged)."""
    if isinstance(value, str) and _RISKY.match(value) and not _number(value):
        return "'" + value
    return value


def restore(value: str | None) -> str | None:
    """The value `neutralise` was given, from the cell it wrote."""
    if value is not None and _MARKED.match(value) and not _number(value[1:]):
        return value[1:]
    return value


def neutralise_row(row: dict) -> dict:
    """Every cell of a CSV row, neutralised."""
    return {k: neutralise(v) for k, v in row.items()}
