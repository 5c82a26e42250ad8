"""The client side of the ``Work`` stream: one ``WorkStream`` per worker id.

``take`` grants credits and returns the jobs the service pushed under them (it waits
only when none is buffered); heartbeats and results go on the same stream, each answered
by request id; pushed aborts reach the worker through a callback. ``stop`` voids the
credits and hands back what was pushed but not taken; a ``drain`` from the service does
the same. Once stopped or drained, the stream closes as soon as the worker holds nothing
pushed on it; a broken stream is reopened by the next ``take`` (renewals and results then
go by unary calls, see ``GrpcBackend``).
"""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from jobwire.backends.base import LeaseState, Outcome
from jobwire.job import Job
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1.codec import LEASE_STATE_FROM_PB, dumps, job_from_pb, outcome_to_pb

logger = logging.getLogger("jobwire.backend.grpc")
REPLY_TIMEOUT_S = 30.0  # a heartbeat or results reply later than this: the stream is broken
STOP_TIMEOUT_S = 5.0


class StreamClosed(ConnectionError):
    """The Work stream is not open (or broke while a reply was awaited)."""


class WorkStream:
    """One worker's Work stream.

    Args:
        open_call: Starts a ``Work`` call with the given request iterator.
        hello: The stream's first message.
        on_abort: Called with a job id when the service pushes an abort.
        hand_back: Settles jobs that were pushed but will not run (by whatever route is
            open: this stream, or a unary call).
    """

    def __init__(
        self,
        open_call: Callable[[AsyncIterator[pb.WorkRequest]], Any],
        hello: pb.WorkHello,
        on_abort: Callable[[str], None],
        hand_back: Callable[[list[Outcome]], Any],
    ) -> None:
        self.held: set[str] = set()  # jobs pushed (or renewed) here and not yet settled
        self._open_call = open_call
        self._hello = hello
        self._on_abort = on_abort
        self._hand_back_outcomes = hand_back
        self._buffer: list[Job] = []
        self._arrived = asyncio.Event()
        self._credits_out = 0
        self._requests: asyncio.Queue[pb.WorkRequest | None] | None = None
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._closing = False  # stopped or drained: close once nothing is held
        self._failure: BaseException | None = None

    @property
    def is_open(self) -> bool:
        """Whether the stream can carry heartbeats and results now."""
        return self._call is not None

    async def take(self, max_jobs: int, wait_s: float) -> list[Job]:
        """Up to ``max_jobs`` pushed jobs, waiting up to ``wait_s`` for the first.

        Raises:
            grpc.aio.AioRpcError: The stream could not be opened or broke meanwhile.
        """
        if self._closing and self.is_open:  # let it finish; the next take reopens
            await self._wait_arrival(wait_s)
            return []
        self._open()
        if not self._buffer:
            want = max_jobs - self._credits_out
            if want > 0:
                self._credits_out += want
                self._send(pb.WorkRequest(credit=pb.WorkCredit(credits=want)))
            await self._wait_arrival(wait_s)
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
        jobs, self._buffer = self._buffer[:max_jobs], self._buffer[max_jobs:]
        return jobs

    def wake(self) -> None:
        """Make a pending ``take`` return now."""
        self._arrived.set()

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        """Renew leases on the stream.

        Raises:
            StreamClosed: Not open, or it broke before the reply.
        """
        refs = [pb.LeaseRef(job_id=job_id, lease=lease) for job_id, lease in leases]
        request_id = next(self._ids)
        heartbeat = pb.WorkHeartbeat(request_id=request_id, leases=refs)
        reply = await self._ask(request_id, pb.WorkRequest(heartbeat=heartbeat))
        states: list[LeaseState] = [LEASE_STATE_FROM_PB[s] for s in reply]
        self.forget(job_id for (job_id, _), s in zip(leases, states, strict=True) if s == "lost")
        return states

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Report outcomes on the stream.

        Raises:
            StreamClosed: Not open, or it broke before the reply.
        """
        request_id = next(self._ids)
        results = pb.WorkResults(
            request_id=request_id, outcomes=[outcome_to_pb(o) for o in outcomes]
        )
        settled: list[bool] = list(await self._ask(request_id, pb.WorkRequest(results=results)))
        self.forget(outcome.job_id for outcome in outcomes)
        return settled

    async def stop(self) -> None:
        """Take no more jobs: void the credits, hand back what was pushed but not taken;
        the stream closes once the worker holds nothing pushed on it."""
        if self.is_open and not self._closing:
            self._closing = True
            request_id = -1
            with contextlib.suppress(StreamClosed, TimeoutError):
                await self._ask(request_id, pb.WorkRequest(stop=pb.WorkStop()), STOP_TIMEOUT_S)
        await self._give_back()

    async def close(self) -> None:
        """Hand back what was pushed but not taken, then end the stream."""
        with contextlib.suppress(Exception):
            await self.stop()
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _open(self) -> None:
        if self._call is not None:
            return
        self._failure = None
        self._requests = asyncio.Queue()
        self._requests.put_nowait(pb.WorkRequest(hello=self._hello))
        self._call = self._open_call(_drain_queue(self._requests))
        self._credits_out = 0
        self._closing = False
        self._reader = asyncio.create_task(self._read(self._call), name="jobwire-grpc-work")

    def _send(self, request: pb.WorkRequest) -> None:
        if self._requests is None or self._call is None:
            raise StreamClosed("the Work stream is not open")
        self._requests.put_nowait(request)

    async def _ask(self, request_id: int, request: pb.WorkRequest, timeout_s: float = 0) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self._send(request)
            async with asyncio.timeout(timeout_s or REPLY_TIMEOUT_S):
                return await future
        finally:
            self._pending.pop(request_id, None)

    async def _wait_arrival(self, wait_s: float) -> None:
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._arrived.wait()

    async def _read(self, call: Any) -> None:
        failure: BaseException | None = None
        try:
            async for response in call:
                self._dispatch(response)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                failure = exc
                logger.warning("Work stream ended: %s %s", exc.code().name, exc.details())
        except asyncio.CancelledError:
            pass
        finally:
            self._ended(failure)

    def _dispatch(self, response: pb.WorkResponse) -> None:
        kind = response.WhichOneof("kind")
        if kind == "jobs":
            jobs = [job_from_pb(message) for message in response.jobs.jobs]
            self.held.update(job.id for job in jobs)
            self._buffer += jobs
            self._credits_out = max(self._credits_out - len(jobs), 0)
            self._arrived.set()
        elif kind == "heartbeat":
            self._answer(response.heartbeat.request_id, list(response.heartbeat.states))
        elif kind == "results":
            self._answer(response.results.request_id, list(response.results.settled))
        elif kind == "abort":
            self._on_abort(response.abort.job_id)
        elif kind == "stopped":
            self._credits_out = 0
            self._answer(-1, None)
        elif kind == "drain":
            logger.info("the service is stopping: handing back unstarted jobs")
            self._closing = True
            self._credits_out = 0
            asyncio.create_task(self._give_back())  # noqa: RUF006 - it finishes on its own

    def _answer(self, request_id: int, value: Any) -> None:
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(value)

    async def _give_back(self) -> None:
        jobs, self._buffer = self._buffer, []
        if jobs:
            await self._hand_back_outcomes([Outcome.handed_back(job) for job in jobs])
        self._close_if_idle()

    def forget(self, job_ids: Any) -> None:
        """These jobs were settled (or lost): the stream no longer carries them."""
        self.held.difference_update(job_ids)
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self._closing and not self.held and self._requests is not None:
            self._requests.put_nowait(None)  # half-close: the service ends the stream

    def _ended(self, failure: BaseException | None) -> None:
        self._call = None
        self._requests = None
        self._credits_out = 0
        self._failure = failure
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StreamClosed("the Work stream ended"))
        self._arrived.set()


async def _drain_queue(requests: "asyncio.Queue[pb.WorkRequest | None]") -> AsyncIterator[Any]:
    while (request := await requests.get()) is not None:
        yield request


def hello_for(
    queue: str, worker_id: str, lease_s: float, functions: list[str], details: dict[str, Any]
) -> pb.WorkHello:
    """The first message of a worker's stream."""
    return pb.WorkHello(
        queue=queue,
        worker_id=worker_id,
        lease_s=lease_s,
        functions=functions,
        info_json=dumps(details),
    )
