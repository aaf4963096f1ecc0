"""Every public engine function returns a typed result (a dataclass or a pydantic model),
never a dict, a Mapping or Any: read from the return annotations with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import longtail.engine

ENGINE = Path(longtail.engine.__file__).parent
UNTYPED = {"dict", "Dict", "Mapping", "MutableMapping", "Any", "object"}

# Functions not converted yet; this list only shrinks (a new entry is a failure of review).
# Empty: every public engine function returns a typed result.
NOT_YET: set[str] = set()


def untyped_returns(path: Path) -> list[str]:
    """`module.function -> annotation` of each public module-level function in `path`
    whose return annotation is missing or names dict, Mapping or Any anywhere."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
            continue
        names = ({n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
                 | {n.attr for n in ast.walk(node.returns) if isinstance(n, ast.Attribute)}
                 if node.returns is not None else {"<missing>"})
        if node.returns is not None and isinstance(node.returns, ast.Constant):
            names = {n for n in str(node.returns.value).replace("[", " ").replace("]", " ")
                     .replace(",", " ").replace("|", " ").replace(".", " ").split()}
        if names & (UNTYPED | {"<missing>"}):
            shown = ast.unparse(node.returns) if node.returns is not None else "(none)"
            out.append(f"{path.stem}.{node.name} -> {shown}")
    return out


def test_engine_functions_return_typed_results():
    found = [f for p in sorted(ENGINE.glob("*.py")) for f in untyped_returns(p)]
    new = sorted(f for f in found if f.split(" ->")[0] not in NOT_YET)
    assert new == [], "engine functions returning untyped values:\n" + "\n".join(new)
    stale = sorted(NOT_YET - {f.split(" ->")[0] for f in found})
    assert stale == [], f"typed now, remove from NOT_YET: {stale}"


def test_the_reader_sees_dicts_inside_annotations(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from typing import Any\n"
                 "def a() -> list[dict]: ...\n"
                 "def b() -> tuple[int, Any]: ...\n"
                 "def c(): ...\n"
                 "def d() -> 'dict | None': ...\n"
                 "def e() -> list[int]: ...\n"
                 "def _f() -> dict: ...\n")
    assert [s.split(" ->")[0] for s in untyped_returns(f)] == ["m.a", "m.b", "m.c", "m.d"]
