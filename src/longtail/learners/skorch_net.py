"""Any skorch-wrapped network as a learner (``--learner skorch``, extra ``[torch]``).

``make_learner("skorch", module="package.module.Net", module_params={...}, max_epochs=20)``
imports the torch module class ``Net`` by its dotted path and trains it with skorch's
``NeuralNetClassifier`` (cross-entropy on the module's logits, Adam, no internal
validation split). ``Net.__init__`` receives ``n_features`` and ``n_classes`` when it
names them, then ``module_params``. The adapter gives the learner contract what skorch
does not: any labels (strings included; encoded to 0..C-1, ``classes_`` sorted),
float32 inputs, a seed. Saved without pickle: the module's state dict as arrays beside
the spec (module path and parameters), format ``longtail.skorch/1``; loading imports
the module class by the same path, as training did.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from longtail.errors import InputError

FORMAT = "longtail.skorch/1"


def _module_class(path: str) -> type:
    module_name, _, attr = str(path).rpartition(".")
    if not module_name:
        raise InputError(f"skorch module {path!r}: expected a dotted path such as "
                         "mypackage.nets.SmallNet")
    try:
        cls = getattr(importlib.import_module(module_name), attr, None)
    except ImportError as exc:
        raise InputError(f"skorch module {path!r}: cannot import {module_name!r} ({exc})") from None
    if not isinstance(cls, type):
        raise InputError(f"skorch module {path!r}: {module_name!r} has no class {attr!r}")
    return cls


class SkorchNet(ClassifierMixin, BaseEstimator):
    """A skorch ``NeuralNetClassifier`` over the torch module at dotted path ``module``,
    behind the learner contract (see the module doc)."""

    warm_start = False  # every round trains from scratch (fresh_like)

    def __init__(self, module: str = "", module_params: dict | None = None,
                 max_epochs: int = 20, lr: float = 0.01, batch_size: int = 64,
                 seed: int = 0, device: str = "cpu") -> None:
        self.module = module
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.device = device

    def _net(self, n_features: int, n_classes: int) -> Any:
        try:
            import torch
            from skorch import NeuralNetClassifier
        except ImportError:  # pragma: no cover - the extra brings both
            raise InputError("the skorch learner needs torch and skorch: pip install "
                             "'longtail[torch]'") from None
        cls = _module_class(self.module)
        names = inspect.signature(cls).parameters
        given = {k: v for k, v in (("n_features", n_features), ("n_classes", n_classes))
                 if k in names}
        params = {f"module__{k}": v for k, v in {**given, **(self.module_params or {})}.items()}
        return NeuralNetClassifier(
            cls, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
            lr=self.lr, max_epochs=self.max_epochs, batch_size=self.batch_size,
            train_split=None, verbose=0, device=self.device, classes=list(range(n_classes)),
            **params)

    def fit(self, X: Any, y: Any) -> SkorchNet:
        import torch

        X = np.asarray(X, np.float32)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = X.shape[1]
        torch.manual_seed(self.seed)
        self.net_ = self._net(X.shape[1], len(self.classes_))
        self.net_.fit(X, codes.astype(np.int64))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.net_.predict_proba(np.asarray(X, np.float32)), np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def state_dict(self) -> dict[str, Any]:
        """``{"meta", "arrays"}``: the spec, classes and the module's weights as arrays."""
        classes = np.asarray(self.classes_)
        arrays = {f"w:{k}": v.detach().cpu().numpy().copy()
                  for k, v in self.net_.module_.state_dict().items()}
        meta = {"format": FORMAT, "params": self.get_params(), "classes": classes.tolist(),
                "classes_dtype": "object" if classes.dtype == object else classes.dtype.str,
                "n_features_in": int(self.n_features_in_)}
        return {"meta": meta, "arrays": arrays}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SkorchNet:
        import torch

        meta = state["meta"]
        model = cls(**meta["params"])
        dtype = object if meta.get("classes_dtype") == "object" else meta.get("classes_dtype")
        model.classes_ = np.asarray(meta["classes"], dtype=dtype)
        model.n_features_in_ = int(meta["n_features_in"])
        model.net_ = model._net(model.n_features_in_, len(model.classes_)).initialize()
        weights = {k[2:]: torch.from_numpy(np.asarray(v)) for k, v in state["arrays"].items()
                   if k.startswith("w:")}
        try:
            model.net_.module_.load_state_dict(weights)
        except RuntimeError as exc:
            raise InputError(f"saved skorch net does not match its module: {exc}") from None
        return model
