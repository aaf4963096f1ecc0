"""`longtail transfer`: does the set that selection built help another model family?

A sample is informative for the model that chose it and may not be for the next; the
model that ships is often not the one that selected. This trains ``learner`` (another
family, on the project's vectors or another vector set) on the labels selection bought
and on an equal number of random labels, and reports the gain with its interval: the
same equal-count comparison as the project's own verdict (`evaluation.arm_lift`: the
control arm when there are 10 or more control labels, else the eval set cross-fitted
as the random arm), only with the other learner. Recorded per learner in the setting
``transfer``, which `status` and the report read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from longtail.engine import evaluation
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError
from longtail.learners import make_learner
from longtail.store import UnitOfWork

SETTING = "transfer"


@dataclass(frozen=True)
class TransferResult(Record):
    """Selection's gain for ``learner`` over an equal-size random set: ``gain`` in
    accuracy units with its ``lo``..``hi`` interval (``level``), at ``n_labels`` labels
    per arm, both arms' accuracy on the eval set, and how the random arm was drawn."""

    learner: str
    learner_params: dict[str, Any]
    encoder: str
    selected_with: str
    gain: float
    lo: float
    hi: float
    level: float
    n_labels: int
    acc_selected: float
    acc_random: float
    method: str
    eval_set: str
    verdict: str


def transfer(uow: UnitOfWork, settings: Settings, learner: str,
             learner_params: dict[str, Any] | None = None, *,
             encoder: str | None = None) -> TransferResult:
    """Train ``learner`` on the selected labels and on an equal-size random set (see the
    module doc), record the result under the setting ``transfer`` and return it.
    InputError when the learner cannot be built or there is not yet enough to compare
    (no eval labels, or fewer than 10 control labels and 20 eval labels)."""
    params = dict(learner_params or {})
    make_learner(learner, **params)  # a bad name or parameter fails here, not mid-way
    other = replace(settings, learner=learner, learner_params=params,
                    encoder=encoder or settings.encoder)
    arms = evaluation.arm_lift(uow, other)
    if arms is None:
        raise InputError(
            "transfer needs labeled eval samples and either 10 or more control labels or 20 "
            "or more eval labels (the random arm): label more of the eval set first")
    result = TransferResult(
        learner=learner, learner_params=params, encoder=str(other.encoder),
        selected_with=settings.learner, gain=arms.lift, lo=arms.lo, hi=arms.hi,
        level=arms.level, n_labels=arms.n_labels, acc_selected=arms.acc_selected,
        acc_random=arms.acc_control, method=arms.method, eval_set=arms.eval_set,
        verdict=f"trained with {learner}: {arms.verdict}")
    recorded = dict(uow.settings.get(SETTING) or {})
    recorded[learner] = result.to_dict()
    uow.settings.set(SETTING, recorded)
    return result


def recorded(uow: UnitOfWork) -> list[TransferResult]:
    """Every transfer result recorded, one per learner (the latest for each)."""
    return [TransferResult(**v) for v in (uow.settings.get(SETTING) or {}).values()]
