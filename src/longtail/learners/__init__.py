"""Learners: the model contract, the warm-started linear head, committees.

    from longtail.learners import make_learner
    head = make_learner()                 # LinearHead(C=10, max_iter=300, warm_start=True)
    head.fit(X, y).predict_proba(X_pool)  # (n, C), columns in head.classes_ order
    rf = make_learner("sklearn.ensemble.RandomForestClassifier", n_estimators=200)
"""

from __future__ import annotations

from longtail.learners.base import Learner, is_learner, learner_names, make_learner
from longtail.learners.committee import bootstrap_committee, committee_probs
from longtail.learners.linear import LinearHead

__all__ = [
    "Learner",
    "LinearHead",
    "bootstrap_committee",
    "committee_probs",
    "is_learner",
    "learner_names",
    "make_learner",
]
