"""``jobwire.v1.WorkerService``: unary lease/heartbeat/complete/fail/settle/sweep, and
the ``Work`` stream (served by ``grpc_session.WorkSession``)."""

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc

from jobwire.backends.base import Outcome
from jobwire.errors import InvalidRequest, StaleLease
from jobwire.job import JOB_ID_PATTERN, ErrorInfo, Job, Status
from jobwire.queue import Queue
from jobwire.server.grpc_jobs import wait_budget
from jobwire.server.grpc_session import (
    WorkHub,
    WorkSession,
    count_outcomes,
    outcomes_of,
    renew_refs,
)
from jobwire.server.metrics import Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import (
    LEASE_STATE_TO_PB,
    error_from_pb,
    job_to_pb,
    loads,
)

Context = grpc.aio.ServicerContext[Any, Any]
_JOB_ID = re.compile(JOB_ID_PATTERN)
MAX_LEASE = 1000
TOUCH_EVERY_S = 5.0  # record a worker leasing by unary calls as seen at most this often


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """The worker API.

    Args:
        registry: The service's queues.
        metrics: Where leases and outcomes are counted.
        hub: The process's Work sessions.
        max_wait_s: Longest lease wait.
        stopping: Set when the service shuts down: lease waits end at once.
    """

    def __init__(
        self,
        registry: QueueRegistry,
        metrics: Metrics,
        hub: WorkHub,
        max_wait_s: float,
        stopping: asyncio.Event,
    ) -> None:
        self._registry = registry
        self._metrics = metrics
        self._hub = hub
        self._max_wait_s = max_wait_s
        self._stopping = stopping
        self._seen: dict[tuple[str, str], float] = {}

    async def Lease(self, request: pb.LeaseRequest, context: Context) -> pb.LeaseReply:
        if not 1 <= len(request.worker_id) <= 200:
            raise InvalidRequest("worker_id: 1 to 200 characters")
        max_jobs = request.max_jobs or 1
        if not 1 <= max_jobs <= MAX_LEASE:
            raise InvalidRequest(f"max_jobs: 1 to {MAX_LEASE}, got {max_jobs}")
        owner = self._queue(request.queue, request.lease_s)
        wait_s = wait_budget(context.time_remaining(), request.wait_s, self._max_wait_s)
        if self._stopping.is_set():
            wait_s = 0.0
        jobs, next_due_s = await owner.lease(request.worker_id, max_jobs, wait_s=wait_s)
        await self._touch(owner, request.worker_id, list(request.functions))
        for job in jobs:
            self._metrics.leased(job)
        return pb.LeaseReply(
            jobs=[job_to_pb(job, with_lease=True) for job in jobs], next_due_s=next_due_s
        )

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> pb.HeartbeatReply:
        states = await renew_refs(self._queue(request.queue, request.lease_s), request.leases)
        return pb.HeartbeatReply(states=[LEASE_STATE_TO_PB[state] for state in states])

    async def Complete(self, request: pb.CompleteRequest, context: Context) -> pb.Job:
        owner, job = await self._find(request.job_id, request.queue)
        outcome = Outcome(
            job.id,
            request.lease,
            Status.COMPLETE,
            result=loads(request.result_json),
            run_s=request.run_s if request.HasField("run_s") else None,
        )
        return await self._settle_one(owner, job, outcome)

    async def Fail(self, request: pb.FailRequest, context: Context) -> pb.Job:
        owner, job = await self._find(request.job_id, request.queue)
        if not request.lease or job.lease != request.lease:
            raise StaleLease(f"job {job.id}: lease {request.lease!r} no longer owns it")
        error = error_from_pb(request.error) if request.HasField("error") else _NO_ERROR
        outcome = Outcome.for_failure(
            job,
            error,
            retryable=not request.no_retry,
            run_s=request.run_s if request.HasField("run_s") else None,
        )
        return await self._settle_one(owner, job, outcome)

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.SettleReply:
        outcomes = outcomes_of(request.outcomes)
        owner = self._queue(request.queue, 0.0)
        settled = await owner.settle(outcomes)
        count_outcomes(self._metrics, owner.name, outcomes, settled)
        return pb.SettleReply(settled=settled)

    async def Sweep(self, request: pb.SweepRequest, context: Context) -> pb.SweepReply:
        return pb.SweepReply(reclaimed=await self._queue(request.queue, 0.0).sweep())

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkRequest], context: Context
    ) -> AsyncIterator[pb.WorkResponse]:
        session = WorkSession(self._hub, self._registry, self._metrics)
        async for response in session.run(request_iterator):
            yield response

    def _queue(self, name: str, lease_s: float) -> Queue:
        if not 0 <= lease_s <= 86_400:
            raise InvalidRequest(f"lease_s: 0 to 86400 seconds, got {lease_s}")
        return self._registry.get(name, lease_s or None)

    async def _find(self, job_id: str, queue: str) -> tuple[Queue, Job]:
        if not _JOB_ID.match(job_id):
            raise InvalidRequest(f"job_id must match {JOB_ID_PATTERN}, got {job_id!r}")
        return await self._registry.find(job_id, queue or None)

    async def _settle_one(self, owner: Queue, job: Job, outcome: Outcome) -> pb.Job:
        [done] = await owner.settle([outcome])
        if not done:
            raise StaleLease(f"job {job.id}: lease {outcome.lease!r} no longer owns it")
        self._metrics.outcome(owner.name, job.function, outcome.status, outcome.run_s)
        return job_to_pb(await owner.job(job.id) or job)

    async def _touch(self, owner: Queue, worker_id: str, functions: list[str]) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._seen.get((owner.name, worker_id), -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._seen[(owner.name, worker_id)] = now
            await owner.backend.touch_worker(worker_id, {"functions": functions})


_NO_ERROR = ErrorInfo("Error", "")
