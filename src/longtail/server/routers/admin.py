"""Admins' routes: status, rounds (list, plan one), history, a round's tasks,
annotators, curves, users, the audit log, and a round's tasks in Label Studio's format."""

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request

from longtail.engine import labels, labelstudio, tasks, users
from longtail.engine import rounds as rounds_uc
from longtail.engine import status as status_uc
from longtail.engine.history import RoundRecord, run_history
from longtail.engine.rounds import RoundSummary
from longtail.engine.settings import Settings
from longtail.server import media
from longtail.server import schemas as m
from longtail.server.deps import Admin, Svc

router = APIRouter(tags=["admin"], responses=m.errors(400, 401, 429, 403, 404, 409, 413, 422))


@router.get("/admin/status", response_model=m.StatusOut)
def status(_user: Admin, svc: Svc) -> m.StatusOut:
    """Counts, classes, rounds, the latest metrics and the lift verdict."""
    return status_uc.status(svc.store, Settings.load(svc.store))


@router.post("/admin/rounds", response_model=m.RoundOut)
async def start_round(body: m.RoundIn, user: Admin, svc: Svc) -> m.RoundOut:
    """Plan the next round (`longtail query`): its tasks join the queue."""
    r = await svc.writer.run_locked(lambda: rounds_uc.plan_round(
        svc.store, Settings.load(svc.store), body.budget, strategy=body.strategy,
        seed=body.seed))
    await svc.writer.run_alone(lambda uow: uow.audit.add(user.name, "round_planned", {
        "round": r.round_id, "budget": body.budget, "strategy": body.strategy,
        "size": len(r.rows)}))
    return m.RoundOut(round_id=r.round_id, size=len(r.rows),
                      kinds={k: r.kinds.count(k) for k in sorted(set(r.kinds))},
                      strategy=r.log.get("strategy", body.strategy),
                      arm=(r.log.get("selection") or {}).get("arm"), warnings=r.warnings)


@router.get("/admin/rounds", response_model=list[RoundSummary])
def list_rounds(_user: Admin, svc: Svc) -> list[RoundSummary]:
    """Every round, oldest first, with how many of its samples are labeled."""
    with svc.store.reading() as uow:
        return rounds_uc.list_rounds(uow)


@router.get("/admin/history", response_model=list[RoundRecord])
def history(_user: Admin, svc: Svc) -> list[RoundRecord]:
    """Per round (as `longtail history`): strategy, auto's decision, the dataset version,
    the models that picked the batch and that its labels trained, timings, spend."""
    return run_history(svc.store)


@router.get("/admin/export", response_model=m.ExportOut)
def export(_user: Admin, svc: Svc,
           round: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None,
           offset: Annotated[int, Query(ge=0, le=m.INT32_MAX)] = 0,
           limit: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None) -> m.ExportOut:
    """The tasks of a round (the most recent open one by default), a page at a time, in
    priority order, with their slots by state; an image's task carries its path under
    the media root and a signed thumbnail link (`media_url`)."""
    page = tasks.round_tasks(svc.store, round, offset=offset, limit=svc.page(limit))
    return replace(page, tasks=[
        replace(t, media_url=media.thumb_url(svc, t.id, {"media": t.media})) if t.media else t
        for t in page.tasks])


@router.get("/admin/annotators", response_model=list[m.AnnotatorRow])
def annotators(_user: Admin, svc: Svc) -> list[m.AnnotatorRow]:
    """Labels, skips, unsure and seconds per annotator."""
    return tasks.annotators(svc.store)


@router.get("/admin/curves", response_model=m.CurvesOut)
def curves(_user: Admin, svc: Svc) -> m.CurvesOut:
    """The learning curve (accuracy with intervals by labels) and the lift of selection
    over the random control."""
    from longtail.engine import evaluation  # heavy (the lift's learners): on first use

    with svc.store.reading() as uow:
        c = evaluation.learning_curves(uow)
    lift = status_uc.recorded_lift(svc.store)
    return m.CurvesOut(current=c.current, as_of=c.as_of, eval_set=c.eval_set,
                       eval_version=c.eval_version, lift=lift.to_dict() if lift else None,
                       verdict=lift.verdict if lift else "no lift measured yet")


@router.get("/admin/users", response_model=list[m.UserRow])
def list_users(_user: Admin, svc: Svc) -> list[m.UserRow]:
    """Every user and role (tokens are never shown again)."""
    return users.list_users(svc.store)


@router.get("/admin/label-studio/tasks", response_model=list[m.LabelStudioTask])
def label_studio_tasks(_user: Admin, svc: Svc, request: Request,
                       round: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None,
                       offset: Annotated[int, Query(ge=0, le=m.INT32_MAX)] = 0,
                       limit: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None,
                       ) -> list[m.LabelStudioTask]:
    """A round's tasks in Label Studio's import format (a page at a time): sort by
    prediction score, lowest first, for longtail's order."""
    size = svc.page(limit)
    got = labelstudio.export_tasks(svc.store, Settings.load(svc.store), round,
                                   media_url=media.label_studio_urls(svc, str(request.base_url)))
    return got[offset : offset + size]


@router.get("/admin/label-studio/config", response_model=m.LabelStudioConfig)
def label_studio_config(_user: Admin, svc: Svc) -> m.LabelStudioConfig:
    """The labeling config matching the project's label set."""
    return m.LabelStudioConfig(config=labelstudio.labeling_config(
        labels.label_set(svc.store) or [],
        image=Settings.load(svc.store).media_root is not None))


@router.get("/admin/audit", response_model=list[users.AuditEntry])
def audit(_user: Admin, svc: Svc, offset: Annotated[int, Query(ge=0, le=m.INT32_MAX)] = 0,
          limit: Annotated[int | None, Query(ge=1, le=m.INT32_MAX)] = None,
          ) -> list[users.AuditEntry]:
    """The audit log of admin actions, most recent first: users added, removed or given
    a new token, label files and webhooks imported, rounds planned (who, what, when)."""
    return users.audit_log(svc.store, offset=offset, limit=svc.page(limit))
