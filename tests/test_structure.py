"""The package's structure, read from its own source with `ast`: no import cycles
(function-level imports included, where cycles hide), between files or between folders."""

from __future__ import annotations

import ast
from pathlib import Path

import longtail

SRC = Path(longtail.__file__).resolve().parent.parent


def modules(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `src/package`."""
    out = {}
    for path in (src / package).rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """module -> the package's modules it imports, anywhere in its body (top level,
    functions, TYPE_CHECKING blocks). `from P import x` counts as importing P.x when that
    is a module, else P; importing P.Q from outside P also runs P's __init__."""
    mods = modules(src, package)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {t for a in node.names if (t := known(a.name))}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    if (t := full if full in mods else known(base)):
                        targets.add(t)
        for t in list(targets):
            parts = t.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in mods and not (mod == parent or mod.startswith(parent + ".")):
                    targets.add(parent)
        targets.discard(mod)
        graph[mod] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def folders(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between the package's first-level parts (cli, engine, store, ...)."""
    def part(m: str) -> str:
        return ".".join(m.split(".")[:2])

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        out.setdefault(part(a), set()).update(part(b) for b in targets if part(b) != part(a))
    return out


def _explain(graph: dict[str, set[str]], found: list[list[str]]) -> str:
    return "\n".join(" <-> ".join(c) + ": " + "; ".join(
        f"{a} imports {sorted(graph[a] & set(c))}" for a in c) for c in found)


def test_no_import_cycle_between_modules():
    graph = import_graph(SRC, "longtail")
    assert len(graph) > 100  # the reader found the package
    found = cycles(graph)
    assert found == [], _explain(graph, found)


def test_no_import_cycle_between_folders():
    graph = folders(import_graph(SRC, "longtail"))
    found = cycles(graph)
    assert found == [], _explain(graph, found)


def test_the_reader_finds_a_cycle_hidden_in_a_function(tmp_path):
    # The shape of the cycles this test was written against: a function-level import
    # back up, and a package whose __init__ imports a module that imports the package.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a\n    return a\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg import c  # noqa\n")
    (pkg / "sub" / "x.py").write_text("")
    (pkg / "c.py").write_text("from pkg.sub.x import *\n")
    (pkg / "d.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub"]]
    assert "pkg.a" in graph["pkg.d"]


def _paths_under_the_project(path: Path) -> list[int]:
    """Lines of `path` that build a path under a project's root (`x.root / ...` or
    `Path(x.root) / ...`)."""
    def is_root(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute) and node.attr == "root":
            return True
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Path" and bool(node.args) and is_root(node.args[0]))

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and is_root(n.left)]


def test_only_the_store_builds_paths_in_the_project_directory():
    # The test-file cache (once `store.root / "cache"` handed to the reader) and the local
    # MLflow folder (once made by engine/tracking.py) come from longtail.store.files.
    pkg = SRC / "longtail"
    found = {str(p.relative_to(pkg)): lines for p in sorted(pkg.rglob("*.py"))
             if p.relative_to(pkg).parts[0] != "store" and (lines := _paths_under_the_project(p))}
    assert found == {}


def test_the_path_reader_sees_root_paths(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("a = store.root / 'cache'\nb = Path(store.root) / 'x'\nc = Path(store.root)\n"
                 "d = other / 'x'\n")
    assert _paths_under_the_project(f) == [1, 2]


def private_names_taken(src: Path, package: str) -> list[str]:
    """`file: name` for each private name (one leading underscore) that a module takes
    from another module of the package: `from m import _x`, or `m._x` on an imported
    module. A private module of one's own package (`from longtail.cli import _ui`) is
    not a name taken from another module."""
    mods = modules(src, package)
    out = []
    for mod, path in sorted(mods.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        imported_modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                if not base.startswith(package):
                    continue
                for a in node.names:
                    if f"{base}.{a.name}" in mods:
                        imported_modules.add(a.asname or a.name)
                    elif a.name.startswith("_") and not a.name.startswith("__"):
                        out.append(f"{path.relative_to(src)}: {base}.{a.name}")
            elif isinstance(node, ast.Import):
                imported_modules |= {a.asname or a.name.split(".")[0] for a in node.names
                                     if a.name.startswith(package)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                out.append(f"{path.relative_to(src)}: {node.value.id}.{node.attr}")
    return out


def test_no_module_takes_another_modules_private_names():
    assert private_names_taken(SRC, "longtail") == []


def test_the_private_name_reader(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_helpers.py").write_text("def _x(): ...\ndef y(): ...\n")
    (pkg / "a.py").write_text("from pkg import _helpers\nfrom pkg._helpers import y\n")
    (pkg / "b.py").write_text("from pkg._helpers import _x\nfrom pkg import a\na._z\n")
    assert private_names_taken(tmp_path, "pkg") == ["pkg/b.py: pkg._helpers._x", "pkg/b.py: a._z"]
