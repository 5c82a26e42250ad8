"""The server side of the ``Work`` stream: one ``WorkSession`` per connected worker.

A session pushes jobs while the worker has credits, using the core's waiting lease (woken
by the store's new-work events, ended early when the credits are voided), answers
heartbeats and results through the core, and pushes an abort the moment a job it holds
is aborted through any replica of the service (the store tells each replica). The
``WorkHub`` knows every session and which holds which job; on shutdown it drains them all.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from typing import Any

from jobwire.backends.base import Outcome
from jobwire.errors import InvalidRequest
from jobwire.job import Job, Status
from jobwire.server.core import TOUCH_EVERY_S, LeaseRef, ServiceCore, WorkerInfo
from jobwire.server.schemas import LeaseRequest, OutcomeBody, WorkerDetails
from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1.codec import LEASE_STATE_TO_PB, job_to_pb, loads, outcome_fields

logger = logging.getLogger("jobwire.server.grpc")
PUSH_WAIT_S = 10.0  # one waiting lease; new work (or voided credits) ends it sooner
MAX_PUSH = 1000  # jobs in one push
MAX_CREDITS = 10_000  # credits a worker may hold
STORE_RETRY_S = 1.0  # pause after the store failed a lease
CLOSE_TIMEOUT_S = 5.0  # how long a closing session waits for its store calls


class WorkHub:
    """Every Work session of this process, and which session holds which job.

    Args:
        core: The service's operations; the aborts it hears of are pushed to the holding
            session.
    """

    def __init__(self, core: ServiceCore) -> None:
        self.sessions: set[WorkSession] = set()
        self._core = core
        self._holders: dict[str, WorkSession] = {}
        self._hearing: set[str] = set()  # queues whose aborts this process hears of

    async def hear_aborts(self, queue: str) -> None:
        """Hear of the queue's aborts from the store (once per queue). If the store is down
        now, its workers hear at their next renew, and the next session asks again."""
        if queue in self._hearing:
            return
        self._hearing.add(queue)
        try:
            await self._core.on_abort(queue, self._aborted)
        except Exception as exc:
            self._hearing.discard(queue)
            logger.warning("cannot hear of aborts on queue %s yet: %s", queue, exc)

    def hold(self, session: "WorkSession", job_ids: Iterable[str]) -> None:
        """Record that ``session``'s worker runs these jobs."""
        for job_id in job_ids:
            self._holders[job_id] = session

    def release(self, session: "WorkSession", job_ids: Iterable[str]) -> None:
        """Forget these jobs (settled, lost) if ``session`` holds them."""
        for job_id in job_ids:
            if self._holders.get(job_id) is session:
                del self._holders[job_id]

    def remove(self, session: "WorkSession") -> None:
        """Forget a session that ended, and the jobs it held."""
        self.sessions.discard(session)
        self.release(session, [i for i, s in self._holders.items() if s is session])

    def drain(self, grace_s: float) -> None:
        """Tell every session the service is stopping (see ``WorkSession.drain``)."""
        for session in list(self.sessions):
            session.drain(grace_s)

    def _aborted(self, job_id: str) -> None:
        session = self._holders.get(job_id)
        if session is not None:
            session.push_abort(job_id)


def lease_refs(refs: Sequence[pb.LeaseRef]) -> list[LeaseRef]:
    """Lease messages as the core's refs (with the progress/meta some carry).

    Raises:
        InvalidRequest: A ref's meta is not a JSON object.
    """
    return [
        LeaseRef(ref.job_id, ref.lease, ref.progress if ref.HasField("progress") else None,
                 _meta(ref))
        for ref in refs
    ]  # fmt: skip


def outcomes_of(messages: Sequence[pb.Outcome]) -> list[Outcome]:
    """Outcome messages as Outcomes, validated by the same schema as REST's.

    Raises:
        pydantic.ValidationError: One is malformed (answered INVALID_ARGUMENT).
    """
    return [OutcomeBody(**outcome_fields(message)).to_outcome() for message in messages]


def _meta(ref: pb.LeaseRef) -> dict[str, Any] | None:
    meta = loads(ref.meta_json)
    if meta is not None and not isinstance(meta, dict):
        raise InvalidRequest(f"meta_json of job {ref.job_id!r} must be a JSON object")
    return meta


class WorkSession:
    """One worker's Work stream.

    Args:
        hub: The process's sessions.
        core: The service's operations.
    """

    def __init__(self, hub: WorkHub, core: ServiceCore) -> None:
        self._hub = hub
        self._core = core
        self._outbox: asyncio.Queue[pb.WorkResponse | None] = asyncio.Queue()
        self._credits = 0
        self._credit_ready = asyncio.Event()
        self._credits_voided = asyncio.Event()  # ends this session's waiting lease
        self._closed = False
        self._draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: Exception | None = None
        self.queue = ""
        self.worker_id = ""
        self._lease_s: float | None = None
        self._info = WorkerInfo()

    async def run(self, requests: AsyncIterator[pb.WorkRequest]) -> AsyncIterator[pb.WorkResponse]:
        """Serve the stream: the responses to send, until the worker closes its side.

        Raises:
            InvalidRequest: The worker broke the protocol (ends the stream).
        """
        await self._hello(await anext(aiter(requests), None))
        await self._hub.hear_aborts(self.queue)
        self._hub.sessions.add(self)
        background = [
            asyncio.create_task(self._read(requests), name="jobwire-grpc-read"),
            asyncio.create_task(self._keep_seen(), name="jobwire-grpc-seen"),
        ]
        pusher = asyncio.create_task(self._push(), name="jobwire-grpc-push")
        try:
            while (message := await self._outbox.get()) is not None:
                yield message
            if self._failure is not None:
                raise self._failure
        finally:
            await self._close(background, pusher)

    def drain(self, grace_s: float) -> None:
        """The service is stopping: push nothing more, ask for unstarted jobs back."""
        self._draining = True
        self._void_credits()
        self._outbox.put_nowait(pb.WorkResponse(drain=pb.WorkDrain(grace_s=grace_s)))

    def push_abort(self, job_id: str) -> None:
        """Tell the worker at once that a job it runs was aborted (with the reason)."""
        self._spawn(self._push_abort(job_id))

    async def _push_abort(self, job_id: str) -> None:
        try:
            job = await self._core.get(job_id, self.queue)
        except Exception:  # gone, or the store is down: the worker hears at its next renew
            return
        if job.status == Status.ABORTING and not self._closed:
            reason = job.error.message if job.error else "aborted"
            self._outbox.put_nowait(
                pb.WorkResponse(abort=pb.WorkAbort(job_id=job_id, reason=reason))
            )

    async def _hello(self, request: pb.WorkRequest | None) -> None:
        if request is None or request.WhichOneof("kind") != "hello":
            raise InvalidRequest("the Work stream starts with hello")
        hello = request.hello
        if not 1 <= len(hello.worker_id) <= 200 or "\x00" in hello.worker_id:
            raise InvalidRequest("hello.worker_id: 1 to 200 characters, no NUL")
        if not 0 <= hello.lease_s <= 86_400:
            raise InvalidRequest(f"hello.lease_s: 0 to 86400 seconds, got {hello.lease_s}")
        info = loads(hello.info_json, {})
        if not isinstance(info, dict):
            raise InvalidRequest("hello.info_json must be a JSON object")
        self._core.registry.get(hello.queue)  # the name is valid
        self.queue, self.worker_id = hello.queue, hello.worker_id
        self._lease_s = hello.lease_s or None
        known = {name: info[name] for name in WorkerDetails.model_fields if name in info}
        self._info = WorkerInfo(hello.functions, "grpc-stream", WorkerDetails(**known))
        await self._touch()

    async def _read(self, requests: AsyncIterator[pb.WorkRequest]) -> None:
        try:
            async for request in requests:
                self._handle(request)
            if self._tasks:  # the worker closed its side: finish what it asked for
                await asyncio.wait(list(self._tasks))
        except Exception as exc:
            self._failure = exc
        self._outbox.put_nowait(None)

    def _handle(self, request: pb.WorkRequest) -> None:
        kind = request.WhichOneof("kind")
        if kind == "credit":
            self._grant(request.credit.credits)
        elif kind == "heartbeat":
            self._spawn(self._heartbeat(request.heartbeat))
        elif kind == "results":
            self._spawn(self._results(request.results))
        elif kind == "stop":
            self._void_credits()
            self._outbox.put_nowait(pb.WorkResponse(stopped=pb.WorkStopped()))
        else:
            raise InvalidRequest(f"unexpected {kind or 'empty'} message on the Work stream")

    def _grant(self, credits: int) -> None:
        if not 0 <= credits <= MAX_CREDITS:
            raise InvalidRequest(f"credit.credits: 0 to {MAX_CREDITS}, got {credits}")
        if self._draining or self._closed:
            return
        self._credits = min(self._credits + credits, MAX_CREDITS)
        if self._credits > 0:
            self._credit_ready.set()

    def _void_credits(self) -> None:
        self._credits = 0
        self._credit_ready.clear()
        self._credits_voided.set()  # end this session's waiting lease now

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
            self._outbox.put_nowait(None)

    async def _heartbeat(self, heartbeat: pb.WorkHeartbeat) -> None:
        refs = lease_refs(heartbeat.leases)
        states = await self._core.renew(self.queue, refs, self._lease_s)
        pairs = [(ref.job_id, state) for ref, state in zip(refs, states, strict=True)]
        self._hub.hold(self, [job_id for job_id, state in pairs if state != "lost"])
        self._hub.release(self, [job_id for job_id, state in pairs if state == "lost"])
        reply = pb.WorkHeartbeatReply(
            request_id=heartbeat.request_id, states=[LEASE_STATE_TO_PB[s] for s in states]
        )
        self._outbox.put_nowait(pb.WorkResponse(heartbeat=reply))

    async def _results(self, results: pb.WorkResults) -> None:
        outcomes = outcomes_of(results.outcomes)
        settled = await self._core.settle(self.queue, outcomes)
        self._hub.release(self, [outcome.job_id for outcome in outcomes])
        reply = pb.WorkResultsReply(request_id=results.request_id, settled=settled)
        self._outbox.put_nowait(pb.WorkResponse(results=reply))

    async def _push(self) -> None:
        """Lease and push jobs while there are credits (the waiting lease sleeps until
        new work arrives, or a stop interrupts it)."""
        while not self._closed:
            self._credits_voided.clear()  # before the credit check: a void from here on counts
            if self._credits <= 0:
                self._credit_ready.clear()
                await self._credit_ready.wait()
                continue
            request = LeaseRequest(
                worker_id=self.worker_id,
                max=min(self._credits, MAX_PUSH),
                wait=PUSH_WAIT_S,
                lease_s=self._lease_s,
            )
            try:
                jobs, _ = await self._core.lease(
                    self.queue, request, self._info, stop=self._credits_voided
                )
            except Exception:
                logger.exception("leasing for worker %s failed", self.worker_id)
                await asyncio.sleep(STORE_RETRY_S)
                continue
            if jobs:
                await self._deliver(jobs)

    async def _deliver(self, jobs: list[Job]) -> None:
        """Push as many as there are credits; hand the rest back (credits were voided
        while the lease was under way)."""
        count = max(min(self._credits, len(jobs)), 0)
        pushed, surplus = jobs[:count], jobs[count:]
        if pushed:
            self._credits -= count
            self._hub.hold(self, [job.id for job in pushed])
            messages = [job_to_pb(job, with_lease=True) for job in pushed]
            self._outbox.put_nowait(pb.WorkResponse(jobs=pb.WorkJobs(jobs=messages)))
        if surplus:
            await self._core.hand_back(self.queue, surplus)

    async def _keep_seen(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_EVERY_S)
            try:
                await self._touch()
            except Exception:
                logger.warning("could not record worker %s as seen", self.worker_id)

    async def _touch(self) -> None:
        await self._core.touch_worker(self.queue, self.worker_id, self._info)

    async def _close(
        self, background: list[asyncio.Task[None]], pusher: asyncio.Task[None]
    ) -> None:
        """End the session: stop pushing (jobs leased meanwhile go back), let store
        calls under way finish (bounded), forget the session."""
        self._closed = True
        self._void_credits()
        self._credit_ready.set()  # let an idle pusher see the end
        for task in background:
            task.cancel()
        pending = [pusher, *self._tasks]
        _, stuck = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
        for task in stuck:
            task.cancel()
        self._hub.remove(self)
