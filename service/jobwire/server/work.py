"""Worker routes: lease jobs, renew leases, report results."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from jobwire.backends.base import Outcome
from jobwire.errors import StaleLease
from jobwire.job import JOB_ID_PATTERN, NAME_PATTERN, ErrorInfo, Job, Status
from jobwire.queue import Queue
from jobwire.server.api import QueueHint, registry
from jobwire.server.auth import Permission, require
from jobwire.server.responses import JsonResponse
from jobwire.server.schemas import (
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    LeaseRequest,
    RenewRequest,
    SettleRequest,
)

router = APIRouter(tags=["workers"], dependencies=[Depends(require(Permission.WORK))])
QueueName = Annotated[str, Path(pattern=NAME_PATTERN)]
JobIdPath = Annotated[str, Path(pattern=JOB_ID_PATTERN)]
TOUCH_EVERY_S = 5.0  # record a worker as seen at most this often


@router.post("/v1/queues/{queue}/leases")
async def lease(queue: QueueName, body: LeaseRequest, request: Request) -> JsonResponse:
    """Take up to ``max`` jobs, each with its lease token; long-polls up to ``wait`` s."""
    owner = registry(request).get(queue, body.lease_s)
    wait_s = min(body.wait, request.app.state.settings.max_wait_s)
    jobs, next_due_s = await owner.lease(body.worker_id, body.max, wait_s=wait_s)
    await _touch(request, owner, body.worker_id, {"functions": body.functions, "max": body.max})
    for job in jobs:
        request.app.state.metrics.leased(job)
    return JsonResponse(
        {"jobs": [job.to_dict(with_lease=True) for job in jobs], "next_due_s": next_due_s}
    )


@router.post("/v1/queues/{queue}/leases/renew")
async def renew(queue: QueueName, body: RenewRequest, request: Request) -> JsonResponse:
    """Renew many leases; each comes back ``active``, ``aborting`` or ``lost``."""
    owner = registry(request).get(queue, body.lease_s)
    states = await owner.renew([(ref.job_id, ref.lease) for ref in body.leases])
    return JsonResponse({"states": states})


@router.post("/v1/queues/{queue}/leases/settle")
async def settle(queue: QueueName, body: SettleRequest, request: Request) -> JsonResponse:
    """Report many outcomes; ``false`` where the lease was stale (nothing changed)."""
    outcomes = [
        Outcome(
            o.job_id,
            o.lease,
            Status(o.status),
            result=o.result,
            delay_s=o.delay_s,
            error=ErrorInfo(**o.error.model_dump()) if o.error else None,
            run_s=o.run_s,
        )
        for o in body.outcomes
    ]
    settled = await registry(request).get(queue).settle(outcomes)
    for item, done in zip(body.outcomes, settled, strict=True):
        if done:
            request.app.state.metrics.outcome(queue, item.function, Status(item.status), item.run_s)
    return JsonResponse({"settled": settled})


@router.post("/v1/queues/{queue}/sweep")
async def sweep(queue: QueueName, request: Request) -> JsonResponse:
    """Reclaim jobs whose lease expired now (the service also does this periodically)."""
    return JsonResponse({"reclaimed": await registry(request).get(queue).sweep()})


@router.post("/v1/jobs/{job_id}/heartbeat")
async def heartbeat(
    job_id: JobIdPath, body: HeartbeatRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Renew the lease (and store progress/meta); says whether the job was aborted."""
    owner, job = await registry(request).find(job_id, queue)
    if body.progress is not None or body.meta is not None:
        job.lease = body.lease
        await owner.update(job, progress=body.progress, meta=body.meta)
    [state] = await owner.renew([(job_id, body.lease)])
    if state == "lost":
        raise StaleLease(f"job {job_id}: lease {body.lease!r} no longer owns it")
    return JsonResponse({"status": state, "aborted": state == "aborting"})


@router.post("/v1/jobs/{job_id}/complete")
async def complete(
    job_id: JobIdPath, body: CompleteRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Report success with the result."""
    owner, job = await registry(request).find(job_id, queue)
    outcome = Outcome(job_id, body.lease, Status.COMPLETE, result=body.result, run_s=body.run_s)
    return await _settle_one(request, owner, job, outcome)


@router.post("/v1/jobs/{job_id}/fail")
async def fail(
    job_id: JobIdPath, body: FailRequest, request: Request, queue: QueueHint = None
) -> JsonResponse:
    """Report failure; the job is retried if ``retryable`` and it has retries left."""
    owner, job = await registry(request).find(job_id, queue)
    if job.lease != body.lease:
        raise StaleLease(f"job {job_id}: lease {body.lease!r} no longer owns it")
    error = ErrorInfo(**body.error.model_dump())
    outcome = Outcome.for_failure(job, error, retryable=body.retryable, run_s=body.run_s)
    return await _settle_one(request, owner, job, outcome)


async def _settle_one(request: Request, owner: Queue, job: Job, outcome: Outcome) -> JsonResponse:
    [done] = await owner.settle([outcome])
    if not done:
        raise StaleLease(f"job {job.id}: lease {outcome.lease!r} no longer owns it")
    request.app.state.metrics.outcome(owner.name, job.function, outcome.status, outcome.run_s)
    after = await owner.job(job.id)
    return JsonResponse((after or job).to_dict())


async def _touch(request: Request, owner: Queue, worker_id: str, info: dict[str, Any]) -> None:
    seen: dict[tuple[str, str], float] = request.app.state.workers_seen
    now = time.monotonic()
    if now - seen.get((owner.name, worker_id), 0.0) >= TOUCH_EVERY_S:
        seen[(owner.name, worker_id)] = now
        await owner.backend.touch_worker(worker_id, info)
