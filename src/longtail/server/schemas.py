"""Typed request and response models of every route (FastAPI renders them in the
OpenAPI schema at /docs). Requests forbid unknown fields, so a typo is a 422 rather
than an answer silently missing a part."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longtail.engine.eval_records import CurvePoint
from longtail.engine.users import UserRecord


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every error: what went wrong, in one sentence; `allowed` for an unknown label;
    `reason` for a 409 on a task (expired, answered, taken, not_leased)."""

    detail: Any
    allowed: list[str] | None = None
    reason: str | None = None


class Me(BaseModel):
    name: str
    role: Literal["admin", "annotator"]


class TaskOut(BaseModel):
    """A leased task: the sample to label, until `expires_at` (epoch seconds)."""

    id: int = Field(description="The task id (the sample's row): use it to answer.")
    sample_id: str
    text: str | None
    meta: dict[str, Any]
    round_id: int
    position: int = Field(description="Priority position in its round (0 = first).")
    expires_at: float
    labels: list[str] | None = Field(description="The label set; null when any label goes.")


class LeaseOut(BaseModel):
    task: TaskOut | None
    message: str | None = None


class AnswerIn(_In):
    """A label, or a skip / unsure (which give no label), with the seconds it took."""

    kind: Literal["label", "skip", "unsure"] = "label"
    label: str | None = Field(default=None, max_length=200)
    seconds: float | None = Field(default=None, ge=0, le=86_400)


class AnswerOut(BaseModel):
    task_id: int
    kind: str
    label: str | None
    round_id: int
    round_closed: bool


class ReleaseOut(BaseModel):
    task_id: int
    round_id: int
    released: bool = True


class ProgressOut(BaseModel):
    user: str
    answered: int
    holding: int | None
    open_rounds: list[int]
    remaining: int


class LabelSetOut(BaseModel):
    labels: list[str] | None


class MetricOut(BaseModel):
    value: float
    lo: float | None = None
    hi: float | None = None
    eval_set: str | None = None
    n_labels: int | None = None


class StatusOut(BaseModel):
    project: str
    samples: int
    pool: int
    eval: int
    labeled_pool: int
    labeled_eval: int
    annotations: int
    classes: dict[str, int]
    encoder: str | None
    vectors: dict[str, int]
    rounds: int
    open_rounds: int
    models: int
    metrics: dict[str, MetricOut]
    verdict: str
    lift: dict[str, Any] | None
    warnings: list[str]
    spend: dict[str, Any] | None = None  # labeling and compute money (issue 29)
    roi: dict[str, Any] | None = None  # the money saving against random, with its curves
    money_verdict: str | None = None


class RoundIn(_In):
    budget: int = Field(ge=1, le=100_000)
    strategy: str = Field(default="auto", max_length=64)
    seed: int | None = Field(default=None, ge=0)


class RoundOut(BaseModel):
    round_id: int
    size: int
    kinds: dict[str, int]
    strategy: str
    arm: str | None
    warnings: list[str]


class RoundRow(BaseModel):
    id: int
    created_at: str
    strategy: str
    status: str
    size: int
    labeled: int
    arm: str


class TaskRow(BaseModel):
    id: int
    sample_id: str
    text: str | None
    position: int
    kind: str
    open: int
    leased: int
    done: int
    holders: list[str]


class ExportOut(BaseModel):
    round_id: int
    status: str
    total: int
    offset: int
    tasks: list[TaskRow]


class AnnotatorRow(BaseModel):
    annotator: str
    role: str | None
    label: int
    skip: int
    unsure: int
    seconds: float
    seconds_per_answer: float | None
    last: str | None


class CurvesOut(BaseModel):
    """Learning curves on the managed eval set; `random` is the control arm's curve
    when the lift estimator recorded one."""

    current: list[CurvePoint]
    as_of: list[CurvePoint]
    eval_set: str | None
    eval_version: int | None = None
    lift: dict[str, Any] | None
    verdict: str


UserRow = UserRecord  # the engine's record, one definition


class LabelStudioTask(BaseModel):
    """A task in Label Studio's import format."""

    data: dict[str, Any]
    predictions: list[dict[str, Any]]


class LabelStudioConfig(BaseModel):
    config: str


class _Open(BaseModel):
    """Label Studio's payloads carry more than we read: extra fields are kept, not 422s."""

    model_config = ConfigDict(extra="allow")


class HealthOut(BaseModel):
    status: str
    model_class: str
    model_version: str


class SetupIn(_Open):
    project: str | int | None = None
    schema_: str | None = Field(default=None, alias="schema")


class ModelVersionOut(BaseModel):
    model_version: str


class PredictIn(_Open):
    tasks: list[dict[str, Any]] = Field(max_length=10_000)


class Prediction(BaseModel):
    result: list[dict[str, Any]]
    score: float
    model_version: str


class PredictOut(BaseModel):
    results: list[Prediction]
    model_version: str


class WebhookIn(_Open):
    action: str


class WebhookOut(BaseModel):
    status: str
    action: str | None = None
    annotation: int | None = None
    task: int | None = None
    sample_id: str | None = None
    new_labels: int | None = None
    changed: int | None = None
    skipped: int | None = None
    retrained: bool | None = None
    model_version: str | None = None


class LabelIn(_In):
    id: str = Field(max_length=1000, description="The sample's id (as ingested).")
    label: str | None = Field(default=None, max_length=200)
    kind: Literal["label", "skip", "unsure"] = "label"
    annotator: str | None = Field(default=None, max_length=200)
    seconds: float | None = Field(default=None, ge=0, le=86_400)


class LabelsIn(_In):
    labels: list[LabelIn] = Field(min_length=1, max_length=10_000)


class LabelsRecordedOut(BaseModel):
    rows: int
    new_labels: int
    changed: int
    unchanged: int
    skipped: int
    unsure: int
    new_classes: list[str]
    closed_rounds: list[int]
    warnings: list[str]


class ImportOut(LabelsRecordedOut):
    """What POST /admin/import recorded (all or nothing), and the rounds it closed."""

    format: str
    file: str


EXPORT_FORMATS = ("csv", "jsonl", "parquet", "label-studio")
ExportFormat = Literal["csv", "jsonl", "parquet", "label-studio"]
# The media type of each export format (Parquet's is IANA-registered since 2024).
EXPORT_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
                "parquet": "application/vnd.apache.parquet", "label-studio": "application/json"}
EXPORT_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "label-studio": ".json"}
