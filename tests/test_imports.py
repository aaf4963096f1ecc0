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
