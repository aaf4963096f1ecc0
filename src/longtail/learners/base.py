"""The learner contract and the registry that builds learners by name."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from longtail.errors import InputError


class Learner(Protocol):
    """What the loop needs from a model (scikit-learn's classifier contract).

    ``fit(X (n, d), y (n,)) -> self``; ``predict_proba(X (n, d)) -> (n, C)`` whose
    columns follow ``classes_`` (set by ``fit``, sorted). Any scikit-learn
    classifier with ``predict_proba`` is a learner.
    """

    classes_: np.ndarray

    def fit(self, X: Any, y: Any) -> Learner: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...


def is_learner(obj: Any) -> bool:
    """Whether ``obj`` can serve as a learner: callable ``fit`` and ``predict_proba``.

    (``SVC(probability=False)`` hides its ``predict_proba`` and is rejected.)
    """
    return callable(getattr(obj, "fit", None)) and callable(getattr(obj, "predict_proba", None))


def _registry() -> dict[str, Callable[..., Learner]]:
    from longtail.learners.linear import LinearHead

    return {"linear": LinearHead}


def learner_names() -> list[str]:
    return sorted(_registry())


def make_learner(name: str = "linear", **params: Any) -> Learner:
    """Build a learner: a registered name ("linear", the default) or a dotted import path.

    ``make_learner("sklearn.ensemble.RandomForestClassifier", n_estimators=200)``
    builds any class with ``fit`` and ``predict_proba``. Unknown names, failed
    imports, bad parameters and classes without ``predict_proba`` raise InputError.
    """
    registry = _registry()
    if name in registry:
        factory = registry[name]
    elif isinstance(name, str) and "." in name.strip("."):
        module_name, _, attr = name.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InputError(f"learner {name!r}: cannot import module {module_name!r} "
                             f"({exc})") from None
        factory = getattr(module, attr, None)
        if factory is None or not callable(factory):
            raise InputError(f"learner {name!r}: module {module_name!r} has no class {attr!r}")
    else:
        raise InputError(
            f"unknown learner {name!r}; valid learners: {', '.join(sorted(registry))}, "
            "or a dotted import path such as sklearn.ensemble.RandomForestClassifier"
        )
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        raise InputError(f"learner {name!r}: {exc}") from None
    except ValueError:  # no signature to inspect (some builtins): let the call decide
        pass
    learner = factory(**params)
    if not is_learner(learner):
        raise InputError(f"learner {name!r} has no fit/predict_proba, so it cannot give "
                         "class probabilities")
    return learner
