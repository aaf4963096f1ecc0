"""The learner contract and the registry that builds learners by name."""

from __future__ import annotations

import importlib
import inspect
import json
import re
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


def _mlp(**params: Any) -> Learner:
    """The torch MLP (imported only when asked for: torch is an optional extra)."""
    from longtail.learners.torch_mlp import TorchMLP

    return TorchMLP(**params)


def _cnn(**params: Any) -> Learner:
    """The torch CNN on flattened square images (the `pixels-raw` encoder's vectors)."""
    from longtail.learners.torch_cnn import TorchCNN

    return TorchCNN(**params)


def _skorch(**params: Any) -> Learner:
    """Any torch module trained by skorch (`longtail.learners.skorch_net`)."""
    from longtail.learners.skorch_net import SkorchNet

    return SkorchNet(**params)


def _registry() -> dict[str, Callable[..., Learner]]:
    from longtail.learners.linear import LinearHead

    return {"linear": LinearHead, "mlp": _mlp, "cnn": _cnn, "skorch": _skorch}


def learner_names() -> list[str]:
    return sorted(_registry())


PIPELINE = "pipeline"

_PARAM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_learner_params(items: list[str] | tuple[str, ...],
                         option: str = "--learner-param") -> dict[str, Any]:
    """``["n_estimators=200", "criterion=entropy"]`` -> ``{"n_estimators": 200, "criterion": "entropy"}``.

    For the CLI's repeatable ``--learner-param KEY=VALUE``: the value is parsed as JSON
    (``200``, ``0.5``, ``true``, ``null``, ``[1, 2]``, ``{"a": 1}``, ``"quoted"``), and
    kept as the plain string when it is not JSON (``entropy``). KEY is a Python
    identifier (``svc__probability`` sets a pipeline step's parameter). An item without
    ``=``, with a bad key, or a key given twice raises InputError naming the item.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not _PARAM_KEY.fullmatch(key):
            raise InputError(f"{option} {item!r}: expected KEY=VALUE with KEY a "
                             "parameter name, e.g. n_estimators=200")
        if key in params:
            raise InputError(f"{option} {item!r}: {key!r} is given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:  # not JSON: a bare word such as entropy or sqrt
            params[key] = raw
    return params


def _import_factory(name: str, role: str = "learner") -> Callable[..., Any]:
    """The callable at dotted path ``name`` ("package.module.Class"); InputError if none."""
    if not (isinstance(name, str) and "." in name.strip(".")):
        raise InputError(f"{role} {name!r}: expected a dotted import path such as "
                         "sklearn.ensemble.RandomForestClassifier")
    module_name, _, attr = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{role} {name!r}: cannot import module {module_name!r} "
                         f"({exc})") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise InputError(f"{role} {name!r}: module {module_name!r} has no class {attr!r}")
    return factory


def _check_params(name: str, factory: Callable[..., Any], params: dict[str, Any]) -> None:
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        raise InputError(f"learner {name!r}: {exc}") from None
    except ValueError:  # no signature to inspect (some builtins): let the call decide
        pass


def _make_pipeline(steps: Any = None, **step_params: Any) -> Learner:
    """``make_learner("pipeline", steps=[dotted paths...], <step>__<param>=value...)``.

    Each step is built with no arguments and joined by ``sklearn.pipeline.make_pipeline``,
    which names a step after its class in lower case (StandardScaler -> "standardscaler");
    ``step_params`` then go through ``Pipeline.set_params``, as in scikit-learn.
    """
    if (not isinstance(steps, (list, tuple)) or not steps
            or not all(isinstance(step, str) for step in steps)):
        raise InputError(
            f"learner 'pipeline': steps must be a non-empty list of dotted class paths, e.g. "
            f'steps=["sklearn.preprocessing.StandardScaler", '
            f'"sklearn.linear_model.LogisticRegression"], got {steps!r}')
    from sklearn.pipeline import make_pipeline

    objects = []
    for step in steps:
        factory = _import_factory(step, role="pipeline step")
        try:
            objects.append(factory())
        except TypeError as exc:
            raise InputError(f"pipeline step {step!r} cannot be built without "
                             f"arguments: {exc}") from None
    for step, obj in zip(steps[:-1], objects[:-1], strict=True):
        if not (callable(getattr(obj, "fit", None)) and callable(getattr(obj, "transform", None))):
            raise InputError(f"pipeline step {step!r} has no fit/transform, so only the "
                             "last step may be it")
    pipeline = make_pipeline(*objects)
    try:
        pipeline.set_params(**step_params)
    except (TypeError, ValueError) as exc:
        names = ", ".join(name for name, _ in pipeline.steps)
        raise InputError(f"learner 'pipeline': {exc} (step names: {names}; a step's "
                         "parameter is given as <step name>__<parameter>)") from None
    return pipeline


def make_learner(name: str = "linear", **params: Any) -> Learner:
    """Build a learner: "linear" (the default), "pipeline", or any dotted import path.

    ``make_learner("sklearn.ensemble.RandomForestClassifier", n_estimators=200)``
    builds any class (or factory function) with ``fit`` and ``predict_proba``.
    ``make_learner("pipeline", steps=["sklearn.preprocessing.StandardScaler",
    "sklearn.svm.SVC"], svc__probability=True)`` builds a scikit-learn ``Pipeline``
    whose step names are the lower-cased class names. Unknown names, failed imports,
    bad parameters and learners without ``predict_proba`` raise InputError.
    ``(name, params)`` is the learner's spec: `persist.dump` stores it and
    `persist.fresh_like` rebuilds an untrained learner from it.
    """
    registry = _registry()
    if name in registry:
        factory = registry[name]
        _check_params(name, factory, params)
    elif name == PIPELINE:
        factory = _make_pipeline
    elif isinstance(name, str) and "." in name.strip("."):
        factory = _import_factory(name)
        _check_params(name, factory, params)
    else:
        raise InputError(
            f"unknown learner {name!r}; valid learners: {', '.join(sorted(registry))}, "
            f"{PIPELINE}, or a dotted import path such as sklearn.ensemble.RandomForestClassifier"
        )
    try:
        learner = factory(**params)
    except (TypeError, ValueError) as exc:  # a constructor that validates its arguments
        raise InputError(f"learner {name!r}: {exc}") from None
    if not is_learner(learner):
        raise InputError(f"learner {name!r} has no fit/predict_proba, so it cannot give "
                         "class probabilities")
    return learner
