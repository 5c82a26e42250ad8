"""``jobwire.v1.WorkerService``: unary lease/heartbeat/complete/fail/settle/sweep, and
the ``Work`` stream (served by ``session.WorkSession``).

Each unary method translates its request into one ``ServiceCore`` call.
"""

from collections.abc import AsyncIterator
from typing import Any

import grpc

from jobwire.errors import InvalidRequest
from jobwire.job import ErrorInfo
from jobwire.server.core import ServiceCore, WorkerInfo
from jobwire.server.grpc.jobs import wait_budget
from jobwire.server.grpc.session import WorkHub, WorkSession, lease_refs, outcomes_of
from jobwire.server.schemas import ErrorBody, LeaseRequest, WorkerDetails
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import LEASE_STATE_TO_PB, job_to_pb, loads

Context = grpc.aio.ServicerContext[Any, Any]
_NO_ERROR = ErrorInfo("Error", "")


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """The worker API.

    Args:
        core: The service's operations.
        hub: The process's Work sessions.
    """

    def __init__(self, core: ServiceCore, hub: WorkHub) -> None:
        self._core = core
        self._hub = hub

    async def Lease(self, request: pb.LeaseRequest, context: Context) -> pb.LeaseReply:
        lease = LeaseRequest(
            worker_id=request.worker_id,
            functions=list(request.functions),
            max=request.max_jobs or 1,
            wait=wait_budget(context.time_remaining(), request.wait_s) or 0.0,
            lease_s=request.lease_s or None,
        )
        info = WorkerInfo(lease.functions, "grpc", WorkerDetails(concurrency=lease.max))
        jobs, next_due_s = await self._core.lease(request.queue, lease, info)
        return pb.LeaseReply(
            jobs=[job_to_pb(job, with_lease=True) for job in jobs], next_due_s=next_due_s
        )

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Context) -> pb.HeartbeatReply:
        lease_s = _lease_s(request.lease_s)
        states = await self._core.renew(request.queue, lease_refs(request.leases), lease_s)
        return pb.HeartbeatReply(states=[LEASE_STATE_TO_PB[state] for state in states])

    async def Complete(self, request: pb.CompleteRequest, context: Context) -> pb.Job:
        run_s = request.run_s if request.HasField("run_s") else None
        job = await self._core.complete(
            request.job_id, request.queue or None, request.lease, loads(request.result_json), run_s
        )
        return job_to_pb(job)

    async def Fail(self, request: pb.FailRequest, context: Context) -> pb.Job:
        job = await self._core.fail(
            request.job_id,
            request.queue or None,
            request.lease,
            _error(request.error) if request.HasField("error") else _NO_ERROR,
            retryable=not request.no_retry,
            run_s=request.run_s if request.HasField("run_s") else None,
        )
        return job_to_pb(job)

    async def Settle(self, request: pb.SettleRequest, context: Context) -> pb.SettleReply:
        outcomes = outcomes_of(request.outcomes)
        return pb.SettleReply(settled=await self._core.settle(request.queue, outcomes))

    async def Sweep(self, request: pb.SweepRequest, context: Context) -> pb.SweepReply:
        return pb.SweepReply(reclaimed=await self._core.sweep(request.queue))

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkRequest], context: Context
    ) -> AsyncIterator[pb.WorkResponse]:
        session = WorkSession(self._hub, self._core)
        async for response in session.run(request_iterator):
            yield response


def _error(error: pb.JobError) -> ErrorInfo:
    """An error a worker reports, within the same limits as REST's."""
    return ErrorBody(type=error.type, message=error.message, traceback=error.traceback).to_error()


def _lease_s(lease_s: float) -> float | None:
    if not 0 <= lease_s <= 86_400:
        raise InvalidRequest(f"lease_s: 0 to 86400 seconds, got {lease_s}")
    return lease_s or None
