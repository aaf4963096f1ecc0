"""Importing the project facade stays light: scikit-learn, scipy and faiss load only
when a command needs a model, a metric or a strategy."""

import ast
import subprocess
import sys


def test_importing_project_does_not_load_heavy_libraries():
    code = ("import sys, longtail.project, longtail.evaluation, longtail.learners, longtail.loop; "
            "print(sorted(m for m in ('sklearn', 'scipy', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_resolve_and_unknown_names_fail():
    import pytest

    import longtail.evaluation as ev
    import longtail.learners as lr
    import longtail.loop as lp

    assert callable(ev.fit_learning_curve) and callable(ev.assign_eval)
    assert lr.LinearHead.__name__ == "LinearHead" and callable(lp.plan_batch)
    assert "verdict" in dir(ev)
    with pytest.raises(AttributeError):
        ev.no_such_name  # noqa: B018


HEAVY = ("sklearn", "scipy", "faiss", "torch", "pyarrow", "numpy", "sqlalchemy",
         "sentence_transformers", "yaml", "ray")


def test_importing_the_cli_loads_only_typer_rich_and_the_standard_library():
    # `longtail --help` and every command start with this import: each command imports
    # what it uses inside it.
    code = ("import sys, longtail.cli; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_runs_without_loading_the_engine():
    code = ("import sys\nfrom longtail.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_the_demo_never_imports_the_cli():
    import ast
    from pathlib import Path

    import longtail.demo

    tree = ast.parse(Path(longtail.demo.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("longtail.cli") for m in imported)


def test_status_reads_the_catalog_without_loading_heavy_libraries(tmp_path):
    # `longtail status` is a list of counts: numpy and sqlalchemy, never scikit-learn,
    # scipy, faiss, torch or pyarrow (issue 17's start-up target).
    from longtail.project import Project
    from tests.conftest import make_pool, write_pool_csv

    X, y = make_pool(120)
    with Project.init(tmp_path / "p") as p:
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
        p.query(10, strategy="random")
    # rich.console and pydantic too: the status lines are plain and its options are
    # parsed without pydantic; either import alone costs about what the command's work does
    heavy = ("sklearn", "scipy", "faiss", "torch", "pyarrow", "sentence_transformers",
             "rich.console", "pydantic")
    code = ("import sys\nfrom longtail.cli import app\n"
            f"try:\n    app(['status', '-p', {str(tmp_path / 'p')!r}])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "rounds" in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_search_runs_without_loading_heavy_libraries(tmp_path):
    # `longtail search` is one command per query (issue 30: <= 1.5 s): its repeatable
    # options (--id, --where) are parsed without pydantic, and searching an existing
    # index needs numpy only (never scikit-learn, scipy, faiss, torch or pyarrow).
    from longtail.project import Project
    from tests.conftest import make_pool, write_pool_csv

    X, y = make_pool(120)
    with Project.init(tmp_path / "p", eval_rate=0.0) as p:
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
        first = p.search(ids=["s0", "s1"], k=3)["hits"][0]["id"]
    heavy = ("sklearn", "scipy", "faiss", "torch", "pyarrow", "sentence_transformers",
             "pydantic", "pandas")
    code = ("import sys\nfrom longtail.cli import app\n"
            f"try:\n    app(['search', '-p', {str(tmp_path / 'p')!r}, '--id', 's0', '--id', "
            "'s1', '--where', 'nothing=here', '--where', 'a=b', '-k', '3', '--json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert '"hits": []' in out.stdout  # no row has that metadata: the filters were read
    # Metadata lives in the Arrow column files (schema 7), so a --where filter reads
    # them with pyarrow; never pandas (pyarrow's `pa.array` imports it to ask whether
    # its argument is a pandas object: the positions are handed over as a buffer).
    assert out.stderr.strip().splitlines()[-1] == "['pyarrow']"
    code = code.replace(", '--where', 'nothing=here', '--where', 'a=b'", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The hits show their texts, read from the column files: pyarrow again, nothing else.
    assert first in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "['pyarrow']"


def test_the_cli_builds_only_the_command_it_runs(monkeypatch):
    # typer builds every command's parameters to run one; the app builds the one named
    # (a sixth of a search's CPU), and everything for help, groups and unknown names.
    import typer.main

    from longtail.cli import app

    built = []
    real = typer.main.get_command_from_info
    monkeypatch.setattr(typer.main, "get_command_from_info",
                        lambda *a, **kw: built.append(a) or real(*a, **kw))
    every = list(app.registered_commands)
    for argv, few in ((["search", "--help"], True), (["import-labels", "--help"], True),
                      (["--help"], False), (["triggers", "--help"], False),
                      (["no-such-command"], False)):
        built.clear()
        try:
            app(argv)
        except SystemExit:
            pass
        assert (len(built) == 1) == few, (argv, len(built))
        assert app.registered_commands == every


def test_the_command_table_names_the_module_of_every_command():
    # A command run by name imports only the module `_app.COMMANDS` names for it: the
    # table must say where each command really is (a stale entry would still run, by
    # importing every module, but lose the start-up it exists for).
    from longtail.cli import _app, app

    registered = {_app._command_name(c): c.callback.__module__.rsplit(".", 1)[1]
                  for c in app.registered_commands}
    assert registered == _app.COMMANDS
    assert {m for m in registered.values()} <= set(_app.MODULES)


def _modules_after(argv: list[str]) -> list[str]:
    code = ("import sys\nfrom longtail.cli import app\n"
            f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('longtail.')), "
            "file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return ast.literal_eval(out.stderr.strip().splitlines()[-1])


def test_a_command_imports_only_its_own_command_module(tmp_path):
    # `longtail status` and `longtail query` import the module registering them, not
    # the eight others (their imports and the typed results they name cost start-up).
    from longtail.project import Project
    from tests.conftest import make_pool, write_pool_csv

    X, y = make_pool(60)
    with Project.init(tmp_path / "p") as p:
        p.ingest(write_pool_csv(tmp_path / "pool.csv", X, y), vector_prefix="v")
    loaded = _modules_after(["status", "-p", str(tmp_path / "p")])
    cli = {m for m in loaded if m.startswith("longtail.cli.") and not m.startswith(
        "longtail.cli._")}
    assert cli == {"longtail.cli.loop", "longtail.cli.data"}  # open_project is in data
    # nor the ingest and label use cases, the cost model or a learner
    for m in ("longtail.engine.data", "longtail.engine.labels", "longtail.costs.model",
              "longtail.engine.models", "longtail.interop.batch_file"):
        assert m not in loaded, m
    every = _modules_after(["--help"])
    assert {f"longtail.cli.{m}" for m in ("data", "model", "loop", "stream", "service",
                                          "money", "discovery", "settings")} <= set(every)


def test_help_lists_commands_in_module_order_whatever_was_imported_first():
    # A module imported on its own first (a command run by name) registers first; the
    # help still lists data's commands, then model's, loop's, ...
    code = ("import longtail.cli.discovery, longtail.cli.loop\n"
            "from longtail.cli import app\n"
            "print([c.callback.__name__ for c in app.registered_commands][:3])\n"
            "print([g.name for g in app.registered_groups])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "['init', 'ingest', 'embed']"
    assert out[1] == "['labels', 'users', 'label-studio', 'pools', 'triggers']"


def test_the_list_of_commands_builds_no_command_options(monkeypatch, capsys):
    # `longtail --help` shows each command's name and help: the app builds them without
    # their options (typer would build all of them, a tenth of the help's CPU), and the
    # text is the one typer prints from the fully built commands.
    import inspect

    import typer.main
    from typer.testing import CliRunner

    from longtail.cli import _app, app

    full = CliRunner().invoke(app, ["--help"], prog_name="longtail")  # typer builds all
    built = []
    real = typer.main.get_command_from_info
    monkeypatch.setattr(typer.main, "get_command_from_info",
                        lambda *a, **kw: built.append(kw.get("command_info", a[0] if a else None))
                        or real(*a, **kw))
    try:
        app(["--help"], prog_name="longtail")
    except SystemExit:
        pass
    shown = capsys.readouterr().out
    top = [_app._command_name(c) for c in app.registered_commands]
    listed = built[:len(top)]  # typer builds the commands, then the groups' commands
    assert [_app._command_name(i) for i in listed] == top
    assert all(not inspect.signature(i.callback).parameters for i in listed)
    assert shown == full.output
