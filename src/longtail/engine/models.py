"""Saved models: how a learner is written with its spec and read back by later commands."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.learners.base import Learner
from longtail.store import UnitOfWork

SPEC_KEY = "__spec__"


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds, without pickle: `arrays`, the members the store writes
    (the learner's own arrays or its skops serialisation, and the spec under
    `SPEC_KEY`), and the engine's `spec` (learner, parameters, the labels it was
    fitted on)."""

    arrays: dict[str, np.ndarray]
    spec: dict[str, Any]


def model_arrays(model: Learner, spec: dict[str, Any]) -> ModelFile:
    """The model file's content: the learner's own arrays (the linear head) or its skops
    serialisation (any other learner; one that cannot be saved safely is an InputError
    here, before anything is written), and the engine's spec."""
    from longtail.learners.persist import dump

    arrays = dump(model, spec={"name": spec["learner"], "params": spec.get("params", {})})
    arrays[SPEC_KEY] = np.array(json.dumps(spec))
    return ModelFile(arrays, spec)


def load_model(uow: UnitOfWork, meta: dict | None = None, *, predict_only: bool = False
               ) -> Learner | None:
    """The saved model `meta` (default: the latest), ready to predict; None when there is
    none. `predict_only`: a linear head loads without scikit-learn (scoring only)."""
    from longtail.learners.persist import load

    meta = meta or uow.models.latest()
    if meta is None:
        return None
    arrays = uow.models.arrays(meta)
    arrays.pop(SPEC_KEY, None)
    return load(arrays, predict_only=predict_only)


@dataclass(frozen=True)
class SavedSpec:
    """What the engine saved beside a model: its learner and parameters, and the
    fingerprint of the labels it was fitted on (None in files saved before it was)."""

    learner: str
    params: dict[str, Any]
    labels_fingerprint: str | None = None


def saved_spec(uow: UnitOfWork, meta: dict) -> SavedSpec:
    """Everything the engine saved beside a model: learner, params, labels fingerprint."""
    arrays = uow.models.arrays(meta)
    if SPEC_KEY in arrays:
        spec = json.loads(str(arrays[SPEC_KEY]))
        return SavedSpec(spec["learner"], dict(spec.get("params") or {}),
                         spec.get("labels_fingerprint"))
    return SavedSpec(meta["learner"], {})
