"""``jobwire.v1.JobService``: enqueue, read, wait, watch, abort, retry, delete, queue views.

Each method translates its request into one ``ServiceCore`` call and the answer into
messages; errors are raised as they come and translated once by the edge interceptor.
"""

from collections.abc import AsyncIterator
from typing import Any

import grpc

from jobwire.errors import InvalidRequest, JobNotFound
from jobwire.server.core import ServiceCore
from jobwire.server.schemas import EnqueueRequest
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import STATUS_FROM_PB, dumps, job_to_pb, settings_to_pb, spec_fields

Context = grpc.aio.ServicerContext[Any, Any]
DEADLINE_MARGIN_S = 0.2  # answer this long before the caller's deadline


class JobServicer(pb_grpc.JobServiceServicer):
    """The client API.

    Args:
        core: The service's operations.
    """

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    async def Enqueue(self, request: pb.EnqueueRequest, context: Context) -> pb.EnqueueReply:
        [(job, created)] = await self._core.enqueue(request.queue, [_spec(request.job)])
        return pb.EnqueueReply(job=job_to_pb(job), duplicate=not created)

    async def EnqueueBatch(
        self, request: pb.EnqueueBatchRequest, context: Context
    ) -> pb.EnqueueBatchReply:
        pairs = await self._core.enqueue(request.queue, [_spec(spec) for spec in request.jobs])
        replies = [pb.EnqueueReply(job=job_to_pb(j), duplicate=not created) for j, created in pairs]
        return pb.EnqueueBatchReply(jobs=replies)

    async def Apply(self, request: pb.ApplyRequest, context: Context) -> pb.ApplyReply:
        wait_s = wait_budget(context.time_remaining(), None)
        job, created = await self._core.apply(request.queue, _spec(request.job), wait_s)
        return pb.ApplyReply(job=job_to_pb(job), duplicate=not created)

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.Job:
        wait_s = wait_budget(context.time_remaining(), request.wait_s)
        return job_to_pb(await self._core.get(request.job_id, request.queue or None, wait_s))

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.Job]:
        async for job in self._core.watch(request.job_id, request.queue or None):
            if job is None:
                raise JobNotFound(f"job {request.job_id!r} was deleted")
            yield job_to_pb(job)

    async def AbortJob(self, request: pb.AbortJobRequest, context: Context) -> pb.Job:
        job = await self._core.abort(request.job_id, request.queue or None, request.reason)
        return job_to_pb(job)

    async def RetryJob(self, request: pb.RetryJobRequest, context: Context) -> pb.Job:
        return job_to_pb(await self._core.retry(request.job_id, request.queue or None))

    async def DeleteJob(self, request: pb.DeleteJobRequest, context: Context) -> pb.DeleteJobReply:
        await self._core.delete(request.job_id, request.queue or None)
        return pb.DeleteJobReply()

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsReply:
        jobs, next_token = await self._core.list_jobs(
            request.queue,
            status=STATUS_FROM_PB.get(request.status) if request.status else None,
            function=request.function or None,
            key_prefix=request.key_prefix or None,
            limit=request.page_size or 100,
            cursor=request.page_token or None,
        )
        return pb.ListJobsReply(
            jobs=[job_to_pb(job) for job in jobs], next_page_token=next_token or ""
        )

    async def GetQueue(self, request: pb.GetQueueRequest, context: Context) -> pb.QueueInfo:
        info = await self._core.queue_info(request.queue)
        workers = [
            pb.WorkerInfo(id=w["id"], seen=w["seen"], info_json=_info_json(w))
            for w in info["workers"]
        ]
        return pb.QueueInfo(
            name=info["name"],
            counts=info["counts"],
            workers=workers,
            finished_per_s=info["finished_per_s"],
            paused=info["paused"],
            settings=settings_to_pb(info["settings"]),
        )

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Context
    ) -> pb.ListQueuesReply:
        queues = await self._core.queues()
        return pb.ListQueuesReply(
            queues=[pb.QueueInfo(name=q["name"], counts=q["counts"]) for q in queues]
        )


def wait_budget(remaining_s: float | None, wanted_s: float | None) -> float | None:
    """How long a call may wait: ``wanted_s`` (``None``: as long as the service allows), up
    to shortly before the caller's deadline, if it has one."""
    if wanted_s is not None and wanted_s < 0:
        raise InvalidRequest(f"wait_s must be >= 0, got {wanted_s}")
    if remaining_s is None:
        return wanted_s
    cap = max(remaining_s - DEADLINE_MARGIN_S, 0.0)
    return cap if wanted_s is None else min(wanted_s, cap)


def _spec(spec: pb.JobSpec) -> EnqueueRequest:
    """A job spec, validated by the same schema as REST's body."""
    return EnqueueRequest(**spec_fields(spec))


def _info_json(worker: dict[str, Any]) -> str:
    return dumps({k: v for k, v in worker.items() if k not in ("id", "seen")})
