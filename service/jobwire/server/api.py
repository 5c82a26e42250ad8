"""Client routes: enqueue, read, wait, watch, abort, retry, delete, and queue views."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sse_starlette import EventSourceResponse

from jobwire.job import JOB_ID_PATTERN, NAME_PATTERN, Job, Status
from jobwire.queue import Queue
from jobwire.server.auth import Permission, require
from jobwire.server.registry import QueueRegistry
from jobwire.server.responses import JsonResponse
from jobwire.server.schemas import AbortRequest, BatchRequest, EnqueueRequest

router = APIRouter()
FILTER_SCAN_LIMIT = 10_000  # jobs scanned when filtering by function
QueueName = Annotated[str, Path(pattern=NAME_PATTERN, description="Queue name.")]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="Job id.")]
QueueHint = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Look only here.")]
Wait = Annotated[float, Query(ge=0, le=3600, description="Seconds to wait for the end.")]


def registry(request: Request) -> QueueRegistry:
    """The app's queues."""
    return request.app.state.registry  # type: ignore[no-any-return]


def job_body(job: Job, **extra: Any) -> dict[str, Any]:
    """A job as a response body."""
    return {**job.to_dict(), **extra}


async def _put(request: Request, queue: str, jobs: list[Job]) -> list[tuple[Job, bool]]:
    pairs = await registry(request).get(queue).put(jobs)
    counter = request.app.state.metrics.enqueued
    for job, created in pairs:
        if created:
            counter.labels(queue, job.function).inc()
    return pairs


@router.post(
    "/v1/queues/{queue}/jobs",
    status_code=201,
    tags=["jobs"],
    dependencies=[Depends(require(Permission.ENQUEUE))],
)
async def enqueue(
    queue: QueueName,
    body: EnqueueRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=512)] = None,
) -> JsonResponse:
    """Enqueue one job: 201 with it, or 200 with the live job holding its key/id."""
    if idempotency_key and body.key is None:
        body.key = idempotency_key
    [(job, created)] = await _put(request, queue, [body.to_job(queue)])
    return JsonResponse(job_body(job, duplicate=not created), status_code=201 if created else 200)


@router.post(
    "/v1/queues/{queue}/jobs/batch",
    tags=["jobs"],
    dependencies=[Depends(require(Permission.ENQUEUE))],
)
async def enqueue_batch(queue: QueueName, body: BatchRequest, request: Request) -> JsonResponse:
    """Enqueue many jobs in one backend round trip; answers in the same order."""
    pairs = await _put(request, queue, [item.to_job(queue) for item in body.jobs])
    return JsonResponse({"jobs": [job_body(job, duplicate=not created) for job, created in pairs]})


@router.post(
    "/v1/queues/{queue}/jobs/apply",
    tags=["jobs"],
    dependencies=[Depends(require(Permission.ENQUEUE))],
)
async def apply(
    queue: QueueName, body: EnqueueRequest, request: Request, wait: Wait = 30
) -> JsonResponse:
    """Enqueue and hold the request until the job ends: 200 finished, 202 still running."""
    [(job, _)] = await _put(request, queue, [body.to_job(queue)])
    return await _finished_or_202(request, registry(request).get(queue), job, wait)


async def _finished_or_202(request: Request, queue: Queue, job: Job, wait_s: float) -> JsonResponse:
    """The job once finished (200), or as it is when the wait ends first (202).

    The wait also ends when the service starts shutting down.
    """
    state = request.app.state
    waiting = asyncio.ensure_future(queue.wait(job, timeout=min(wait_s, state.settings.max_wait_s)))
    draining = asyncio.ensure_future(state.draining.wait())
    await asyncio.wait({waiting, draining}, return_when=asyncio.FIRST_COMPLETED)
    draining.cancel()
    if waiting.done():
        with contextlib.suppress(TimeoutError):
            return JsonResponse(job_body(waiting.result()))
    else:
        waiting.cancel()
    current = await queue.job(job.id)
    return JsonResponse(job_body(current or job), status_code=202)


@router.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=[Depends(require(Permission.READ))])
async def get_job(
    job_id: JobIdPath, request: Request, queue: QueueHint = None, wait: Wait = 0
) -> JsonResponse:
    """The job; with ``wait`` it long-polls until the job is finished (200 either way)."""
    owner, job = await registry(request).find(job_id, queue)
    if wait <= 0 or job.finished:
        return JsonResponse(job_body(job))
    response = await _finished_or_202(request, owner, job, wait)
    response.status_code = 200
    return response


@router.get(
    "/v1/jobs/{job_id}/events", tags=["jobs"], dependencies=[Depends(require(Permission.READ))]
)
async def job_events(
    job_id: JobIdPath, request: Request, queue: QueueHint = None
) -> EventSourceResponse:
    """Server-Sent Events: the job now and at each status/progress change, until it ends."""
    owner, _ = await registry(request).find(job_id, queue)

    async def events() -> AsyncIterator[dict[str, str]]:
        async for job in owner.backend.watch(job_id):
            if job is None:
                yield {"event": "deleted", "data": orjson.dumps({"id": job_id}).decode()}
                return
            yield {"event": "job", "data": orjson.dumps(job_body(job)).decode()}

    return EventSourceResponse(events(), ping=15)


@router.post(
    "/v1/jobs/{job_id}/abort", tags=["jobs"], dependencies=[Depends(require(Permission.CONTROL))]
)
async def abort(
    job_id: JobIdPath, request: Request, body: AbortRequest | None = None, queue: QueueHint = None
) -> JsonResponse:
    """Abort: a queued job at once, an active one when its worker next hears."""
    owner, _ = await registry(request).find(job_id, queue)
    job = await owner.abort(job_id, error=(body or AbortRequest()).error)
    registry(request).aborted(job)
    return JsonResponse(job_body(job))


@router.post(
    "/v1/jobs/{job_id}/retry", tags=["jobs"], dependencies=[Depends(require(Permission.CONTROL))]
)
async def retry(job_id: JobIdPath, request: Request, queue: QueueHint = None) -> JsonResponse:
    """Queue a finished job again (409 if it is still live)."""
    owner, _ = await registry(request).find(job_id, queue)
    return JsonResponse(job_body(await owner.retry(job_id)))


@router.delete(
    "/v1/jobs/{job_id}",
    status_code=204,
    tags=["jobs"],
    dependencies=[Depends(require(Permission.DELETE))],
)
async def delete(job_id: JobIdPath, request: Request, queue: QueueHint = None) -> Response:
    """Delete a job whatever its status (admin)."""
    owner, _ = await registry(request).find(job_id, queue)
    await owner.delete(job_id)
    return Response(status_code=204)


@router.get("/v1/queues", tags=["queues"], dependencies=[Depends(require(Permission.READ))])
async def list_queues(request: Request) -> JsonResponse:
    """Every queue with its counts per status."""
    names = await registry(request).names()
    infos = await asyncio.gather(*(registry(request).get(name).info() for name in names))
    return JsonResponse({"queues": [{"name": i["name"], "counts": i["counts"]} for i in infos]})


@router.get("/v1/queues/{queue}", tags=["queues"], dependencies=[Depends(require(Permission.READ))])
async def queue_info(queue: QueueName, request: Request) -> JsonResponse:
    """Counts per status and the workers seen in the last minute."""
    return JsonResponse(await registry(request).get(queue).info())


@router.get(
    "/v1/queues/{queue}/jobs", tags=["queues"], dependencies=[Depends(require(Permission.READ))]
)
async def list_jobs(
    queue: QueueName,
    request: Request,
    status: Status | None = None,
    function: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,7}$")] = None,
) -> JsonResponse:
    """A page of jobs; pass ``next_cursor`` back as ``cursor`` for the next page.

    The cursor is an offset: pages are read from the start of the status index, so deep
    pages cost more (fine for browsing, not for bulk export). With ``function``, the
    first ``FILTER_SCAN_LIMIT`` jobs of the index are scanned.
    """
    offset = int(cursor or 0)
    window = FILTER_SCAN_LIMIT if function is not None else offset + limit + 1
    jobs = await registry(request).get(queue).jobs(status, limit=window)
    if function is not None:
        jobs = [job for job in jobs if job.function == function]
    page = jobs[offset : offset + limit]
    more = len(jobs) > offset + limit
    return JsonResponse(
        {"jobs": [job_body(j) for j in page], "next_cursor": str(offset + limit) if more else None}
    )
