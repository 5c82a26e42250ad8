"""The service core: every operation the service offers, written once.

REST routes (``server/rest``) and gRPC methods (``server/grpc``) only translate requests,
answers and errors to and from these calls; neither knows the other. The core owns what
is the same whatever the transport: validation beyond a request's shape, waits that end
when the service stops, abort notifications, the one "worker seen" throttle, and the
metrics every operation records.
"""

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from jobwire.backends.base import LeaseState, Outcome
from jobwire.errors import InvalidRequest, JobNotFound, StaleLease
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import JOB_ID_PATTERN, ErrorInfo, Job, Status, check_json
from jobwire.queue import Queue
from jobwire.server.errors import backend_unreachable
from jobwire.server.group_commit import GroupCommit
from jobwire.server.metrics import Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.server.schemas import LEASE_CHARS, EnqueueRequest, LeaseRequest, WorkerDetails

logger = logging.getLogger("jobwire.server")
MAX_PAGE = 1000  # jobs in one page, one batch, one lease
MAX_REASON = 10_000  # characters of an abort reason
MAX_REFS = 10_000  # leases in one renewal, outcomes in one report
FILTER_SCAN_LIMIT = 10_000  # jobs scanned when filtering a listing by function or key
TOUCH_EVERY_S = 5.0  # record a worker as seen at most this often
CURSOR_DIGITS = 7
_JOB_ID = re.compile(JOB_ID_PATTERN)


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseRef:
    """A lease a worker renews, with the progress/meta it reports on the way."""

    job_id: str
    lease: str
    progress: float | None = None
    meta: dict[str, Any] | None = None


def check_lease(job_id: str, lease: str) -> None:
    """Check a job id and lease token a worker sends back, before any store sees them.

    An empty lease is left to the store (it owns nothing: a stale lease).

    Raises:
        InvalidRequest: The id is not a job id, or the token is too long or holds NUL.
    """
    if not _JOB_ID.match(job_id):
        raise InvalidRequest(f"job_id must match {JOB_ID_PATTERN}, got {job_id!r}")
    if len(lease) > LEASE_CHARS or "\x00" in lease:
        raise InvalidRequest(f"lease: at most {LEASE_CHARS} characters, no NUL, got {lease!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker says of itself when it leases; one shape whatever the transport.

    Attributes:
        functions: The functions it runs.
        transport: How it reaches the service: ``http``, ``grpc`` or ``grpc-stream``.
        details: Its concurrency, running jobs, host and pid, when it says them.
    """

    functions: Sequence[str] = ()
    transport: str = ""
    details: WorkerDetails | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record kept in the store (``info``'s workers list shows it, with ``id``
        and ``seen``): the same fields as an SDK worker's straight on a store."""
        details = self.details or WorkerDetails()
        return {"functions": list(self.functions), **details.model_dump(),
                "transport": self.transport}  # fmt: skip


class ServiceCore:
    """The operations of one service process over its queues.

    Args:
        registry: The queues, on one store.
        metrics: Where operations are counted.
        max_wait_s: Longest wait any call may hold (long polls, waiting leases).
    """

    def __init__(self, registry: QueueRegistry, metrics: Metrics, *, max_wait_s: float) -> None:
        self.registry = registry
        self.metrics = metrics
        self.max_wait_s = max_wait_s
        self.stopping = asyncio.Event()  # set when the service starts shutting down
        self._seen: dict[tuple[str, str], float] = {}
        self._writers: dict[str, GroupCommit[Job, tuple[Job, bool]]] = {}

    # Clients: enqueue, read, wait, watch, control.

    async def enqueue(
        self, queue: str, requests: Sequence[EnqueueRequest]
    ) -> list[tuple[Job, bool]]:
        """Store jobs in one round trip; each comes back with ``True`` if it was created
        (``False``: the live job holding its id or key).

        Raises:
            InvalidRequest: No jobs, or more than a batch holds.
        """
        if not 1 <= len(requests) <= MAX_PAGE:
            raise InvalidRequest(f"jobs: 1 to {MAX_PAGE} per batch, got {len(requests)}")
        jobs = [request.to_job(queue) for request in requests]
        for job in jobs:
            job.validate()  # here, so that one bad job cannot fail the others of its batch
        pairs = await self._writer(queue).submit(jobs)
        for job, created in pairs:
            if created:
                self.metrics.enqueued.labels(queue, job.function).inc()
        return pairs

    async def apply(
        self, queue: str, request: EnqueueRequest, wait_s: float | None
    ) -> tuple[Job, bool]:
        """Enqueue and wait (up to ``wait_s``) until the job ends.

        Returns:
            The job (finished, or as it is when the wait ended) and whether it was created.
        """
        [(job, created)] = await self.enqueue(queue, [request])
        return await self.wait(self.registry.get(queue), job, wait_s), created

    async def get(self, job_id: str, queue: str | None, wait_s: float | None = 0.0) -> Job:
        """The job; with ``wait_s`` (``None``: as long as allowed), once it is finished or
        when the wait ends.

        Raises:
            JobNotFound: No such job.
        """
        owner, job = await self.registry.find(job_id, queue)
        if (wait_s is not None and wait_s <= 0) or job.finished:
            return job
        return await self.wait(owner, job, wait_s)

    async def wait(self, owner: Queue, job: Job, wait_s: float | None) -> Job:
        """The job once finished, or as it is when the wait runs out or the service stops.

        Raises:
            JobNotFound: The job was deleted meanwhile.
        """
        budget = self.max_wait_s if wait_s is None else min(wait_s, self.max_wait_s)
        waiting = asyncio.ensure_future(owner.wait(job, timeout=budget))
        stopping = asyncio.ensure_future(self.stopping.wait())
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

    async def watch(self, job_id: str, queue: str | None) -> AsyncIterator[Job | None]:
        """The job now and at each change until it is finished; ``None`` if it is deleted.

        Raises:
            JobNotFound: No such job.
        """
        owner, _ = await self.registry.find(job_id, queue)
        last: Job | None = None
        async for job in owner.watch(job_id):
            if job is None or job != last:  # a store may wake watchers without a change
                yield job
            last = job

    async def list_jobs(
        self,
        queue: str,
        *,
        status: Status | None = None,
        function: str | None = None,
        key_prefix: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Job], str | None]:
        """A page of jobs and the cursor of the next page (``None``: this was the last).

        The cursor is an offset: pages are read from the start of the status index, so
        deep pages cost more. With ``function`` or ``key_prefix`` (of the dedup key), the
        first ``FILTER_SCAN_LIMIT`` jobs of the index are scanned.

        Raises:
            InvalidRequest: A limit or filter out of range, or a cursor this service did
                not give out.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit: 1 to {MAX_PAGE}, got {limit}")
        if cursor and not (cursor.isdigit() and len(cursor) <= CURSOR_DIGITS):
            raise InvalidRequest(f"cursor: not one this service gave out: {cursor!r}")
        where = JobFilter(function=function or None, key_prefix=key_prefix or None)
        _check_filter(where)
        filtered = where != JobFilter()
        offset = int(cursor or 0)
        window = FILTER_SCAN_LIMIT if filtered else offset + limit + 1
        jobs = await self.registry.get(queue).jobs(status, limit=window)
        if filtered:
            jobs = [job for job in jobs if where.matches(job)]
        more = len(jobs) > offset + limit
        return jobs[offset : offset + limit], str(offset + limit) if more else None

    async def abort(self, job_id: str, queue: str | None, reason: str) -> Job:
        """Abort: a queued job at once, an active one when its worker next hears (the
        store tells every replica at once: see ``on_abort``).

        Raises:
            JobNotFound: No such job.
            InvalidRequest: The reason is too long.
        """
        if len(reason) > MAX_REASON:
            raise InvalidRequest(f"reason: at most {MAX_REASON} characters")
        owner, _ = await self.registry.find(job_id, queue)
        return await owner.abort(job_id, error=reason or "aborted")

    def _writer(self, queue: str) -> GroupCommit[Job, tuple[Job, bool]]:
        """The queue's group commit: enqueues that arrive together are stored together."""
        writer = self._writers.get(queue)
        if writer is None:
            owner = self.registry.get(queue)

            async def put(jobs: list[Job]) -> list[tuple[Job, bool]]:
                pairs = await owner.put(jobs)
                owner.wake_local()  # this process's waiting leases, ahead of the store
                return pairs

            writer = self._writers[queue] = GroupCommit(put)
        return writer

    async def on_abort(self, queue: str, listener: Callable[[str], None]) -> None:
        """Call ``listener(job_id)`` whenever an active job of ``queue`` is aborted,
        through any replica of the service (the store pushes it), single or bulk."""
        await self.registry.get(queue).on_abort(listener)

    async def retry(self, job_id: str, queue: str | None) -> Job:
        """Queue a finished job again.

        Raises:
            JobNotFound: No such job.
            InvalidJobState: It is still live.
        """
        owner, _ = await self.registry.find(job_id, queue)
        return await owner.retry(job_id)

    async def delete(self, job_id: str, queue: str | None) -> None:
        """Delete a job whatever its status.

        Raises:
            JobNotFound: No such job.
        """
        owner, _ = await self.registry.find(job_id, queue)
        await owner.delete(job_id)

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue with its counts per status (one store call per queue)."""
        names = await self.registry.names()
        counts = await asyncio.gather(*(self.registry.get(name).counts() for name in names))
        return [
            {"name": name, "counts": {status.value: n for status, n in per_status.items()}}
            for name, per_status in zip(names, counts, strict=True)
        ]

    async def queue_info(self, queue: str) -> dict[str, Any]:
        """Counts per status, workers seen recently, recent throughput, the pause state
        and the limits."""
        return await self.registry.get(queue).info()

    # Operators: pause, limits, bulk operations.

    async def pause(self, queue: str) -> None:
        """Stop leasing the queue's jobs (stored: every worker, every replica)."""
        await self.registry.get(queue).pause()
        self.metrics.set_paused(queue, True)

    async def resume(self, queue: str) -> None:
        """Lease the queue's jobs again; waiting workers wake at once."""
        owner = self.registry.get(queue)
        await owner.resume()
        owner.wake_local()
        self.metrics.set_paused(queue, False)

    async def settings(self, queue: str) -> tuple[QueueSettings, bool]:
        """The queue's limits and whether it is paused."""
        owner = self.registry.get(queue)
        return await owner.settings(), await owner.paused()

    async def configure(self, queue: str, settings: QueueSettings) -> tuple[QueueSettings, bool]:
        """Replace the queue's limits.

        Returns:
            The limits now stored and whether the queue is paused (as ``settings``).

        Raises:
            InvalidRequest: A limit is out of range.
        """
        try:
            settings.validate()
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(str(exc)) from None
        owner = self.registry.get(queue)
        await owner.configure(settings)
        owner.wake_local()  # relaxed limits may let waiting leases take jobs now
        self.metrics.set_limits(queue, settings)
        return settings, await owner.paused()

    async def bulk(self, queue: str, action: BulkAction, where: JobFilter) -> int:
        """Retry, delete or abort every job of the queue ``where`` matches, in short
        chunks; returns how many changed. Workers of aborted active jobs hear at once
        (see ``on_abort``).

        Raises:
            InvalidRequest: A malformed filter.
        """
        _check_filter(where)
        owner = self.registry.get(queue)
        count = await owner.bulk(action, where)
        if action == BulkAction.RETRY and count:
            owner.wake_local()
        return count

    # Workers: lease, renew, report.

    async def lease(
        self,
        queue: str,
        request: LeaseRequest,
        info: WorkerInfo,
        stop: asyncio.Event | None = None,
    ) -> tuple[list[Job], float | None]:
        """Take up to ``request.max`` jobs, waiting for work up to ``request.wait`` seconds.

        The wait ends early when the service stops (or, given ``stop``, once it is set);
        the worker is recorded as seen, with ``info``.

        Returns:
            The leased jobs (with their lease tokens) and the seconds until the next
            scheduled job (``None``: none).
        """
        owner = self.registry.get(queue, request.lease_s)
        wait_s = 0.0 if self.stopping.is_set() else min(request.wait, self.max_wait_s)
        await self.touch_worker(queue, request.worker_id, info)
        jobs, next_due_s = await owner.lease(
            request.worker_id, request.max, wait_s=wait_s, stop=stop or self.stopping
        )
        for job in jobs:
            self.metrics.leased(job)
        return jobs, next_due_s

    async def touch_worker(self, queue: str, worker_id: str, info: WorkerInfo) -> None:
        """Record that a worker is alive, at most every ``TOUCH_EVERY_S`` per worker."""
        now = time.monotonic()
        if now - self._seen.get((queue, worker_id), -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._seen[(queue, worker_id)] = now
            await self.registry.get(queue).touch_worker(worker_id, info.as_dict())

    async def hand_back(self, queue: str, jobs: Sequence[Job]) -> None:
        """Queue again jobs leased but never handed to a worker (not counted as retries)."""
        back = [Outcome.handed_back(job) for job in jobs]
        await self.registry.get(queue).settle(back)

    async def renew(
        self, queue: str, refs: Sequence[LeaseRef], lease_s: float | None = None
    ) -> list[LeaseState]:
        """Store the progress/meta some leases carry, then renew every lease.

        Returns:
            Each job's state: ``active``, ``aborting`` (stop it) or ``lost``.

        Raises:
            InvalidRequest: Too many leases.
        """
        if len(refs) > MAX_REFS:
            raise InvalidRequest(f"leases: at most {MAX_REFS} at once, got {len(refs)}")
        for ref in refs:
            check_lease(ref.job_id, ref.lease)
            if ref.meta is not None:
                check_json("meta", ref.meta)
        owner = self.registry.get(queue, lease_s)
        for ref in refs:
            if ref.progress is not None or ref.meta is not None:
                await _update(owner, ref)
        return await owner.renew([(ref.job_id, ref.lease) for ref in refs])

    async def heartbeat(self, job_id: str, queue: str | None, ref: LeaseRef) -> LeaseState:
        """Renew one lease (storing its progress/meta); ``aborting`` means stop the task.

        Raises:
            InvalidRequest: The id or lease is malformed.
            StaleLease: The lease no longer owns the job (it may have been deleted).
        """
        check_lease(job_id, ref.lease)
        try:
            owner, _ = await self.registry.find(job_id, queue)
        except JobNotFound:
            raise StaleLease(f"job {job_id}: no such job, so no lease owns it") from None
        [state] = await self.renew(owner.name, [ref])
        if state == "lost":
            raise StaleLease(f"job {job_id}: lease {ref.lease!r} no longer owns it")
        return state

    async def complete(
        self, job_id: str, queue: str | None, lease: str, result: Any, run_s: float | None
    ) -> Job:
        """End an attempt ``complete`` with its result; returns the job after it.

        Raises:
            InvalidRequest: The id or lease is malformed.
            JobNotFound: No such job.
            StaleLease: The lease no longer owns the job.
        """
        check_lease(job_id, lease)
        owner, job = await self.registry.find(job_id, queue)
        outcome = Outcome(job_id, lease, Status.COMPLETE, result=result, run_s=run_s)
        return await self._settle_one(owner, job, outcome)

    async def fail(
        self,
        job_id: str,
        queue: str | None,
        lease: str,
        error: ErrorInfo,
        *,
        retryable: bool = True,
        run_s: float | None = None,
    ) -> Job:
        """End an attempt that failed: retried if ``retryable`` and retries are left, else
        ``failed``; returns the job after it.

        Raises:
            InvalidRequest: The id or lease is malformed.
            JobNotFound: No such job.
            StaleLease: The lease no longer owns the job.
        """
        check_lease(job_id, lease)
        owner, job = await self.registry.find(job_id, queue)
        if not lease or job.lease != lease:
            raise StaleLease(f"job {job_id}: lease {lease!r} no longer owns it")
        outcome = Outcome.for_failure(job, error, retryable=retryable, run_s=run_s)
        return await self._settle_one(owner, job, outcome)

    async def _settle_one(self, owner: Queue, job: Job, outcome: Outcome) -> Job:
        named = dataclasses.replace(outcome, function=job.function)
        [done] = await self.settle(owner.name, [named])
        if not done:
            raise StaleLease(f"job {job.id}: lease {outcome.lease!r} no longer owns it")
        return await owner.job(job.id) or job

    async def settle(self, queue: str, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record how attempts ended; ``False`` where the lease was stale (nothing changed).

        Raises:
            InvalidRequest: Too many outcomes, or one's id or lease is malformed.
        """
        if len(outcomes) > MAX_REFS:
            raise InvalidRequest(f"outcomes: at most {MAX_REFS} at once, got {len(outcomes)}")
        for outcome in outcomes:
            check_lease(outcome.job_id, outcome.lease)
        settled = await self.registry.get(queue).settle(outcomes)
        for outcome, done in zip(outcomes, settled, strict=True):
            if done:
                function = outcome.function or "unknown"
                self.metrics.outcome(queue, function, outcome.status, outcome.run_s)
        return settled

    async def sweep(self, queue: str) -> int:
        """Reclaim the queue's jobs whose lease expired now; returns how many."""
        return await self.registry.get(queue).sweep()

    async def sweep_forever(self, interval_s: float) -> None:
        """Reclaim expired leases of every queue, so that jobs of dead workers come back."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                for name in await self.registry.names():
                    await self.registry.get(name).sweep()
            except backend_unreachable() as exc:
                logger.warning("sweep: store unreachable (%s); retrying in %g s", exc, interval_s)
            except Exception:
                logger.exception("sweep failed; retrying in %g s", interval_s)

    # The process.

    async def ping(self) -> None:
        """One round trip to the store (raises if it is unreachable)."""
        await self.registry.ping()

    async def refresh_metrics(self) -> None:
        """Read queue depths and workers into the metrics, unless read moments ago."""
        if not self.metrics.depth_is_stale():
            return
        for name in await self.registry.names():
            queue = self.registry.get(name)
            self.metrics.set_depth(name, await queue.counts(), len(await queue.workers()))
            self.metrics.set_paused(name, await queue.paused())
            self.metrics.set_limits(name, await queue.settings())


def _check_filter(where: JobFilter) -> None:
    """Raise ``InvalidRequest`` naming the field when ``where`` is malformed."""
    try:
        where.validate()
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(str(exc)) from None


async def _update(owner: Queue, ref: LeaseRef) -> None:
    """Store a lease's progress/meta; a stale lease is left for the renewal to report."""
    job = await owner.job(ref.job_id)
    if job is None:
        return
    job.lease = ref.lease
    with contextlib.suppress(StaleLease):
        await owner.update(job, progress=ref.progress, meta=ref.meta)
