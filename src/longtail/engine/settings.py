"""The project's settings as one typed record, read from the catalog once per use case."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from longtail.errors import InputError
from longtail.store import Store

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "eval_rate": 0.05,
    "eval_cap": 5000,
    # The most of every label paid that the eval set takes while its target is unmet
    # (evaluation/budget.py): 0.1, chosen on digits / digits-LT through the product path
    # (0.2 before), checked on Banking77 and Fashion-MNIST (README, product_path).
    "eval_share": 0.1,
    # The lift verdict cross-fits the eval set by default (a random arm for free); a
    # separate random control slice is opt-in, and pauses once the verdict is settled.
    "control_share": 0.0,
    "eval_halfwidth": 0.03,
    # How eval labels become the accuracy the eval budget reads (engine/estimates.py):
    # "ppi" (prediction-powered, PPI++ over the whole eval split; valid and tighter in
    # bench/results/eval_estimators.json) or "uniform" (the labeled rows alone).
    "eval_estimator": "ppi",
    "eval_stratify": None,
    "learner": "linear",
    "learner_params": {},
    "encoder": None,
    # Hash version of content and eval-split hashes: projects without the key were made
    # before version 2 and keep BLAKE2b; `init` writes 2 (see longtail.hashing).
    "hashing": 1,
    # MLflow tracking of trained models (engine/tracking.py): None (off), "local" (the
    # project's mlruns/), a directory or a tracking URI.
    "mlflow": None,
    # Cosine from which two samples' vectors make them near-duplicates; 0 or None turns
    # the search off. Measured on Banking77's 10,003 training messages under MiniLM:
    # pairs at 0.98-0.99 are one message reworded ("I got less cash than what I
    # specified at the ATM." / "... specified for through the ATM."), 544 pairs, 99.3%
    # of the same intent; a message's nearest other message of its intent sits at a
    # median 0.90 (90th percentile 0.973), so 0.98 leaves most of each intent offered.
    "near_duplicate_threshold": 0.98,
    # Query leaves out candidates that duplicate (exactly or nearly) a labeled sample:
    # their label would teach the model nothing new and, for eval twins, inflate it.
    "exclude_duplicates": True,
    # Issue 29, money. Annotator pools (longtail.costs.pools; `longtail pools`), the cap
    # on one answer's seconds (None: max(60 s, 5 x the median answer), see
    # longtail/costs/observed.py), and compute prices per hour for the ledger. The CPU
    # price is BENCHMARKS.md section 6's; the GPU price is an on-demand cloud order of
    # magnitude: set yours (`longtail costs --cpu-rate ... --gpu-rate ...`).
    "pools": [],
    "cost_seconds_cap": None,
    "compute_rate_cpu_hour": 0.10,
    "compute_rate_gpu_hour": 2.50,
    # Cost-aware selection (query --cost-aware): return on investment = benefit /
    # predicted cost ** cost_tradeoff (0: cost-blind; 1: Haertel et al.'s ROI). 0.5 was
    # chosen on digits with a synthetic time per image (bench/_cost_tune.py), then
    # checked on Banking77 (BENCHMARKS.md section 6).
    "cost_tradeoff": 0.5,
    # Image pools (issue 32): the folder that samples' `media` paths are relative to,
    # written by `longtail ingest DIR`; move the folder and set it again.
    "media_root": None,
    # Issue 31: how vector sets store their numbers ('float32', or 'float16' for half
    # the disk and page cache at 10M rows); reads and scores are float32 blocks either way.
    "vector_dtype": "float32",
    # The unlabeled pool at work (issue 32): pseudo-labels added to the human labels when
    # training, never stored or counted as labels (longtail/learners/semi.py): "off",
    # "self-training", "propagation" or "agreement"; at most pseudo_ratio x each class's
    # human labels, each at least pseudo_min_confidence, each weighing pseudo_weight in
    # the loss of a learner whose fit takes sample weights (the torch learners; they
    # early-stop on human labels alone). bench/results/pseudo_labels.json chose the
    # rule on digits and checked it on Banking77 and Fashion-MNIST.
    "pseudo_labels": "off",
    "pseudo_ratio": 1.0,
    "pseudo_min_confidence": 0.0,
    "pseudo_weight": 1.0,
}

VECTOR_DTYPES = ("float32", "float16")
NEAR_MIN = 0.5  # below this a "near-duplicate" would be a topic, not a copy


@dataclass(frozen=True)
class Settings:
    """What every use case reads: seeds, eval and control shares, learner, encoder."""

    seed: int = 0
    eval_rate: float = 0.05
    eval_cap: int = 5000
    eval_share: float = 0.1
    control_share: float = 0.0
    eval_halfwidth: float = 0.03
    eval_estimator: str = "ppi"
    eval_stratify: str | None = None
    learner: str = "linear"
    learner_params: dict = field(default_factory=dict)
    encoder: str | None = None
    hashing: int = 1
    mlflow: str | None = None
    near_duplicate_threshold: float | None = 0.98
    exclude_duplicates: bool = True
    pools: list = field(default_factory=list)
    cost_seconds_cap: float | None = None
    compute_rate_cpu_hour: float = 0.10
    compute_rate_gpu_hour: float = 2.50
    cost_tradeoff: float = 0.5
    media_root: str | None = None
    vector_dtype: str = "float32"
    pseudo_labels: str = "off"
    pseudo_ratio: float = 1.0
    pseudo_min_confidence: float = 0.0
    pseudo_weight: float = 1.0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        merged = {**DEFAULTS, **{k: v for k, v in values.items() if k in known}}
        return cls(**{k: merged[k] for k in known if k in merged})

    @classmethod
    def load(cls, store: Store) -> Settings:
        """The project's settings as committed now (one read snapshot)."""
        with store.reading() as uow:
            return cls.from_dict(uow.settings.all())

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Below this many labeled eval samples, eval figures move by several points from one
# sample to the next: `status` and `evaluate` say so.
SMALL_EVAL = 100


@dataclass(frozen=True)
class LearnerSpec:
    """Which learner a use case fits, with its parameters: the command's options, else
    the project's settings."""

    learner: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"learner": self.learner, "params": dict(self.params)}


def learner_spec(settings: Settings, learner: str | None = None,
                 learner_params: dict[str, Any] | None = None, *,
                 from_scratch: bool = False) -> LearnerSpec:
    """The learner to fit: `learner` (its `learner_params`, else none) or the project's
    (with the project's parameters unless `learner_params` is given). `from_scratch`
    turns the linear head's warm start off (cross-fitting, lift arms: each fit alone)."""
    params = dict(learner_params if learner_params is not None
                  else (settings.learner_params if learner is None else {}))
    name = learner or settings.learner
    if from_scratch and name == "linear":
        params["warm_start"] = False
    return LearnerSpec(name, params)


def check_settings(settings: dict[str, Any]) -> None:
    """Unknown keys and out-of-range values of `init`'s settings are an InputError."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise InputError(f"unknown project settings: {', '.join(sorted(unknown))}")
    for name in ("eval_rate", "eval_share", "control_share"):
        if name in settings and not 0.0 <= float(settings[name]) <= 1.0:
            raise InputError(f"{name.replace('_', '-')} must be between 0 and 1, "
                             f"got {settings[name]}")
    if "eval_halfwidth" in settings and not 0.0 < float(settings["eval_halfwidth"]) < 0.5:
        raise InputError(f"eval-halfwidth must be between 0 and 0.5 (0.03 = ±3 points), "
                         f"got {settings['eval_halfwidth']}")
    if "eval_estimator" in settings and settings["eval_estimator"] not in ("ppi", "uniform"):
        raise InputError(f"eval-estimator must be 'ppi' or 'uniform', got "
                         f"{settings['eval_estimator']!r}")
    if settings.get("mlflow") is not None and (not isinstance(settings["mlflow"], str)
                                               or not settings["mlflow"].strip()):
        raise InputError("mlflow must be 'local' (the project's mlruns/), a directory or a "
                         f"tracking URI, got {settings['mlflow']!r}")
    if "near_duplicate_threshold" in settings:
        near_threshold(settings["near_duplicate_threshold"])
    if "exclude_duplicates" in settings and not isinstance(settings["exclude_duplicates"], bool):
        raise InputError(f"exclude_duplicates must be true or false, got "
                         f"{settings['exclude_duplicates']!r}")
    for name in ("compute_rate_cpu_hour", "compute_rate_gpu_hour", "cost_seconds_cap"):
        value = settings.get(name)
        if value is None and name == "cost_seconds_cap":
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 <= value < float("inf") or (name == "cost_seconds_cap" and value <= 0)):
            if name in settings:
                raise InputError(f"{name} must be a number >= 0"
                                 f"{' (> 0)' if name == 'cost_seconds_cap' else ''}, "
                                 f"got {value!r}")
    if "vector_dtype" in settings and settings["vector_dtype"] not in VECTOR_DTYPES:
        raise InputError(f"dtype must be one of {', '.join(VECTOR_DTYPES)}, got "
                         f"{settings['vector_dtype']!r}")
    if "pseudo_labels" in settings:
        from longtail.learners.semi import METHODS

        if settings["pseudo_labels"] not in METHODS:
            raise InputError(f"pseudo_labels must be one of {', '.join(METHODS)}, got "
                             f"{settings['pseudo_labels']!r}")
    for name, top in (("pseudo_ratio", 10.0), ("pseudo_min_confidence", 1.0),
                      ("pseudo_weight", 1.0)):
        value = settings.get(name)
        if name in settings and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not 0 <= value <= top):
            raise InputError(f"{name} must be a number from 0 to {top:g}, got {value!r}")
    if "eval_cap" in settings and int(settings["eval_cap"]) < 0:
        raise InputError(f"eval-cap must be >= 0, got {settings['eval_cap']}")


def near_threshold(value: Any) -> float | None:
    """The near-duplicate threshold as a cosine, or None when the search is off (0 or
    None); an InputError for anything else outside [NEAR_MIN, 1]."""
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float))
                         and value == 0):
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if isinstance(value, bool) or not NEAR_MIN <= t <= 1.0:
        raise InputError(f"near-duplicate-threshold must be a cosine between {NEAR_MIN:g} and 1 "
                         f"(0 turns the search off), got {value!r}")
    return t
