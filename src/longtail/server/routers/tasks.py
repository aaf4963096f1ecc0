"""Annotators' routes: who am I, lease a task, answer it, release it, my progress, the
label set. The three hot routes are `async def`: they parse, hand the use case to the
writer and wait for its commit on the event loop, with no worker-thread hop."""

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from longtail.engine import labels, tasks
from longtail.server import media
from longtail.server import schemas as m
from longtail.server.deps import Me, Svc

router = APIRouter(tags=["annotators"], responses=m.errors(400, 401, 429, 413, 422))
TaskId = Annotated[int, Path(ge=0, le=m.INT32_MAX, description="The task id (its sample's row).")]


@router.get("/api/me", response_model=m.Me)
def me(user: Me) -> m.Me:
    """Who the token belongs to."""
    return m.Me(name=user.name, role=user.role)


@router.post("/tasks/lease", response_model=m.LeaseOut)
async def lease(user: Me, svc: Svc) -> m.LeaseOut:
    """The task you hold, else the next one for you (most recent open round first, in
    its priority order), leased to you for the lease TTL."""
    task = await svc.writer.run(lambda uow: tasks.lease_in(uow, user, svc.policy, svc.clock()),
                                user.id)
    if task is None:
        if svc.hooks.urls and not svc.exhausted_sent and await run_in_threadpool(
                tasks.queue_empty, svc.store):
            svc.exhausted_sent = True
            svc.hooks.emit("batch_exhausted",
                           open_rounds=await run_in_threadpool(tasks.open_rounds, svc.store))
        return m.LeaseOut(task=None, message="no task left for you in the open rounds")
    svc.exhausted_sent = False
    return m.LeaseOut(task=await _task_out(svc, task))


async def _task_out(svc: Svc, task: tasks.Task) -> m.TaskOut:
    """A task as the page shows it: the model's suggestions, a signed media URL."""
    out = task.to_dict()
    out["suggestions"] = ([] if svc.suggest.none_known()
                          else await run_in_threadpool(svc.suggest, svc.store, task.id))
    if isinstance((out.get("meta") or {}).get("media"), str):
        out["media_url"] = media.media_url(svc.media_secret, out["id"], svc.clock(), size=256)
    return m.TaskOut(**out)


@router.post("/tasks/{task_id}/label", response_model=m.AnswerOut,
             responses=m.errors(404, 409))
async def label(task_id: TaskId, body: m.AnswerIn, user: Me, svc: Svc) -> m.AnswerOut:
    """Answer the task you hold: a label, or skip (it goes to someone else) or unsure;
    `seconds` is the time you spent."""
    done = await svc.writer.run(lambda uow: tasks.answer_in(
        uow, user, task_id, body.kind, body.label, body.seconds, svc.clock()), user.id)
    if done.round_closed:
        svc.hooks.emit("round_completed", round_id=done.round_id)
    return m.AnswerOut(**done.__dict__)


@router.post("/tasks/{task_id}/undo", response_model=m.UndoOut, responses=m.errors(409))
async def undo(task_id: TaskId, user: Me, svc: Svc) -> m.UndoOut:
    """Take back your last answer (label or unsure) on a task while the lease it was
    given under still runs: the task is yours again to answer anew, and the task you
    leased since goes back to the queue. 409 once the lease has ended, the round has
    closed, or a round planned since counted the answer (`reason` says which)."""
    done = await svc.writer.run(lambda uow: tasks.withdraw_in(uow, user, task_id,
                                                              svc.clock()), user.id)
    return m.UndoOut(task=await _task_out(svc, done.task), kind=done.kind, label=done.label,
                     released_task_id=done.released)


@router.post("/tasks/{task_id}/release", response_model=m.ReleaseOut,
             responses=m.errors(404, 409))
async def release(task_id: TaskId, user: Me, svc: Svc) -> m.ReleaseOut:
    """Give the task you hold back to the queue, unanswered."""
    round_id = await svc.writer.run(lambda uow: tasks.release_in(uow, user, task_id,
                                                                 svc.clock()), user.id)
    return m.ReleaseOut(task_id=task_id, round_id=round_id)


@router.get("/api/progress", response_model=m.ProgressOut)
def my_progress(user: Me, svc: Svc) -> m.ProgressOut:
    """How many tasks you answered and how many are left in the open rounds."""
    return m.ProgressOut(**tasks.progress(svc.store, user, now=svc.clock()).__dict__)


@router.get("/api/labels", response_model=m.LabelSetOut)
def label_set(_user: Me, svc: Svc) -> m.LabelSetOut:
    """The project's label set (null: any label)."""
    return m.LabelSetOut(labels=labels.label_set(svc.store))
