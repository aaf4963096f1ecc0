"""Typed request and response models of every route (FastAPI renders them in the
OpenAPI schema at /docs). Requests forbid unknown fields, so a typo is a 422 rather
than an answer silently missing a part."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from longtail.engine import labelstudio, tasks
from longtail.engine.eval_records import CurvePoint
from longtail.engine.rounds import RoundSummary
from longtail.engine.status import StatusReport
from longtail.engine.users import UserRecord

# The catalog's integer columns are 32-bit on PostgreSQL: ids, rounds, offsets and
# versions past that are refused at the edge (422), never sent to the database.
INT32_MAX = 2**31 - 1


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _json_number(value: Any) -> Any:
    # Pydantic's lax mode reads "1.5" or true as numbers; the schema says a JSON number
    # (1.0 for an integer stays fine, as JSON Schema allows).
    if isinstance(value, str | bytes | bool):
        raise ValueError("a JSON number, not a string or a boolean")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_number)]
JsonFloat = Annotated[float, BeforeValidator(_json_number)]
# Seconds an answer took: at most a day.
# (The bounds before the validator: after it, pydantic leaves them out of the schema.)
Seconds = Annotated[float, Interval(ge=0, le=86_400), BeforeValidator(_json_number)]
Seed = Annotated[int, Interval(ge=0, le=INT32_MAX), BeforeValidator(_json_number)]
# A label: at least one character that is not white space.
LABEL = Field(min_length=1, max_length=200, pattern=r"\S")


class ValidationItem(BaseModel):
    """Where a request is wrong and how (never the value sent: it may hold anything)."""

    loc: list[str | int]
    msg: str
    type: str


class Error(BaseModel):
    """Every error: what went wrong, in one sentence (a request that does not match the
    schema: one item per problem); `allowed` for an unknown label; `reason` for a 409
    on a task (expired, answered, taken, not_leased)."""

    detail: str | list[ValidationItem]
    allowed: list[str] | None = None
    reason: str | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, each an `Error`."""
    said = {401: "No valid bearer token.", 403: "Admins only.",
            404: "No such task, round or version.",
            409: "Not possible in the project's state now (a task not yours to answer, a "
                 "round that cannot be planned).",
            400: "The body is not valid JSON.",
            413: "The body is over the server's limit.", 422: "Bad input.",
            429: "Too many failed sign-ins: wait `Retry-After` seconds."}
    return {c: {"model": Error, "description": said[c]} for c in codes}


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
    suggestions: list[str] = Field(default_factory=list, description=(
        "The current model's likeliest classes for this sample, likeliest first (at most "
        "3; empty without a model)."))
    media_url: str | None = Field(default=None, description=(
        "The sample's image (a thumbnail), a signed URL that expires; null without one."))


class LeaseOut(BaseModel):
    task: TaskOut | None
    message: str | None = None


class LabelAnswer(_In):
    """A label, with the seconds it took."""

    kind: Literal["label"] = "label"
    label: str = LABEL
    seconds: Seconds | None = None


class OtherAnswer(_In):
    """A skip or unsure: no label."""

    kind: Literal["skip", "unsure"]
    label: None = None
    seconds: Seconds | None = None


# A label, or a skip / unsure (which give no label), with the seconds it took.
AnswerIn = LabelAnswer | OtherAnswer


class AnswerOut(BaseModel):
    task_id: int
    kind: str
    label: str | None
    round_id: int
    round_closed: bool


class UndoOut(BaseModel):
    """An answer taken back: the task is yours again (until the same `expires_at`)."""

    task: TaskOut
    kind: str = Field(description="What was withdrawn: label or unsure.")
    label: str | None
    released_task_id: int | None = Field(description=(
        "The task you had leased since, given back to the queue (null: none)."))


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


# `GET /admin/status` answers with the engine's record: one definition.
StatusOut = StatusReport


class RoundIn(_In):
    budget: JsonInt = Field(ge=1, le=100_000)
    strategy: str = Field(default="auto", max_length=64)
    seed: Seed | None = None


class RoundOut(BaseModel):
    round_id: int
    size: int
    kinds: dict[str, int]
    strategy: str
    arm: str | None
    warnings: list[str]


RoundRow = RoundSummary  # the engine's record, one definition


# The engine's records, one definition.
TaskRow = tasks.TaskRow
ExportOut = tasks.RoundTasks
AnnotatorRow = tasks.AnnotatorActivity


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


LabelStudioTask = labelstudio.LabelStudioTask  # the engine's records, one definition


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
    project: StrictStr | StrictInt | None = None
    schema_: str | None = Field(default=None, alias="schema")


class ModelVersionOut(BaseModel):
    model_version: str


class PredictIn(_Open):
    tasks: list[dict[str, Any]] = Field(max_length=10_000)


Prediction = labelstudio.TaskPrediction
PredictOut = labelstudio.Predictions


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
    retrained: bool | None = None  # kept for old clients: retraining is queued now
    retrain: str | None = None  # "queued": the worker retrains after this answer
    model_version: str | None = None


class LabelIn(_In):
    """A label for a sample."""

    id: str = Field(min_length=1, max_length=1000, description="The sample's id (as ingested).")
    label: str = LABEL
    kind: Literal["label"] = "label"
    annotator: str | None = Field(default=None, max_length=200)
    seconds: Seconds | None = None


class OtherIn(_In):
    """A skip or unsure for a sample: no label."""

    id: str = Field(min_length=1, max_length=1000, description="The sample's id (as ingested).")
    label: None = None
    kind: Literal["skip", "unsure"]
    annotator: str | None = Field(default=None, max_length=200)
    seconds: Seconds | None = None


class LabelsIn(_In):
    labels: list[LabelIn | OtherIn] = Field(min_length=1, max_length=10_000)


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
