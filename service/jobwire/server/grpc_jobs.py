"""``jobwire.v1.JobService``: enqueue, read, wait, watch, abort, retry, delete, queue views.

A thin adapter over the same Queue calls as the REST routes (``api.py``); errors are
raised as ``JobwireError``/``ValueError`` and translated once by the edge interceptor.
"""

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc

from jobwire.errors import InvalidRequest, JobNotFound
from jobwire.job import JOB_ID_PATTERN, Job
from jobwire.queue import Queue
from jobwire.server.metrics import Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.server.schemas import EnqueueRequest
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import STATUS_FROM_PB, dumps, job_to_pb, spec_fields

Context = grpc.aio.ServicerContext[Any, Any]
_JOB_ID = re.compile(JOB_ID_PATTERN)
MAX_BATCH = 1000
DEADLINE_MARGIN_S = 0.2  # answer this long before the caller's deadline


class JobServicer(pb_grpc.JobServiceServicer):
    """The client API.

    Args:
        registry: The service's queues.
        metrics: Where enqueues are counted.
        max_wait_s: Longest wait of a call without a deadline.
        stopping: Set when the service shuts down: waits end at once.
    """

    def __init__(
        self, registry: QueueRegistry, metrics: Metrics, max_wait_s: float, stopping: asyncio.Event
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._max_wait_s = max_wait_s
        self._stopping = stopping

    async def Enqueue(self, request: pb.EnqueueRequest, context: Context) -> pb.EnqueueReply:
        [(job, created)] = await self._put(request.queue, [request.job])
        return pb.EnqueueReply(job=job_to_pb(job), duplicate=not created)

    async def EnqueueBatch(
        self, request: pb.EnqueueBatchRequest, context: Context
    ) -> pb.EnqueueBatchReply:
        if not 1 <= len(request.jobs) <= MAX_BATCH:
            raise InvalidRequest(f"jobs: 1 to {MAX_BATCH} per batch, got {len(request.jobs)}")
        pairs = await self._put(request.queue, list(request.jobs))
        replies = [pb.EnqueueReply(job=job_to_pb(j), duplicate=not created) for j, created in pairs]
        return pb.EnqueueBatchReply(jobs=replies)

    async def Apply(self, request: pb.ApplyRequest, context: Context) -> pb.ApplyReply:
        [(job, created)] = await self._put(request.queue, [request.job])
        owner = self._registry.get(request.queue)
        done = await self._wait(owner, job, None, context)
        return pb.ApplyReply(job=job_to_pb(done), duplicate=not created)

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.Job:
        owner, job = await self._find(request.job_id, request.queue)
        if request.wait_s > 0 and not job.finished:
            job = await self._wait(owner, job, request.wait_s, context)
        return job_to_pb(job)

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.Job]:
        owner, _ = await self._find(request.job_id, request.queue)
        last: Job | None = None
        async for job in owner.backend.watch(request.job_id):
            if job is None:
                raise JobNotFound(f"job {request.job_id!r} was deleted")
            if job != last:  # a store may wake watchers without a change
                yield job_to_pb(job)
            last = job

    async def AbortJob(self, request: pb.AbortJobRequest, context: Context) -> pb.Job:
        owner, _ = await self._find(request.job_id, request.queue)
        if len(request.reason) > 10_000:
            raise InvalidRequest("reason: at most 10000 characters")
        job = await owner.abort(request.job_id, error=request.reason or "aborted")
        self._registry.aborted(job)
        return job_to_pb(job)

    async def RetryJob(self, request: pb.RetryJobRequest, context: Context) -> pb.Job:
        owner, _ = await self._find(request.job_id, request.queue)
        return job_to_pb(await owner.retry(request.job_id))

    async def DeleteJob(self, request: pb.DeleteJobRequest, context: Context) -> pb.DeleteJobReply:
        owner, _ = await self._find(request.job_id, request.queue)
        await owner.delete(request.job_id)
        return pb.DeleteJobReply()

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsReply:
        size = request.page_size or 100
        if not 1 <= size <= MAX_BATCH:
            raise InvalidRequest(f"page_size: 1 to {MAX_BATCH}, got {size}")
        token = request.page_token
        if token and not (token.isdigit() and len(token) <= 7):
            raise InvalidRequest(f"page_token: not one this service gave out: {token!r}")
        offset = int(token or 0)
        status = STATUS_FROM_PB.get(request.status) if request.status else None
        jobs = await self._registry.get(request.queue).jobs(status, limit=offset + size + 1)
        if request.function:
            jobs = [job for job in jobs if job.function == request.function]
        more = len(jobs) > offset + size
        return pb.ListJobsReply(
            jobs=[job_to_pb(job) for job in jobs[offset : offset + size]],
            next_page_token=str(offset + size) if more else "",
        )

    async def GetQueue(self, request: pb.GetQueueRequest, context: Context) -> pb.QueueInfo:
        info = await self._registry.get(request.queue).info()
        workers = [
            pb.WorkerInfo(id=w["id"], seen=w["seen"], info_json=_rest_json(w))
            for w in info["workers"]
        ]
        return pb.QueueInfo(
            name=info["name"],
            counts=info["counts"],
            workers=workers,
            finished_per_s=info["finished_per_s"],
        )

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Context
    ) -> pb.ListQueuesReply:
        names = await self._registry.names()
        counts = await asyncio.gather(*(self._registry.get(n).backend.counts() for n in names))
        return pb.ListQueuesReply(
            queues=[
                pb.QueueInfo(name=name, counts={s.value: n for s, n in per_status.items()})
                for name, per_status in zip(names, counts, strict=True)
            ]
        )

    async def _put(self, queue_name: str, specs: list[pb.JobSpec]) -> list[tuple[Job, bool]]:
        """Validate as REST does (the same schema), then store in one round trip."""
        jobs = [EnqueueRequest(**spec_fields(spec)).to_job(queue_name) for spec in specs]
        owner = self._registry.get(queue_name)
        pairs = await owner.put(jobs)
        owner.backend.wake_local()  # wake this process's waiting leases ahead of the store
        for job, created in pairs:
            if created:
                self._metrics.enqueued.labels(queue_name, job.function).inc()
        return pairs

    async def _find(self, job_id: str, queue: str) -> tuple[Queue, Job]:
        if not _JOB_ID.match(job_id):
            raise InvalidRequest(f"job_id must match {JOB_ID_PATTERN}, got {job_id!r}")
        return await self._registry.find(job_id, queue or None)

    async def _wait(self, owner: Queue, job: Job, wait_s: float | None, context: Context) -> Job:
        """The job once finished, or as it is when the wait runs out (or the service stops)."""
        budget = wait_budget(context.time_remaining(), wait_s, self._max_wait_s)
        waiting = asyncio.ensure_future(owner.wait(job, timeout=budget))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waiting.cancel()
        if waiting.done() and not waiting.cancelled():
            error = waiting.exception()
            if error is None:
                return waiting.result()
            if not isinstance(error, TimeoutError):
                raise error
        return await owner.job(job.id) or job


def wait_budget(remaining_s: float | None, wanted_s: float | None, max_wait_s: float) -> float:
    """How long a call may wait: ``wanted_s`` (else without limit), up to shortly before
    the caller's deadline, or ``max_wait_s`` when the call has none."""
    if wanted_s is not None and wanted_s < 0:
        raise InvalidRequest(f"wait_s must be >= 0, got {wanted_s}")
    cap = max_wait_s if remaining_s is None else max(remaining_s - DEADLINE_MARGIN_S, 0.0)
    return cap if wanted_s is None else min(wanted_s, cap)


def _rest_json(worker: dict[str, Any]) -> str:
    return dumps({k: v for k, v in worker.items() if k not in ("id", "seen")})
