"""The backend contract over a running Jobwire service's gRPC API.

``Queue.from_url("grpc://:TOKEN@host:50051", name=...)`` (``grpcs://`` for TLS) enqueues,
waits, aborts and works through the service. A ``Worker`` on such a queue takes its jobs
from the ``Work`` stream: the service pushes them as the worker grants credits, leases
are renewed and outcomes reported on the same stream, and aborts arrive the moment they
happen (``stream.WorkStream``). The token comes from the URL's password or
``$JOBWIRE_TOKEN``; for ``grpcs://`` with a private CA, ``$JOBWIRE_TLS_CA`` names its
PEM file (else the system's roots are used).
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from jobwire import errors
from jobwire.backends.base import LeaseState, Outcome
from jobwire.backends.remote.base import (
    BATCH,
    BULK_TIMEOUT_S,
    RemoteBackend,
    bearer_token,
    bracketed_host,
    error_for,
)
from jobwire.backends.remote.stream import StreamClosed, WorkStream, hello_for
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, ErrorInfo, Job, Status
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc
from jobwire.v1.codec import (
    BULK_ACTION_TO_PB,
    ERROR_CODE_KEY,
    LEASE_STATE_FROM_PB,
    STATUS_TO_PB,
    dumps,
    filter_to_pb,
    job_from_pb,
    loads,
    outcome_to_pb,
    settings_fields,
    settings_to_pb,
    spec_from_job,
)

DEFAULT_PORT = 50051
CALL_TIMEOUT_S = 30.0
_BY_STATUS: dict[grpc.StatusCode, type[errors.JobwireError]] = {
    grpc.StatusCode.NOT_FOUND: errors.JobNotFound,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidRequest,
    grpc.StatusCode.FAILED_PRECONDITION: errors.InvalidJobState,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.Forbidden,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.PayloadTooLarge,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
}


class GrpcBackend(RemoteBackend):
    """A queue served by a Jobwire service, over gRPC.

    Args:
        url: ``grpc(s)://[:token@]host[:port]`` (port 50051 by default).
        queue_name: The queue.
        lease_s: Lease length the service gives this worker's jobs without a heartbeat.
        channel: Share another backend's channel (connection).
    """

    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        channel: "_Channel | None" = None,
    ) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self.url = url
        self._owns_channel = channel is None
        self._channel = channel or _Channel(url)
        self._streams: dict[str, WorkStream] = {}
        self._abort_callbacks: list[Callable[[str], None]] = []

    def for_queue(self, queue_name: str) -> "GrpcBackend":
        return GrpcBackend(self.url, queue_name, lease_s=self.lease_s, channel=self._channel)

    async def close(self) -> None:
        streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            await stream.close()
        if self._owns_channel:
            await self._channel.close()

    async def _call(self, method: str, request: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """One unary call; the service's error becomes the matching JobwireError."""
        stub = self._channel.stub(method)
        try:
            return await stub(request, metadata=self._channel.metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc) from None

    async def _maybe_job(self, method: str, request: Any) -> Job | None:
        with contextlib.suppress(errors.JobNotFound):
            return job_from_pb(await self._call(method, request))
        return None

    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        if len(jobs) == 1:
            request = pb.EnqueueRequest(queue=self.queue_name, job=spec_from_job(jobs[0]))
            reply = await self._call("Enqueue", request)
            return [(job_from_pb(reply.job), not reply.duplicate)]
        pairs: list[tuple[Job, bool]] = []
        for start in range(0, len(jobs), BATCH):
            specs = [spec_from_job(job) for job in jobs[start : start + BATCH]]
            batch = await self._call(
                "EnqueueBatch", pb.EnqueueBatchRequest(queue=self.queue_name, jobs=specs)
            )
            pairs += [(job_from_pb(r.job), not r.duplicate) for r in batch.jobs]
        return pairs

    async def get(self, job_id: str) -> Job | None:
        request = pb.GetJobRequest(job_id=job_id, queue=self.queue_name)
        return await self._maybe_job("GetJob", request)

    async def find_job(self, job_id: str) -> Job | None:
        return await self._maybe_job("GetJob", pb.GetJobRequest(job_id=job_id))

    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        jobs: list[Job] = []
        token = ""
        while len(jobs) < limit:
            request = pb.ListJobsRequest(
                queue=self.queue_name,
                status=STATUS_TO_PB[status] if status is not None else pb.STATUS_UNSPECIFIED,
                page_size=min(limit - len(jobs), BATCH),
                page_token=token,
            )
            page = await self._call("ListJobs", request)
            jobs += [job_from_pb(message) for message in page.jobs]
            token = page.next_page_token
            if not token:
                break
        return jobs

    async def _queue_info(self) -> pb.QueueInfo:
        info: pb.QueueInfo = await self._call("GetQueue", pb.GetQueueRequest(queue=self.queue_name))
        return info

    async def counts(self) -> dict[Status, int]:
        counts = (await self._queue_info()).counts
        return {status: int(counts.get(status.value, 0)) for status in Status}

    async def workers(self) -> list[dict[str, Any]]:
        return [
            {**loads(w.info_json, {}), "id": w.id, "seen": w.seen}
            for w in (await self._queue_info()).workers
        ]

    async def throughput(self, window_s: float) -> float:
        return float((await self._queue_info()).finished_per_s)  # the service's window

    async def queues(self) -> list[str]:
        reply = await self._call("ListQueues", pb.ListQueuesRequest())
        return [queue.name for queue in reply.queues]

    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        request = pb.AbortJobRequest(job_id=job_id, queue=self.queue_name, reason=error.message)
        return await self._maybe_job("AbortJob", request)

    async def retry(self, job_id: str) -> Job | None:
        return await self._maybe_job(
            "RetryJob", pb.RetryJobRequest(job_id=job_id, queue=self.queue_name)
        )

    async def delete(self, job_id: str) -> bool:
        with contextlib.suppress(errors.JobNotFound):
            await self._call("DeleteJob", pb.DeleteJobRequest(job_id=job_id, queue=self.queue_name))
            return True
        return False

    async def queue_settings(self) -> tuple[QueueSettings, bool]:
        request = pb.GetQueueSettingsRequest(queue=self.queue_name)
        reply = await self._call("GetQueueSettings", request)
        return QueueSettings.from_dict(settings_fields(reply.settings)), reply.paused

    async def put_settings(self, settings: QueueSettings) -> None:
        message = settings_to_pb(settings.to_dict())
        request = pb.PutQueueSettingsRequest(queue=self.queue_name, settings=message)
        await self._call("PutQueueSettings", request)

    async def set_paused(self, paused: bool) -> None:
        if paused:
            await self._call("PauseQueue", pb.PauseQueueRequest(queue=self.queue_name))
        else:
            await self._call("ResumeQueue", pb.ResumeQueueRequest(queue=self.queue_name))

    async def bulk_all(self, action: BulkAction, where: JobFilter) -> int:
        request = pb.BulkJobsRequest(
            queue=self.queue_name,
            action=BULK_ACTION_TO_PB[action],
            filter=filter_to_pb(where.to_dict()),
        )
        reply = await self._call("BulkJobs", request, timeout_s=BULK_TIMEOUT_S)
        return int(reply.count)

    async def _lease_unary(
        self, worker_id: str, max_jobs: int, wait_s: float
    ) -> tuple[list[Job], float | None]:
        request = pb.LeaseRequest(
            queue=self.queue_name,
            worker_id=worker_id,
            functions=self.worker_info(worker_id)[0],
            max_jobs=min(max_jobs, BATCH),
            wait_s=wait_s,
            lease_s=self.lease_s,
        )
        reply = await self._call("Lease", request, timeout_s=wait_s + CALL_TIMEOUT_S)
        next_due_s = reply.next_due_s if reply.HasField("next_due_s") else None
        return [job_from_pb(message) for message in reply.jobs], next_due_s

    async def lease_or_wait(
        self, worker_id: str, max_jobs: int, wait_s: float, stop: asyncio.Event | None = None
    ) -> tuple[list[Job], float | None]:
        """A waiting lease takes jobs pushed on the worker's ``Work`` stream (opened on
        first use; ``stop`` ends the wait); ``wait_s == 0`` is one unary lease (it also
        reports the next due)."""
        if wait_s <= 0:
            return await self._lease_unary(worker_id, max_jobs, 0.0)
        stream = self._stream(worker_id)
        waker = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if waker is not None:
            waker.add_done_callback(lambda _: stream.wake())
        try:
            return await stream.take(min(max_jobs, BATCH), wait_s), None
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc) from None
        finally:
            if waker is not None:
                waker.cancel()

    def _stream(self, worker_id: str) -> WorkStream:
        stream = self._streams.get(worker_id)
        if stream is None:
            functions, details = self.worker_info(worker_id)
            hello = hello_for(self.queue_name, worker_id, self.lease_s, functions, details)
            stream = self._streams[worker_id] = WorkStream(
                self._channel.open_work, hello, self._aborted, self.settle
            )
        return stream

    async def on_abort(self, callback: Callable[[str], None]) -> None:
        self._abort_callbacks.append(callback)

    def off_abort(self, callback: Callable[[str], None]) -> None:
        with contextlib.suppress(ValueError):
            self._abort_callbacks.remove(callback)

    def _aborted(self, job_id: str) -> None:
        for callback in self._abort_callbacks:
            callback(job_id)

    async def stop_leasing(self, worker_id: str) -> None:
        stream = self._streams.get(worker_id)
        if stream is not None:
            await stream.stop()

    def _holder(self, job_id: str) -> WorkStream | None:
        for stream in self._streams.values():
            if job_id in stream.held and stream.is_open:
                return stream
        return None

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        if not leases:
            return []
        stream = self._holder(leases[0][0])
        if stream is not None and all(self._holder(i) is stream for i, _ in leases):
            with contextlib.suppress(StreamClosed, TimeoutError):
                return await stream.renew(leases)
        refs = [pb.LeaseRef(job_id=job_id, lease=lease) for job_id, lease in leases]
        request = pb.HeartbeatRequest(queue=self.queue_name, leases=refs, lease_s=self.lease_s)
        reply = await self._call("Heartbeat", request)
        return [LEASE_STATE_FROM_PB[state] for state in reply.states]

    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        ref = pb.LeaseRef(job_id=job_id, lease=lease, progress=progress)
        if meta is not None:
            ref.meta_json = dumps(meta)
        request = pb.HeartbeatRequest(queue=self.queue_name, leases=[ref], lease_s=self.lease_s)
        reply = await self._call("Heartbeat", request)
        return bool(LEASE_STATE_FROM_PB[reply.states[0]] != "lost")

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        stream = self._holder(outcomes[0].job_id)
        if stream is not None and all(self._holder(o.job_id) is stream for o in outcomes):
            with contextlib.suppress(StreamClosed, TimeoutError):
                return await stream.settle(outcomes)
        request = pb.SettleRequest(
            queue=self.queue_name, outcomes=[outcome_to_pb(o) for o in outcomes]
        )
        settled = list((await self._call("Settle", request)).settled)
        for stream in list(self._streams.values()):
            stream.forget([o.job_id for o in outcomes])
        return settled

    async def sweep(self, limit: int) -> int:
        reply = await self._call("Sweep", pb.SweepRequest(queue=self.queue_name))
        return int(reply.reclaimed)

    def wake_local(self) -> None:
        super().wake_local()
        for stream in self._streams.values():
            stream.wake()

    async def poll_finished(self, job_id: str, wait_s: float) -> Job | None:
        request = pb.GetJobRequest(job_id=job_id, queue=self.queue_name, wait_s=wait_s)
        with contextlib.suppress(errors.JobNotFound):
            return job_from_pb(await self._call("GetJob", request, wait_s + CALL_TIMEOUT_S))
        return None

    async def watch(self, job_id: str) -> AsyncGenerator[Job | None, None]:
        request = pb.WatchJobRequest(job_id=job_id, queue=self.queue_name)
        call = self._channel.stub("WatchJob")(request, metadata=self._channel.metadata)
        try:
            async for message in call:
                yield job_from_pb(message)
        except grpc.aio.AioRpcError as exc:
            error = error_from(exc)
            if not isinstance(error, errors.JobNotFound):
                raise error from None
            yield None
        finally:
            call.cancel()


class _Channel:
    """One gRPC channel (HTTP/2 connection), opened on first use inside the loop."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = f"{bracketed_host(parts)}:{parts.port or DEFAULT_PORT}"
        self.secure = parts.scheme.lower() == "grpcs"
        token = bearer_token(parts)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self.secure:
                ca_path = os.environ.get("JOBWIRE_TLS_CA")
                ca = Path(ca_path).read_bytes() if ca_path else None
                credentials = grpc.ssl_channel_credentials(root_certificates=ca)
                self._channel = grpc.aio.secure_channel(self.target, credentials)
            else:
                self._channel = grpc.aio.insecure_channel(self.target)
            jobs = pb_grpc.JobServiceStub(self._channel)
            queues = pb_grpc.QueueServiceStub(self._channel)
            work = pb_grpc.WorkerServiceStub(self._channel)
            self._stubs = {**vars(jobs), **vars(queues), **vars(work)}
        return self._channel

    def stub(self, method: str) -> Any:
        """The multi-callable of an RPC, by method name."""
        self._open()
        return self._stubs[method]

    def open_work(self, requests: AsyncIterator[pb.WorkRequest]) -> Any:
        """Start a ``Work`` call fed by ``requests``."""
        return self.stub("Work")(requests, metadata=self.metadata)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def error_from(exc: grpc.aio.AioRpcError) -> Exception:
    """The JobwireError a failed call stands for (the call's error if none)."""
    code = dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY)
    message = f"{exc.details()} (gRPC {exc.code().name})"
    error = error_for(str(code) if code else None, message)
    if error is not None:
        return error
    cls = _BY_STATUS.get(exc.code())
    return cls(message) if cls is not None else exc
