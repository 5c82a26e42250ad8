"""Worker routes: lease jobs, renew leases, report results.

Each route translates its request into one ``ServiceCore`` call and the answer into JSON.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from jobwire.job import JOB_ID_PATTERN, NAME_PATTERN
from jobwire.server.auth import Permission, require
from jobwire.server.core import LeaseRef, WorkerInfo
from jobwire.server.rest import contract as c
from jobwire.server.rest.contract import responses
from jobwire.server.rest.jobs import QueueHint, core_of, job_body
from jobwire.server.rest.responses import JsonResponse
from jobwire.server.rest.routes import GuardedRoute
from jobwire.server.schemas import (
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    LeaseRequest,
    RenewRequest,
    SettleRequest,
    WorkerDetails,
)

router = APIRouter(
    tags=["workers"], dependencies=[Depends(require(Permission.WORK))], route_class=GuardedRoute
)
QueueName = Annotated[str, Path(pattern=NAME_PATTERN)]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN)]


@router.post(
    "/v1/queues/{queue}/leases",
    operation_id="leaseJobs",
    responses=responses(
        {200: (c.LeaseResult, "Jobs (maybe none), each with its lease.")}, body=True
    ),
)
async def lease(queue: QueueName, body: LeaseRequest, request: Request) -> JsonResponse:
    """Take up to ``max`` jobs, each with its lease token; long-polls up to ``wait`` s."""
    details = body.worker or WorkerDetails(concurrency=body.max)
    info = WorkerInfo(body.functions, "http", details)
    jobs, next_due_s = await core_of(request).lease(queue, body, info)
    return JsonResponse(
        {"jobs": [job.to_dict(with_lease=True) for job in jobs], "next_due_s": next_due_s}
    )


@router.post(
    "/v1/queues/{queue}/leases/renew",
    operation_id="renewLeases",
    responses=responses({200: (c.RenewResult, "Each lease's state.")}, body=True),
)
async def renew(queue: QueueName, body: RenewRequest, request: Request) -> JsonResponse:
    """Renew many leases; each comes back ``active``, ``aborting`` or ``lost``."""
    refs = [LeaseRef(ref.job_id, ref.lease) for ref in body.leases]
    return JsonResponse({"states": await core_of(request).renew(queue, refs, body.lease_s)})


@router.post(
    "/v1/queues/{queue}/leases/settle",
    operation_id="settleJobs",
    responses=responses({200: (c.SettleResult, "Per outcome, whether it was taken.")}, body=True),
)
async def settle(queue: QueueName, body: SettleRequest, request: Request) -> JsonResponse:
    """Report many outcomes; ``false`` where the lease was stale (nothing changed)."""
    outcomes = [outcome.to_outcome() for outcome in body.outcomes]
    return JsonResponse({"settled": await core_of(request).settle(queue, outcomes)})


@router.post(
    "/v1/queues/{queue}/sweep",
    operation_id="sweepQueue",
    responses=responses({200: (c.SweepResult, "How many jobs were reclaimed.")}),
)
async def sweep(queue: QueueName, request: Request) -> JsonResponse:
    """Reclaim jobs whose lease expired now (the service also does this periodically)."""
    return JsonResponse({"reclaimed": await core_of(request).sweep(queue)})


@router.post(
    "/v1/jobs/{job_id}/heartbeat",
    operation_id="heartbeatJob",
    responses=responses({200: (c.HeartbeatResult, "Renewed; says if aborted.")}, 409, body=True),
)
async def heartbeat(
    job_id: JobIdPath, body: HeartbeatRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Renew the lease (and store progress/meta); says whether the job was aborted."""
    ref = LeaseRef(job_id, body.lease, body.progress, body.meta)
    state = await core_of(request).heartbeat(job_id, queue, ref)
    return JsonResponse({"status": state, "aborted": state == "aborting"})


@router.post(
    "/v1/jobs/{job_id}/complete",
    operation_id="completeJob",
    responses=responses({200: (c.Job, "The job, complete.")}, 404, 409, body=True),
)
async def complete(
    job_id: JobIdPath, body: CompleteRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Report success with the result."""
    job = await core_of(request).complete(job_id, queue, body.lease, body.result, body.run_s)
    return JsonResponse(job_body(job))


@router.post(
    "/v1/jobs/{job_id}/fail",
    operation_id="failJob",
    responses=responses(
        {200: (c.Job, "The job: failed, or queued/scheduled for a retry.")}, 404, 409, body=True
    ),
)
async def fail(
    job_id: JobIdPath, body: FailRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Report failure; the job is retried if ``retryable`` and it has retries left."""
    job = await core_of(request).fail(
        job_id, queue, body.lease, body.error.to_error(), retryable=body.retryable, run_s=body.run_s
    )
    return JsonResponse(job_body(job))
