"""Admins' routes for the long tail: failure slices, similarity search, the discovery
queue, and the report as a page."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from longtail.engine import discovery
from longtail.engine import search as search_uc
from longtail.engine.settings import Settings
from longtail.server import media
from longtail.server import schemas as m
from longtail.server.deps import Admin, Svc

router = APIRouter(tags=["discovery"], responses=m.errors(400, 401, 429, 403, 404, 409, 413, 422))


class SearchIn(BaseModel):
    """One of ids, text or vector; filters; whether to queue the unlabeled pool hits."""

    ids: list[str] | None = None
    text: str | None = None
    vector: list[float] | None = None
    k: int = Field(10, ge=1, le=1000)
    split: Literal["pool", "eval", "all"] = "pool"
    state: Literal["any", "labeled", "unlabeled"] = "any"
    where: list[Annotated[str, Field(pattern=r"^\s*[^=\s][^=]*=")]] | None = None
    enqueue: bool = False
    priority: float | None = None


class SlicesOut(BaseModel):
    """`longtail slices --json`: the slices ranked, with their examples, and the pool."""

    model_config = ConfigDict(extra="allow")
    slices: list[dict[str, Any]]
    n_slices: int
    pool: int
    labeled: int
    model_id: int | None = None
    eval_labeled: int = 0
    eval_error: float | None = None
    notes: list[str] = []


class QueuedOut(BaseModel):
    """What a slice or search added to the discovery queue."""

    model_config = ConfigDict(extra="allow")
    queued: int
    source: str | None = None
    queue: int


class SearchOut(BaseModel):
    """`longtail search --json`: the hits nearest first, how the index answered, and
    what was queued when asked."""

    model_config = ConfigDict(extra="allow")
    query: Any = None
    k: int
    hits: list[dict[str, Any]]
    index: dict[str, Any] | None = None
    enqueued: QueuedOut | None = None


class QueueItem(BaseModel):
    """One row waiting in the discovery queue."""

    model_config = ConfigDict(extra="allow")


class EnqueueSliceIn(BaseModel):
    slice: str = Field(pattern=r"^(cluster:\d+|(metadata:)?[^=:][^=]*=.*)$",
                       description="cluster:N or COLUMN=VALUE (see `longtail slices`)")
    n: int = Field(50, ge=1, le=100_000)


@router.get("/admin/slices", response_model=SlicesOut)
def slices(_user: Admin, svc: Svc, by: Literal["all", "cluster", "metadata"] = "all",
           limit: Annotated[int, Query(ge=0, le=1000)] = 20,
           examples: Annotated[int, Query(ge=0, le=50)] = 5) -> dict[str, Any]:
    """Failure slices, under-represented and struggling first (`longtail slices`)."""
    return discovery.slices(svc.store, Settings.load(svc.store), by=by, limit=limit,
                            examples=examples).to_dict()


@router.post("/admin/slices/enqueue", response_model=QueuedOut)
async def enqueue_slice(body: EnqueueSliceIn, _user: Admin, svc: Svc) -> dict[str, Any]:
    """Queue a slice's most useful samples for the next round."""
    return await svc.writer.run_locked(lambda: discovery.enqueue_slice(
        svc.store, Settings.load(svc.store), body.slice, body.n).to_dict())


@router.post("/admin/search", response_model=SearchOut)
async def search(body: SearchIn, _user: Admin, svc: Svc) -> dict[str, Any]:
    """Samples like some samples, a text or a vector (`longtail search`)."""
    def run() -> dict[str, Any]:
        found = search_uc.search(svc.store, Settings.load(svc.store), ids=body.ids,
                                 text=body.text, vector=body.vector, k=body.k,
                                 split=body.split, state=body.state, where=body.where)
        if body.enqueue:
            found.enqueued = discovery.enqueue_hits(svc.store, found, body.priority).to_dict()
        out = found.to_dict()
        for hit in out["hits"]:  # an image's hit: a signed thumbnail an <img> can load
            url = media.thumb_url(svc, hit["row"], hit.get("metadata"))
            if url:
                hit["media_url"] = url
        return out

    return await svc.writer.run_locked(run)


@router.get("/admin/queue", response_model=list[QueueItem])
def queue(_user: Admin, svc: Svc) -> list[dict[str, Any]]:
    """The discovery queue: rows the next round takes first."""
    with svc.store.unit_of_work() as uow:
        return [it.to_dict() for it in discovery.read_queue(uow)]


@router.get("/admin/report", response_class=HTMLResponse, responses={
    c: {"model": m.Error, "content": {"application/json": {}}} for c in (401, 403, 409)})
def report(_user: Admin, svc: Svc) -> HTMLResponse:
    """The project report (`longtail report`) as one self-contained page."""
    from longtail.engine.report import report_data
    from longtail.report import render

    return HTMLResponse(render(report_data(svc.store, Settings.load(svc.store)).to_dict()))
