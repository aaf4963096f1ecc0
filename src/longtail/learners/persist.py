"""Saving learners as arrays, without pickle.

    arrays = persist.dump(model, spec={"name": "sklearn.svm.SVC", "params": {...}})
    np.savez(path, **arrays)
    with np.load(path, allow_pickle=False) as data:
        model = persist.load(dict(data))      # predicts exactly as before

Two formats, told apart by the JSON string in ``arrays["__meta__"]``:

- ``"longtail.LinearHead/1"``: the default learner's own arrays (``coef``,
  ``intercept``) from ``LinearHead.state_dict``; the layout models were saved in
  before other learners existed, so those still load.
- ``"longtail.skops/1"``: any other estimator, serialised by skops
  (``skops.io.dumps``) into the uint8 array ``arrays["skops"]``.

skops rebuilds only the types it trusts (scikit-learn's own estimators and trees,
numpy, scipy). Types it does not trust by default are accepted only when their
top-level package is scikit-learn, numpy, scipy or longtail; a type from any other
module (a user's class, ``__main__``, a lambda) could run arbitrary code while
loading, so `dump` refuses it at save time and `load` refuses a payload that names
one (tampered, or written by something else). The meta also holds the learner's
spec (name and JSON parameters) so `fresh_like` can build an untrained copy.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from longtail.errors import InputError
from longtail.learners.base import Learner, is_learner, make_learner

__all__ = ["META_KEY", "SKOPS_KEY", "dump", "fresh_like", "load", "read_meta", "spec_of",
           "warm_starts"]

META_KEY = "__meta__"
SKOPS_KEY = "skops"
LINEAR_FORMAT = "longtail.LinearHead/1"
SKOPS_FORMAT = "longtail.skops/1"
TORCH_FORMAT = "longtail.torch-mlp/1"  # learners/torch_mlp.py: weights as arrays + architecture
TORCH_CNN_FORMAT = "longtail.torch-cnn/1"  # learners/torch_cnn.py: the same, a CNN
# The torch learners by (module, class): their spec name and saved format.
SKORCH_FORMAT = "longtail.skorch/1"  # learners/skorch_net.py: module weights + spec
_TORCH = {("longtail.learners.torch_mlp", "TorchMLP"): ("mlp", TORCH_FORMAT),
          ("longtail.learners.torch_cnn", "TorchCNN"): ("cnn", TORCH_CNN_FORMAT),
          ("longtail.learners.skorch_net", "SkorchNet"): ("skorch", SKORCH_FORMAT)}
# Packages whose types skops may rebuild when it does not trust them by default.
TRUSTED_PACKAGES = ("sklearn", "numpy", "scipy", "longtail")


def _is_linear_head(model: Any) -> bool:
    from longtail.learners.linear import LinearHead

    return type(model) is LinearHead  # a subclass may hold state state_dict would drop


def _is_torch_mlp(model: Any) -> bool:
    """A longtail torch learner (MLP or CNN), checked by name, so saving a linear head
    never imports torch."""
    return (type(model).__module__, type(model).__name__) in _TORCH


def _trusted_type(name: str) -> bool:
    """Whether a type named by skops ("sklearn.tree._tree.Tree") may be rebuilt."""
    parts = name.split(".")
    # A lambda or a function defined inside another one cannot be imported by name
    # when loading; refuse it rather than save a model that will not load.
    return (parts[0] in TRUSTED_PACKAGES and len(parts) > 1
            and not any(p.startswith("<") for p in parts))


def _json_or_none(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None


def spec_of(model: Any) -> dict[str, Any] | None:
    """``{"name": ..., "params": {...}}`` that `make_learner` rebuilds ``model``'s kind
    from, or None when its parameters are not plain JSON (e.g. a Pipeline's steps;
    `fresh_like(model)` still works then)."""
    if _is_linear_head(model):
        return {"name": "linear", "params": model.get_params()}
    if _is_torch_mlp(model):
        return {"name": _TORCH[(type(model).__module__, type(model).__name__)][0],
                "params": model.get_params()}
    cls = type(model)
    get_params = getattr(model, "get_params", None)
    params = _json_or_none(get_params(deep=False)) if callable(get_params) else {}
    if params is None:
        return None
    return {"name": f"{cls.__module__}.{cls.__qualname__}", "params": params}


def _check_spec(spec: Any) -> dict[str, Any]:
    if (not isinstance(spec, dict) or not isinstance(spec.get("name"), str)
            or not isinstance(spec.get("params", {}), dict)):
        raise InputError(f"a learner spec is {{'name': str, 'params': dict}}, got {spec!r}")
    params = _json_or_none(spec.get("params", {}))
    if params is None:
        raise InputError(f"learner {spec['name']!r}: parameters must be plain JSON values "
                         f"to be saved, got {spec.get('params')!r}")
    return {"name": spec["name"], "params": params}


def _classes_meta(model: Any) -> dict[str, Any]:
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise InputError(f"{type(model).__name__} is not trained yet (no classes_): "
                         "fit it before saving")
    classes = np.asarray(classes)
    return {"classes": classes.tolist(),
            "classes_dtype": "object" if classes.dtype == object else classes.dtype.str}


def dump(model: Learner, spec: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """A trained learner as arrays for ``np.savez`` (loadable with ``allow_pickle=False``).

    ``spec``: ``{"name", "params"}`` it was built from with `make_learner` (default:
    `spec_of(model)`), stored for `fresh_like`. A `LinearHead` is saved as its own
    arrays; any other learner through skops, and only if every type in it is one
    `load` will accept: otherwise (skops cannot serialise it, a class from another
    package, a lambda) InputError naming the types, and nothing is returned. The skops
    payload is loaded back once here, so a model that saves also loads.
    Memory: one serialised copy of the model.
    """
    if not is_learner(model):
        raise InputError(f"{type(model).__name__} has no fit/predict_proba: not a learner")
    spec = spec_of(model) if spec is None else _check_spec(spec)
    if _is_torch_mlp(model):
        state = model.state_dict()
        meta = {**state["meta"], "learner": spec}
        return {**state["arrays"], META_KEY: np.array(json.dumps(meta))}
    if _is_linear_head(model):
        state = model.state_dict()
        meta = {**state["meta"], "learner": spec}
        return {**state["arrays"], META_KEY: np.array(json.dumps(meta))}
    import sklearn
    import skops
    import skops.io as sio

    classes = _classes_meta(model)
    what = f"learner {type(model).__module__}.{type(model).__qualname__}"
    try:
        payload = sio.dumps(model)
    except Exception as exc:  # skops raises many kinds (TypeError, UnsupportedTypeException, ...)
        raise InputError(f"{what} cannot be saved safely: skops refused it "
                         f"({type(exc).__name__}: {exc})") from None
    untrusted = sio.get_untrusted_types(data=payload)
    refused = [t for t in untrusted if not _trusted_type(t)]
    if refused:
        raise InputError(f"{what} cannot be saved safely: it holds types from outside "
                         f"{', '.join(TRUSTED_PACKAGES)} ({', '.join(refused)}), which "
                         "could run arbitrary code when loaded; use classes from those "
                         "packages (a Pipeline of scikit-learn steps, not a lambda)")
    try:
        sio.loads(payload, trusted=untrusted)
    except Exception as exc:
        raise InputError(f"{what} cannot be saved safely: skops writes it but cannot "
                         f"load it back ({type(exc).__name__}: {exc})") from None
    meta = {"format": SKOPS_FORMAT, "learner": spec, **classes,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "skops_version": skops.__version__, "sklearn_version": sklearn.__version__}
    return {SKOPS_KEY: np.frombuffer(payload, dtype=np.uint8).copy(),
            META_KEY: np.array(json.dumps(meta))}


def read_meta(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The JSON meta of a dump (format, learner spec, classes...), without loading the model."""
    if META_KEY not in arrays:
        raise InputError(f"not a saved learner: no {META_KEY!r} array "
                         f"(arrays: {', '.join(sorted(arrays)) or 'none'})")
    try:
        meta = json.loads(str(np.asarray(arrays[META_KEY])))
    except ValueError as exc:
        raise InputError(f"saved learner: {META_KEY!r} is not JSON ({exc})") from None
    if not isinstance(meta, dict) or "format" not in meta:
        raise InputError(f"saved learner: {META_KEY!r} has no format")
    return meta


def load(arrays: dict[str, np.ndarray], *, predict_only: bool = False) -> Learner:
    """The learner `dump` saved, predicting exactly as it did (``arrays`` as from ``np.load``).

    ``predict_only``: a linear head comes back as a `LinearScorer` (numpy only, no
    scikit-learn import), for callers that only score, such as `query`.

    A skops payload naming a type outside scikit-learn, numpy, scipy and longtail, or
    one that is corrupt, or whose classes differ from the meta's, raises InputError
    (naming the types) and nothing is built.
    """
    meta = read_meta(arrays)
    fmt = meta["format"]
    if fmt == LINEAR_FORMAT:
        missing = {"coef", "intercept"} - set(arrays)
        if missing:
            raise InputError(f"saved LinearHead: missing arrays {', '.join(sorted(missing))}")
        if predict_only:
            from longtail.learners.scorer import LinearScorer

            dtype = object if meta.get("classes_dtype") == "object" else meta.get("classes_dtype")
            return LinearScorer(np.asarray(meta["classes"], dtype=dtype), arrays["coef"],
                                arrays["intercept"])
        from longtail.learners.linear import LinearHead

        return LinearHead.from_state_dict(
            {"meta": meta, "arrays": {"coef": arrays["coef"], "intercept": arrays["intercept"]}})
    if fmt == TORCH_FORMAT:
        from longtail.learners.torch_mlp import TorchMLP

        return TorchMLP.from_state_dict(
            {"meta": meta, "arrays": {k: v for k, v in arrays.items() if k != META_KEY}})
    if fmt == TORCH_CNN_FORMAT:
        from longtail.learners.torch_cnn import TorchCNN

        return TorchCNN.from_state_dict(
            {"meta": meta, "arrays": {k: v for k, v in arrays.items() if k != META_KEY}})
    if fmt == SKORCH_FORMAT:
        from longtail.learners.skorch_net import SkorchNet

        return SkorchNet.from_state_dict(
            {"meta": meta, "arrays": {k: v for k, v in arrays.items() if k != META_KEY}})
    if fmt != SKOPS_FORMAT:
        raise InputError(f"saved learner has unknown format {fmt!r} (known: "
                         f"{LINEAR_FORMAT}, {SKOPS_FORMAT}, {TORCH_FORMAT}, "
                         f"{TORCH_CNN_FORMAT}, {SKORCH_FORMAT})")
    if SKOPS_KEY not in arrays:
        raise InputError(f"saved learner ({fmt}): no {SKOPS_KEY!r} array")
    import skops.io as sio

    payload = np.asarray(arrays[SKOPS_KEY])
    if payload.dtype != np.uint8 or payload.ndim != 1:
        raise InputError(f"saved learner ({fmt}): {SKOPS_KEY!r} must be 1-d uint8, got "
                         f"{payload.dtype} {payload.shape}")
    data = payload.tobytes()
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InputError(f"saved learner ({fmt}) is corrupt: "
                         f"{type(exc).__name__}: {exc}") from None
    refused = [t for t in untrusted if not _trusted_type(t)]
    if refused:
        raise InputError(f"saved learner refused: it names types from outside "
                         f"{', '.join(TRUSTED_PACKAGES)} ({', '.join(refused)}), which "
                         "could run arbitrary code when loaded")
    try:
        model = sio.loads(data, trusted=untrusted)
    except Exception as exc:
        raise InputError(f"saved learner ({fmt}) cannot be loaded: "
                         f"{type(exc).__name__}: {exc}") from None
    if not is_learner(model):
        raise InputError(f"saved learner ({fmt}) is a {type(model).__name__}, which has no "
                         "fit/predict_proba")
    classes = np.asarray(getattr(model, "classes_", []))
    if classes.tolist() != meta.get("classes"):
        raise InputError(f"saved learner ({fmt}) is inconsistent: its classes "
                         f"{classes.tolist()!r} differ from the meta's {meta.get('classes')!r}")
    return model


def warm_starts(model: Any) -> bool:
    """Whether fitting ``model`` again continues from its learned state (LinearHead with
    ``warm_start``): then the loop keeps fitting the loaded model; otherwise it fits
    `fresh_like(model)`, so every round trains from scratch."""
    return (_is_linear_head(model) or _is_torch_mlp(model)) and bool(model.warm_start)


def fresh_like(source: Any) -> Learner:
    """An untrained learner of the same kind and parameters as ``source``.

    ``source``: a learner (trained or not; scikit-learn estimators are cloned, which
    also covers a Pipeline), a dump's meta (`read_meta`), or a spec
    ``{"name", "params"}`` (built with `make_learner`). InputError when a meta holds
    no spec (its parameters were not JSON): load the model and pass it instead.
    """
    if isinstance(source, dict):
        spec = source.get("learner") if "format" in source else source
        if spec is None:
            raise InputError("the saved learner's parameters are not plain JSON, so its "
                             "spec was not stored: pass the loaded model to fresh_like")
        spec = _check_spec(spec)
        return make_learner(spec["name"], **spec["params"])
    if _is_linear_head(source) or _is_torch_mlp(source):
        return type(source)(**source.get_params())
    if not is_learner(source):
        raise InputError(f"{type(source).__name__} has no fit/predict_proba: not a learner")
    from sklearn.base import clone

    try:
        return clone(source)
    except (TypeError, RuntimeError) as exc:
        raise InputError(f"cannot build an untrained copy of {type(source).__name__}: "
                         f"{exc}") from None
