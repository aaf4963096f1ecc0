"""Learners: the model contract, the warm-started linear head, committees.

    from longtail.learners import make_learner
    head = make_learner()                 # LinearHead(C=10, max_iter=300, warm_start=True)
    head.fit(X, y).predict_proba(X_pool)  # (n, C), columns in head.classes_ order
    rf = make_learner("sklearn.ensemble.RandomForestClassifier", n_estimators=200)
    pipe = make_learner("pipeline", steps=["sklearn.preprocessing.StandardScaler",
                        "sklearn.svm.SVC"], svc__probability=True)
    make_learner(name, **parse_learner_params(["n_estimators=200"]))  # --learner-param

    from longtail.learners import persist   # saving without pickle
    np.savez(path, **persist.dump(rf)); rf2 = persist.load(dict(np.load(path)))
"""

from __future__ import annotations

from longtail._lazy import lazy_exports
from longtail.learners.base import (
    Learner,
    is_learner,
    learner_names,
    make_learner,
    parse_learner_params,
)
from longtail.learners.committee import bootstrap_committee, committee_probs

# LinearHead imports scikit-learn: loaded when first used.
__getattr__, __dir__ = lazy_exports(__name__, {"linear": ("LinearHead",)})

__all__ = [
    "Learner",
    "LinearHead",
    "bootstrap_committee",
    "committee_probs",
    "is_learner",
    "learner_names",
    "make_learner",
    "parse_learner_params",
]
