"""The current model's top classes for one leased task: one row's vector through the
saved model, so the labeling page can offer the likeliest classes first."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np

from longtail.engine import views
from longtail.engine.models import load_model
from longtail.engine.settings import Settings
from longtail.errors import LongtailError
from longtail.store import Store, UnitOfWork

log = logging.getLogger(__name__)


def top_classes_in(uow: UnitOfWork, settings: Settings, row: int, k: int = 3,
                   model: Any = None, meta: dict | None = None) -> list[str]:
    """The `k` classes the latest model (or `model`, saved as `meta`) finds likeliest for
    `row`, likeliest first; [] without a model or without a vector for the row."""
    meta = meta or uow.models.latest()
    if meta is None or k <= 0:
        return []
    vs = views.vectors(uow, settings, meta["encoder"], complete=False)
    if not 0 <= row < vs.n_rows:
        return []  # not embedded yet: no suggestion rather than a wrong one
    model = model if model is not None else load_model(uow, meta, predict_only=True)
    if model is None:
        return []
    proba = np.asarray(model.predict_proba(vs.read(np.asarray([row], dtype=np.int64))))[0]
    order = np.argsort(-proba, kind="stable")[:k]
    classes = [str(c) for c in model.classes_]
    return [classes[int(i)] for i in order]


class Suggester:
    """`top_classes_in` with the loaded model kept until a newer one is saved, so a lease
    pays for one row's prediction, not for reading the model file. Whether a model
    exists is looked up at most once per `recheck` seconds: without one, a lease pays
    nothing (the lease route is the service's hot path)."""

    def __init__(self, recheck: float = 1.0) -> None:
        self.recheck = recheck
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._claimed = -math.inf  # when a caller of `none_known` took the next look
        self._meta: dict | None = None
        self._model: Any = None

    def none_known(self) -> bool:
        """Whether a call would return [] without reading anything (the caller may skip
        its thread hop): no model was found in the last `recheck` seconds, or another
        caller is looking now. The first caller once `recheck` seconds have passed
        claims the look (for `recheck` seconds): under load every lease of that moment
        would otherwise hop to a worker thread and open a read of its own, and the
        service kept some thirty idle threads for them. Call it from one thread."""
        if self._meta is not None:
            return False
        now = time.monotonic()
        if now - self._checked < self.recheck or now - self._claimed < self.recheck:
            return True
        self._claimed = now
        return False

    def __call__(self, store: Store, row: int, k: int = 3) -> list[str]:
        """The top `k` classes for `row` in `store`'s project ([] without a model)."""
        now = time.monotonic()
        if self._meta is None and now - self._checked < self.recheck:
            return []
        with store.reading() as uow:
            with self._lock:
                if now - self._checked >= self.recheck:
                    self._checked = now
                    meta = uow.models.latest()
                    if meta is None or self._meta is None or meta["id"] != self._meta["id"]:
                        self._model = (load_model(uow, meta, predict_only=True)
                                       if meta is not None else None)
                        self._meta = meta
                meta, model = self._meta, self._model
            if meta is None or model is None:
                return []
            settings = Settings.from_dict(uow.settings.all())
            try:
                return top_classes_in(uow, settings, row, k, model=model, meta=meta)
            except (LongtailError, OSError, ValueError, KeyError) as e:
                # A suggestion is a help, never a reason to refuse a lease (vectors of
                # the model's encoder gone, a model of another dimension).
                log.warning("no suggestion for row %d: %s", row, type(e).__name__)
                return []
