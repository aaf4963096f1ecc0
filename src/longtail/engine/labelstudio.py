"""Label Studio interop: a round's tasks in Label Studio's import format (with the
current model's predictions, scored so that Label Studio's "sort by prediction score,
lowest first" is longtail's priority order) and a matching labeling config; and Label
Studio's JSON export read back as label events.

Formats as Label Studio documents them (task format and pre-annotations): a task is
`{"data": {...}, "predictions": [{"model_version", "score", "result": [...]}]}`; an
exported task adds `"annotations": [{"result": [{"type": "choices", "value":
{"choices": [...]}}], "completed_by", "lead_time", "was_cancelled", ...}]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from longtail.engine.labels import LabelEvent, LabelsRecorded, record_labels
from longtail.engine.records import Record
from longtail.engine.settings import Settings
from longtail.errors import InputError, NotFoundError, ProjectError
from longtail.store import Store, UnitOfWork

FROM_NAME = "label"
TO_NAME = "text"
IMAGE_NAME = "image"  # the object tag of an image pool's config, `$image` in task data


@dataclass(frozen=True)
class LabelStudioTask(Record):
    """A task in Label Studio's import format: `data` (text or image, longtail's id,
    round and position) and one prediction (`model_version`, `score`, `result`)."""

    data: dict[str, Any]
    predictions: list[dict[str, Any]]


@dataclass(frozen=True)
class TaskPrediction(Record):
    """Label Studio's /predict answer for one task: the predicted choice (`result`, empty
    without a model or for a task longtail does not know), longtail's priority as
    `score` (lowest first) and the model version."""

    result: list[dict[str, Any]]
    score: float
    model_version: str


@dataclass(frozen=True)
class Predictions(Record):
    """Label Studio's /predict answer: one prediction per task, in order."""

    results: list[TaskPrediction]
    model_version: str


@dataclass(frozen=True)
class LabelStudioExport(Record):
    """A Label Studio JSON export as read: its tasks, each an object as Label Studio
    wrote it (`data`, `annotations`, ...), checked to be objects."""

    tasks: list[dict[str, Any]]


def labeling_config(labels: list[str], *, image: bool = False) -> str:
    """A Label Studio labeling config: the text (or, for an image pool, the image) and
    one choice per label."""
    if not labels:
        raise ProjectError("the project has no label set yet: close it first "
                           "(`longtail labels set A,B,...`) so Label Studio can offer the choices")
    choices = "\n".join(f"    <Choice value={quoteattr(lab)}/>" for lab in labels)
    target = IMAGE_NAME if image else TO_NAME
    shown = (f'  <Image name="{IMAGE_NAME}" value="$image"/>\n' if image
             else f'  <Text name="{TO_NAME}" value="$text"/>\n')
    return (f'<View>\n{shown}'
            f'  <Choices name="{FROM_NAME}" toName="{target}" choice="single-radio" '
            f'showInLine="true">\n{choices}\n  </Choices>\n</View>\n')


def export_tasks(store: Store, settings: Settings, round_id: int | None = None, *,
                 media_url: Callable[[int, str], str] | None = None) -> list[LabelStudioTask]:
    """The tasks of a round (the most recent open one by default) in Label Studio's
    import format, in priority order. Each prediction's `score` is the task's position
    over the round's size (0 first), so sorting by prediction score ascending gives
    longtail's order; `result` holds the current model's predicted class when there is
    a model for the project's vectors."""
    with store.reading() as uow:
        rounds = uow.rounds.list()
    if round_id is None:
        open_ids = [r["id"] for r in rounds if r["status"] == "open"]
        if not open_ids:
            raise ProjectError("no open round to export (plan one with `longtail query`, or "
                               "pass --round N)")
        round_id = open_ids[-1]
    elif round_id not in {r["id"] for r in rounds}:
        raise NotFoundError(f"no round {round_id} (rounds: "
                         f"{', '.join(str(r['id']) for r in rounds) or 'none'})")
    with store.reading() as uow:
        items = uow.rounds.items(round_id)
        rows = np.asarray([r for r, _, _ in items], dtype=np.int64)
        samples = {r: (e, t, m) for chunk in uow.samples.iter(rows) for r, e, t, m in chunk} \
            if len(rows) else {}
    predicted, version = _predictions(store, settings, rows)
    n = max(len(items), 1)
    out = []
    for i, (row, position, _kind) in enumerate(items):
        ext, text, meta = samples[row]
        rel = (meta or {}).get("media")
        data: dict[str, Any] = {"text": text or ""}
        if isinstance(rel, str) and rel:
            # An image: a URL Label Studio can load (the service's signed link, or a
            # prefix such as its local-files route), else the path under the media root.
            data[IMAGE_NAME] = media_url(row, rel) if media_url is not None else rel
        target = IMAGE_NAME if IMAGE_NAME in data else TO_NAME
        result = ([{"from_name": FROM_NAME, "to_name": target, "type": "choices",
                    "value": {"choices": [predicted[i]]}}] if predicted is not None else [])
        out.append(LabelStudioTask(
            data={**data, "longtail_id": ext, "longtail_round": round_id,
                  "longtail_position": position},
            predictions=[{"model_version": version, "score": round(position / n, 6),
                          "result": result}]))
    return out


def tasks_json(tasks: list[LabelStudioTask]) -> str:
    """The tasks file as `longtail export --format label-studio` writes it (and the
    service's export route returns it): one JSON list, indented, UTF-8 kept."""
    return json.dumps([t.to_dict() for t in tasks], indent=1, ensure_ascii=False) + "\n"


def _predictions(store: Store, settings: Settings, rows: np.ndarray) -> tuple[list[str] | None, str]:
    """The latest model's predicted class per row (None without a usable model), and
    the model version to show in Label Studio."""
    from longtail.engine import views
    from longtail.engine.models import load_model
    from longtail.loop.simulate import predict_rows

    with store.reading() as uow:
        latest = uow.models.latest()
        if latest is None or len(rows) == 0:
            return None, "longtail-order"
        vs = views.vectors(uow, settings, latest["encoder"], complete=False)
        if (rows >= vs.n_rows).any():
            return None, "longtail-order"
        model = load_model(uow, latest)
    proba = predict_rows(model, vs, rows)
    classes = [str(c) for c in model.classes_]
    return [classes[int(k)] for k in np.asarray(proba).argmax(1)], f"longtail-model-{latest['id']}"


def read_export(path: str | Path) -> LabelStudioExport:
    """A Label Studio JSON export (a list of tasks) from `path`; InputError naming the
    file for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
        raise InputError(f"{path}: a Label Studio JSON export is a list of tasks (objects)")
    return LabelStudioExport(data)


def _annotator(completed_by: Any) -> str | None:
    if isinstance(completed_by, dict):
        found = completed_by.get("email") or completed_by.get("id")
        return None if found is None else str(found)
    return None if completed_by is None else str(completed_by)


def events_from_export(store: Store, tasks: list[dict], where: str = "export") -> list[LabelEvent]:
    """Label events of every annotation: the `choices` of its result as the label,
    `completed_by` as the annotator, `lead_time` as seconds, `was_cancelled` as a skip.
    A task is matched by `data.longtail_id`, else by its text (which must name one
    sample). Any task or annotation that cannot be read is an InputError naming it."""
    ids = [t.get("data", {}).get("longtail_id") for t in tasks]
    by_text: dict[str, list[str]] = {}
    if any(i is None for i in ids):
        with store.reading() as uow:
            for chunk in uow.samples.iter():
                for _, ext, text, _ in chunk:
                    if text is not None:
                        by_text.setdefault(text, []).append(ext)
    events: list[LabelEvent] = []
    for n, (task, ext) in enumerate(zip(tasks, ids, strict=True), start=1):
        name = f"{where}: task {n} (Label Studio id {task.get('id', '?')})"
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(f"{name}: no 'data' object")
        if ext is None:
            text = data.get(TO_NAME)
            found = by_text.get(text, []) if isinstance(text, str) else []
            if len(found) != 1:
                why = "no sample has" if not found else f"{len(found)} samples have"
                raise InputError(f"{name}: no data.longtail_id, and {why} its text")
            ext = found[0]
        for ann in task.get("annotations") or []:
            events.append(_event(str(ext), ann, f"{name}, annotation {ann.get('id', '?')}"))
    return events


def _event(ext: str, ann: dict, name: str) -> LabelEvent:
    seconds = ann.get("lead_time")
    if seconds is not None and not isinstance(seconds, int | float):
        raise InputError(f"{name}: lead_time {seconds!r} is not a number")
    who = _annotator(ann.get("completed_by"))
    if ann.get("was_cancelled"):
        return LabelEvent(ext, None, kind="skip", annotator=who, seconds=seconds)
    choices = [c for r in ann.get("result") or [] if r.get("type") == "choices"
               for c in (r.get("value") or {}).get("choices") or []]
    if len(choices) != 1:
        raise InputError(f"{name}: expected one choice in a 'choices' result, found "
                         f"{len(choices)}" + (f" ({', '.join(map(repr, choices))})" if choices else ""))
    return LabelEvent(ext, str(choices[0]), kind="label", annotator=who, seconds=seconds)


def import_export(store: Store, path: str | Path) -> LabelsRecorded:
    """Record the annotations of a Label Studio JSON export (all or nothing)."""
    tasks = read_export(path).tasks
    events = events_from_export(store, tasks, where=str(path))
    if not events:
        raise InputError(f"{path}: the export holds no annotations")
    return record_labels(store, events, source="import", where=str(path))


# -- ML-backend mode -----------------------------------------------------------------------

WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


def _rows_of_tasks(store: Store, tasks: list[dict]) -> list[int | None]:
    """Each Label Studio task's sample row (by data.longtail_id, else by its text)."""
    ids = [(t.get("data") or {}).get("longtail_id") for t in tasks]
    by_text: dict[str, int | None] = {}
    wanted = {(t.get("data") or {}).get(TO_NAME) for t, i in zip(tasks, ids, strict=True) if i is None}
    with store.reading() as uow:
        rows_of = uow.samples.ids_to_rows([str(i) for i in ids if i is not None])
        if wanted - {None}:
            for chunk in uow.samples.iter():
                for row, _, text, _ in chunk:
                    if text in wanted:
                        # A text two samples share names neither.
                        by_text[text] = None if text in by_text else row
    out: list[int | None] = []
    for t, i in zip(tasks, ids, strict=True):
        out.append(rows_of.get(str(i)) if i is not None
                   else by_text.get((t.get("data") or {}).get(TO_NAME)))
    return out


@dataclass(frozen=True)
class PoolOrder:
    """Longtail's order over the whole pool, as Label Studio's prediction scores: the
    most recent open round's unanswered items first (by position; older open rounds
    after it), then the unlabeled pool beyond them by the current model's margin (smallest first: the
    samples uncertainty sampling would pick next; by row without a model). `score[row]`
    is the row's place in that order over the pool's size, in [0, 1); rows outside the
    order (labeled, eval, without vectors) score 1.0. `klass[row]` indexes `classes`:
    the model's class for the row (-1: none). Computed once per `version`."""

    version: str
    score: np.ndarray
    klass: np.ndarray
    classes: list[str]

    def of(self, row: int | None) -> tuple[float, str | None]:
        """A row's score and predicted class (1.0 and None for an unknown row)."""
        if row is None or not 0 <= row < len(self.score):
            return 1.0, None
        k = int(self.klass[row])
        return float(self.score[row]), (self.classes[k] if k >= 0 else None)


def served_version(store: Store) -> str:
    """The model version the ML backend serves, which changes whenever its predictions
    or its order do: `longtail-model-N` (the latest model; `longtail-order` before the
    first) and `-round-R` while round R is the most recent open round."""
    with store.reading() as uow:
        latest = uow.models.latest()
        open_ids = uow.rounds.open_ids()
    base = f"longtail-model-{latest['id']}" if latest else "longtail-order"
    return f"{base}-round-{open_ids[-1]}" if open_ids else base


def pool_order(store: Store, settings: Settings) -> PoolOrder:
    """The whole pool in longtail's order (see `PoolOrder`), streamed in chunks: one
    pass of the model over the rows with vectors, no matrix over the pool kept."""
    from longtail.engine import views
    from longtail.engine.models import load_model

    version = served_version(store)
    with store.reading() as uow:
        latest = uow.models.latest()
        n = uow.samples.next_row()  # rows are 0..n-1
        rounds = [r for r in uow.rounds.list() if r["status"] == "open"]
        current = uow.labels.current()
        # A round's answered items are done: only its open ones lead the order.
        queued = [row for rnd in reversed(rounds) for row, _, _ in uow.rounds.items(rnd["id"])
                  if row not in current]
        beyond = views.candidates(uow, current)
        vs = model = None
        if latest is not None:
            try:
                vs = views.vectors(uow, settings, latest["encoder"], complete=False)
                model = load_model(uow, latest, predict_only=True)
            except ProjectError:
                vs = model = None
    score = np.ones(n, dtype=np.float64)
    klass = np.full(n, -1, dtype=np.int32)
    classes: list[str] = []
    margin = None
    if model is not None and vs is not None:
        from longtail.loop.simulate import predict_rows

        classes = [str(c) for c in model.classes_]
        rows = np.arange(min(n, vs.n_rows), dtype=np.int64)
        margin = np.full(n, np.inf)
        for start in range(0, len(rows), 65_536):
            part = rows[start:start + 65_536]
            proba = predict_rows(model, vs, part)
            klass[part] = proba.argmax(1)
            top = np.sort(proba, axis=1)[:, -2:] if proba.shape[1] > 1 else proba
            margin[part] = top[:, -1] - (top[:, 0] if proba.shape[1] > 1 else 0.0)
    seen = set()
    order = [r for r in queued if not (r in seen or seen.add(r))]
    beyond = beyond[np.isin(beyond, np.asarray(order, dtype=np.int64), invert=True)]
    if margin is not None:
        beyond = beyond[np.argsort(margin[beyond], kind="stable")]
    ranked = np.concatenate([np.asarray(order, dtype=np.int64), beyond]).astype(np.int64)
    ranked = ranked[ranked < n]
    total = max(len(ranked), 1)
    score[ranked] = np.arange(len(ranked)) / total
    return PoolOrder(version, np.round(score, 6), klass, classes)


def predict_tasks(store: Store, settings: Settings | None, tasks: list[dict[str, Any]],
                  order: PoolOrder | None = None) -> Predictions:
    """Label Studio's /predict: one prediction per task, in order: the current model's
    class (an empty result for a task longtail does not know, or without a model) and a
    `score` in longtail's order over the whole pool (`PoolOrder`, lowest first). Every
    prediction carries the served version, unknown tasks' too (Label Studio asks again
    for tasks whose predictions carry another version than /setup said)."""
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise InputError("predict: 'tasks' must be a list of task objects")
    order = order or pool_order(store, settings)
    rows = _rows_of_tasks(store, tasks)
    out = []
    for task, row in zip(tasks, rows, strict=True):
        score, label = order.of(row)
        target = IMAGE_NAME if IMAGE_NAME in (task.get("data") or {}) else TO_NAME
        result = ([{"from_name": FROM_NAME, "to_name": target, "type": "choices",
                    "value": {"choices": [label]}}] if label is not None else [])
        out.append(TaskPrediction(result=result, score=score, model_version=order.version))
    return Predictions(out, order.version)


def model_version(store: Store) -> str:
    """The version /health, /setup and /predict report (`served_version`)."""
    return served_version(store)


@dataclass(frozen=True)
class WebhookAnnotation:
    """A Label Studio annotation a webhook named, as longtail reads it: the event to
    record, and where it came from."""

    annotation: int
    task: int
    sample_id: str
    event: LabelEvent

    @property
    def where(self) -> str:
        return f"Label Studio annotation {self.annotation}"


def webhook_annotation(store: Store, action: str, payload: dict,
                       fetch: Any) -> WebhookAnnotation | None:
    """Label Studio's /webhook, read only: on ANNOTATION_CREATED / ANNOTATION_UPDATED,
    the annotation and its task fetched through Label Studio's API (`fetch(path) ->
    dict`; the payload is not trusted for content) as a label event; None for other
    actions. The caller records the event (the service: through its writer)."""
    if action not in WEBHOOK_ACTIONS:
        return None
    ann_id = (payload.get("annotation") or {}).get("id")
    if not isinstance(ann_id, int):
        raise InputError("webhook: the payload names no annotation id")
    annotation = fetch(f"/api/annotations/{ann_id}")
    task_id = annotation.get("task")
    if isinstance(task_id, dict):
        task_id = task_id.get("id")
    if not isinstance(task_id, int):
        raise InputError(f"webhook: annotation {ann_id} names no task")
    task = fetch(f"/api/tasks/{task_id}")
    (row,) = _rows_of_tasks(store, [task])
    if row is None:
        raise InputError(f"webhook: Label Studio task {task_id} matches no sample (no "
                         "data.longtail_id, and its text names no single sample)")
    with store.reading() as uow:
        ext = next(e for chunk in uow.samples.iter(np.asarray([row])) for _, e, _, _ in chunk)
    return WebhookAnnotation(ann_id, task_id, ext,
                             _event(ext, annotation, f"Label Studio annotation {ann_id}"))


PROJECT_KEY = "label_studio_project"  # the catalog setting: the one bound project


def ls_project_id(value: Any) -> int | None:
    """The Label Studio project a request names: `"3.1712345678"` (/setup, /predict:
    id and creation time), `{"id": 3, ...}` (webhooks) or 3; None when it names none."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        head = value.split(".", 1)[0]
        return int(head) if head.isdigit() else None
    return None


def bound_project(store: Store) -> int | None:
    """The Label Studio project this longtail project serves (None before the first)."""
    with store.reading() as uow:
        got = uow.settings.get(PROJECT_KEY)
    return int(got) if isinstance(got, int) else None


def bind_project(uow: UnitOfWork, project: int, *, rebind: bool = False) -> bool:
    """One Label Studio project per longtail project: the first one that connects is
    kept (in the catalog); another one is a ProjectError naming both. `rebind` makes
    `project` the one (`serve --label-studio-project N`). True when it was bound now."""
    held = uow.settings.get(PROJECT_KEY)
    if held == project:
        return False
    if held is not None and not rebind:
        raise ProjectError(
            f"this longtail project is the ML backend of Label Studio project {held}; "
            f"project {project} is refused (one Label Studio project per longtail project: "
            "serve another longtail project on another port for it, or restart with "
            f"--label-studio-project {project} to move to it)")
    uow.settings.set(PROJECT_KEY, int(project))
    return True


def fresh_events(uow: UnitOfWork, events: list[LabelEvent]) -> list[LabelEvent]:
    """The events not already recorded: an annotation Label Studio sends twice (two
    webhooks, a retry, a sync after a webhook) is the same answer of the same annotator
    on the same sample, so an event equal in kind and label to that annotator's latest
    event on the sample is a repeat. (An update to another label, or from a skip to a
    label, is new.)"""
    rows = uow.samples.ids_to_rows([e.id for e in events])
    latest: dict[tuple[int, str | None], tuple[str, str]] = {}
    for e in uow.labels.events(sorted(set(rows.values()))):
        latest[(e["row"], e["annotator"])] = (e["kind"], e["label"])
    out = []
    for e in events:
        row = rows.get(e.id)
        key = (e.kind, e.label if e.kind == "label" else "")
        if row is not None and latest.get((row, e.annotator)) == key:
            continue
        if row is not None:
            latest[(row, e.annotator)] = key
        out.append(e)
    return out


@dataclass(frozen=True)
class SyncResult:
    """What `label-studio sync` read and recorded."""

    project: int
    tasks: int
    annotations: int
    recorded: int
    repeats: int
    unmatched_tasks: list[int]
    unreadable: list[str]
    labels: LabelsRecorded | None


def sync_events(store: Store, tasks: list[dict]) -> tuple[list[LabelEvent], list[int], list[str]]:
    """Every annotation of Label Studio's `tasks` (as `/api/tasks?fields=all` lists
    them) as label events; the ids of tasks that match no sample and the annotations
    that cannot be read (no or several choices) are returned, not raised: a sync records
    what it can."""
    rows = _rows_of_tasks(store, tasks)
    known = sorted({r for r in rows if r is not None})
    with store.reading() as uow:
        ext_of = {r: e for chunk in uow.samples.iter(np.asarray(known, dtype=np.int64))
                  for r, e, _, _ in chunk} if known else {}
    events, unmatched, unreadable = [], [], []
    for task, row in zip(tasks, rows, strict=True):
        anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        if row is None:
            if anns:
                unmatched.append(int(task.get("id", -1)))
            continue
        for ann in sorted(anns, key=lambda a: (str(a.get("updated_at") or ""), a.get("id", 0))):
            try:
                events.append(_event(ext_of[row], ann, f"Label Studio annotation {ann.get('id')}"))
            except InputError as e:
                unreadable.append(str(e))
    return events, unmatched, unreadable


def sync(store: Store, api: Any, project: int, policy: Any = None) -> SyncResult:
    """`longtail label-studio sync`: every annotation of Label Studio `project`, read
    through its API (`api.tasks(project)`), recorded when it is not already (what the
    webhooks missed: a failed delivery, a server that was down), in one transaction.
    Running it again records nothing. The project must be the bound one, if any."""
    from longtail.engine import tasks as tasks_uc

    held = bound_project(store)
    if held is not None and held != project:
        raise ProjectError(f"this longtail project serves Label Studio project {held}, "
                           f"not {project}")
    listed = api.tasks(project)
    events, unmatched, unreadable = sync_events(store, listed)
    done = None
    with store.unit_of_work() as uow:
        fresh = fresh_events(uow, events)
        if fresh:
            done = tasks_uc.record_in(uow, fresh, policy or tasks_uc.TaskPolicy(),
                                      source="import",
                                      where=f"Label Studio project {project} (sync)")
    return SyncResult(project, len(listed), len(events) + len(unreadable), len(fresh),
                      len(events) - len(fresh), unmatched, unreadable, done)


def retrain_due(store: Store, settings: Settings, retrain_every: int) -> bool | None:
    """Retrain when at least `retrain_every` labels arrived since the latest model:
    True when it did, False when it tried and could not (no vectors yet: the labels
    are kept all the same), None when not due."""
    from longtail.engine import training, views

    with store.reading() as uow:
        latest = uow.models.latest()
        labeled = len(views.labeled(uow, "pool")[0])  # what a model trains on
    if not labeled or (latest is not None and labeled - int(latest["n_labels"]) < retrain_every):
        return None
    try:
        training.train(store, settings)
    except ProjectError:
        return False
    return True
