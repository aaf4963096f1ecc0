"""Importing the project facade stays light: scikit-learn, scipy and faiss load only
when a command needs a model, a metric or a strategy."""

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
    # them with pyarrow, whose conversions import pandas when it is installed; nothing
    # else heavy.
    assert out.stderr.strip().splitlines()[-1] in ("['pyarrow']", "['pandas', 'pyarrow']")
    code = code.replace(", '--where', 'nothing=here', '--where', 'a=b'", "")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The hits show their texts, read from the column files: pyarrow again, nothing else.
    assert first in out.stdout
    assert out.stderr.strip().splitlines()[-1] in ("['pyarrow']", "['pandas', 'pyarrow']")


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
