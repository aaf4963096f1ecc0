"""The managed eval set's accuracy by the project's estimator, for the eval budget,
`status` and `evaluate`.

The population is the managed eval split (a uniform sample of the stream that no model
trains on); its labeled rows are a uniform draw of it. The estimator
(``settings.eval_estimator``: "ppi" by default, or "uniform") is computed from the
latest model's class probabilities on every eval-split row, with the confidence
surrogate cross-fitted on the labeled eval rows (``longtail.evaluation.estimators``).
The labeled eval set stays uniform: the estimator changes how its labels are used,
never which rows are labeled. Figures are cached in the catalog's settings per (model,
labeled eval rows), so `status` does not re-predict.
"""

from __future__ import annotations

import numpy as np

from longtail.engine import views
from longtail.engine.eval_records import ManagedEstimate
from longtail.engine.settings import Settings
from longtail.store import UnitOfWork

ESTIMATORS = ("ppi", "uniform")
DEFAULT_ESTIMATOR = "ppi"
_CACHE_KEY = "eval_estimate"
_CHUNK = 65_536


def managed_estimate(uow: UnitOfWork, settings: Settings, model_meta: dict | None = None,
                     *, write_cache: bool = True) -> ManagedEstimate | None:
    """The estimate of the model's accuracy (default: the latest model) on the managed
    eval split; None with no model or no labeled eval row.

    Cost: one prediction pass over the eval split (O(N·d·C) for N eval rows, in chunks)
    and O(n·C) for the cross-fitted calibration; cached (``write_cache``: the callers
    that write, e.g. `train`) per model, labeled eval set and estimator.
    """
    meta = model_meta or uow.models.latest()
    if meta is None:
        return None
    rows, labels = views.labeled(uow, "eval")
    if len(rows) == 0:
        return None
    chosen = getattr(settings, "eval_estimator", None) or DEFAULT_ESTIMATOR
    key = f"{meta['id']}:{views.labels_fingerprint(rows, labels)}:{chosen}"
    cached = uow.settings.get(_CACHE_KEY)
    if cached and cached.get("key") == key:
        try:
            return ManagedEstimate.from_dict(cached["estimate"])
        except (KeyError, TypeError):
            pass  # cached by an older longtail: computed again below
    # Past the cache only (`status` reads the cached estimate without them).
    from longtail.engine.models import load_model
    from longtail.evaluation.estimators import crossfit_confidence, ppi_mean, uniform_mean

    vs = uow.vector_set(meta["encoder"])
    split = uow.samples.rows_by_split("eval")
    split = split[split < vs.n_rows]
    rows, labels = rows[rows < vs.n_rows], labels[rows < vs.n_rows]
    if len(rows) == 0:
        return None
    model = load_model(uow, meta, predict_only=True)
    classes = np.asarray(model.classes_).astype(str)
    probs_all = np.concatenate([model.predict_proba(vs.read(split[i:i + _CHUNK]))
                                for i in range(0, len(split), _CHUNK)])
    pos = np.searchsorted(split, rows)
    probs_lab = probs_all[pos]
    correct = (classes[probs_lab.argmax(1)] == labels.astype(str)).astype(np.float64)
    uniform = uniform_mean(correct)
    est = uniform
    if chosen == "ppi":
        f_lab, f_all = crossfit_confidence(probs_lab, correct, probs_all, folds=2,
                                           seed=int(settings.seed))
        est = ppi_mean(correct, f_lab, f_all)
    out = ManagedEstimate(
        estimator=est.method, method=est.method, value=est.value, lo=est.lo, hi=est.hi,
        halfwidth=est.halfwidth, n_labels=est.n_labels, sd1=est.sd1,
        note=est.note if est.method == chosen else f"{chosen} asked for; {est.note}",
        population=int(len(split)), model_id=int(meta["id"]), uniform=uniform.to_dict(),
        # the large-sample interval did not hold: the exact one was used instead
        small_n_fallback="Clopper-Pearson" in est.note and est.method == chosen)
    if write_cache:
        uow.settings.set(_CACHE_KEY, {"key": key, "estimate": out.to_dict()})
    return out
