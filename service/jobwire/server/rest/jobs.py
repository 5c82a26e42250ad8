"""Client routes: enqueue, read, wait, watch, abort, retry, delete, and queue views.

Each route translates its request into one ``ServiceCore`` call and the answer into JSON.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sse_starlette import EventSourceResponse

from jobwire.job import JOB_ID_PATTERN, LIMITS, NAME_PATTERN, Job, Status
from jobwire.server.auth import Permission, require
from jobwire.server.core import MAX_PAGE, ServiceCore
from jobwire.server.rest import contract as c
from jobwire.server.rest.contract import responses
from jobwire.server.rest.responses import JsonResponse
from jobwire.server.rest.routes import GuardedRoute
from jobwire.server.schemas import AbortRequest, BatchRequest, EnqueueRequest

router = APIRouter(route_class=GuardedRoute)
QueueName = Annotated[str, Path(pattern=NAME_PATTERN, description="Queue name.")]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="Job id.")]
QueueHint = Annotated[str | None, Query(pattern=NAME_PATTERN, description="Look only here.")]
Wait = Annotated[float, Query(ge=0, le=3600, description="Seconds to wait for the end.")]


def core_of(request: Request) -> ServiceCore:
    """The app's service core."""
    return request.app.state.core  # type: ignore[no-any-return]


def job_body(job: Job, **extra: Any) -> dict[str, Any]:
    """A job as a response body."""
    return {**job.to_dict(), **extra}


@router.post(
    "/v1/queues/{queue}/jobs",
    status_code=201,
    tags=["jobs"],
    operation_id="enqueueJob",
    responses=responses(
        {
            201: (c.EnqueuedJob, "Enqueued."),
            200: (c.EnqueuedJob, "A live job with this id or key exists: that job, duplicate."),
        },
        body=True,
    ),
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
    [(job, created)] = await core_of(request).enqueue(queue, [body])
    return JsonResponse(job_body(job, duplicate=not created), status_code=201 if created else 200)


@router.post(
    "/v1/queues/{queue}/jobs/batch",
    tags=["jobs"],
    operation_id="enqueueJobs",
    responses=responses({200: (c.BatchResult, "The jobs, in order.")}, body=True),
    dependencies=[Depends(require(Permission.ENQUEUE))],
)
async def enqueue_batch(queue: QueueName, body: BatchRequest, request: Request) -> JsonResponse:
    """Enqueue many jobs in one backend round trip; answers in the same order."""
    pairs = await core_of(request).enqueue(queue, body.jobs)
    return JsonResponse({"jobs": [job_body(job, duplicate=not created) for job, created in pairs]})


@router.post(
    "/v1/queues/{queue}/jobs/apply",
    tags=["jobs"],
    operation_id="applyJob",
    responses=responses(
        {
            200: (c.EnqueuedJob, "Finished (complete, failed or aborted)."),
            202: (c.EnqueuedJob, "Still running when `wait` ran out."),
        },
        body=True,
    ),
    dependencies=[Depends(require(Permission.ENQUEUE))],
)
async def apply(
    queue: QueueName, body: EnqueueRequest, request: Request, wait: Wait = 30
) -> JsonResponse:
    """Enqueue and hold the request until the job ends: 200 finished, 202 still running."""
    job, created = await core_of(request).apply(queue, body, wait)
    status = 200 if job.finished else 202
    return JsonResponse(job_body(job, duplicate=not created), status_code=status)


@router.get(
    "/v1/jobs/{job_id}",
    tags=["jobs"],
    operation_id="getJob",
    responses=responses({200: (c.Job, "The job (finished or not when `wait` ran out).")}, 404),
    dependencies=[Depends(require(Permission.READ))],
)
async def get_job(
    job_id: JobIdPath, request: Request, queue: QueueHint = None, wait: Wait = 0
) -> JsonResponse:
    """The job; with ``wait`` it long-polls until the job is finished (200 either way)."""
    return JsonResponse(job_body(await core_of(request).get(job_id, queue, wait)))


@router.get(
    "/v1/jobs/{job_id}/events",
    tags=["jobs"],
    operation_id="watchJob",
    response_class=EventSourceResponse,
    responses={**responses({}, 404), 200: c.SSE_RESPONSE},
    dependencies=[Depends(require(Permission.READ))],
)
async def job_events(
    job_id: JobIdPath, request: Request, queue: QueueHint = None
) -> EventSourceResponse:
    """Server-Sent Events: the job now and at each status/progress change, until it ends."""
    changes = core_of(request).watch(job_id, queue)
    first = await anext(changes)  # a missing job is a 404, before the stream starts

    def event(job: Job | None) -> dict[str, str]:
        if job is None:
            return {"event": "deleted", "data": orjson.dumps({"id": job_id}).decode()}
        return {"event": "job", "data": orjson.dumps(job_body(job)).decode()}

    async def events() -> AsyncIterator[dict[str, str]]:
        yield event(first)
        async for job in changes:
            yield event(job)

    return EventSourceResponse(events(), ping=15)


@router.post(
    "/v1/jobs/{job_id}/abort",
    tags=["jobs"],
    operation_id="abortJob",
    responses=responses(
        {200: (c.Job, "Aborted (queued), aborting (active) or as it was (finished).")},
        404,
        body=True,
    ),
    dependencies=[Depends(require(Permission.CONTROL))],
)
async def abort(
    job_id: JobIdPath, request: Request, body: AbortRequest | None = None, queue: QueueHint = None
) -> JsonResponse:
    """Abort: a queued job at once, an active one when its worker next hears."""
    reason = (body or AbortRequest()).error
    return JsonResponse(job_body(await core_of(request).abort(job_id, queue, reason)))


@router.post(
    "/v1/jobs/{job_id}/retry",
    tags=["jobs"],
    operation_id="retryJob",
    responses=responses({200: (c.Job, "Queued again.")}, 404, 409),
    dependencies=[Depends(require(Permission.CONTROL))],
)
async def retry(job_id: JobIdPath, request: Request, queue: QueueHint = None) -> JsonResponse:
    """Queue a finished job again (409 if it is still live)."""
    return JsonResponse(job_body(await core_of(request).retry(job_id, queue)))


@router.delete(
    "/v1/jobs/{job_id}",
    status_code=204,
    tags=["jobs"],
    operation_id="deleteJob",
    responses=responses({204: (None, "Deleted.")}, 404),
    dependencies=[Depends(require(Permission.DELETE))],
)
async def delete(job_id: JobIdPath, request: Request, queue: QueueHint = None) -> Response:
    """Delete a job whatever its status (admin)."""
    await core_of(request).delete(job_id, queue)
    return Response(status_code=204)


@router.get(
    "/v1/queues",
    tags=["queues"],
    operation_id="listQueues",
    responses=responses({200: (c.QueueList, "Every queue.")}),
    dependencies=[Depends(require(Permission.READ))],
)
async def list_queues(request: Request) -> JsonResponse:
    """Every queue with its counts per status."""
    return JsonResponse({"queues": await core_of(request).queues()})


@router.get(
    "/v1/queues/{queue}",
    tags=["queues"],
    operation_id="getQueue",
    responses=responses({200: (c.QueueInfo, "The queue (empty counts if it has no jobs).")}),
    dependencies=[Depends(require(Permission.READ))],
)
async def queue_info(queue: QueueName, request: Request) -> JsonResponse:
    """Counts per status, the workers seen in the last minute, recent throughput, whether
    it is paused and its limits."""
    return JsonResponse(await core_of(request).queue_info(queue))


@router.get(
    "/v1/queues/{queue}/jobs",
    tags=["queues"],
    operation_id="listJobs",
    responses=responses({200: (c.JobPage, "A page of jobs.")}),
    dependencies=[Depends(require(Permission.READ))],
)
async def list_jobs(
    queue: QueueName,
    request: Request,
    status: Status | None = None,
    function: Annotated[str | None, Query(max_length=LIMITS.function_chars)] = None,
    key_prefix: Annotated[
        str | None,
        Query(max_length=LIMITS.key_chars, description="Only jobs whose `key` starts with it."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,7}$")] = None,
) -> JsonResponse:
    """A page of jobs; pass ``next_cursor`` back as ``cursor`` for the next page.

    The cursor is an offset: deep pages cost more (fine for browsing, not for bulk
    export). With ``function`` or ``key_prefix``, the first 10,000 jobs of the status
    index are scanned.
    """
    jobs, next_cursor = await core_of(request).list_jobs(
        queue, status=status, function=function, key_prefix=key_prefix, limit=limit, cursor=cursor
    )
    return JsonResponse({"jobs": [job_body(j) for j in jobs], "next_cursor": next_cursor})
