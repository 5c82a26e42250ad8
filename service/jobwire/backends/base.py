"""The backend contract: the storage primitives every queue store provides.

``Queue`` owns validation, defaults and the retry policy; a backend only stores jobs and
moves them between statuses atomically. Redis, PostgreSQL, SQLite and the network
clients each implement this class, and the conformance suite holds them to it.
"""

import abc
import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import typing
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, FINISHED, ErrorInfo, Job, Status

LeaseState = Literal["active", "aborting", "lost"]
_OUTCOME_STATUSES = frozenset({Status.COMPLETE, Status.FAILED, Status.ABORTED, Status.QUEUED})
logger = logging.getLogger("jobwire.backend")


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, as reported by its worker (or by the sweeper).

    Attributes:
        job_id: The job.
        lease: The attempt's lease token; a stale token settles nothing.
        status: ``COMPLETE``, ``FAILED``, ``ABORTED``, or ``QUEUED`` to run it again.
            ``QUEUED`` without an ``error`` hands the job back unstarted (see
            ``handed_back``): the store gives the attempt back.
        result: The return value, for ``COMPLETE``.
        error: What went wrong, for ``FAILED``/``ABORTED`` (kept on a retry too).
        delay_s: With ``QUEUED``: seconds before the job may run again.
        only_if_expired: Settle only if the lease has expired (the sweeper's guard
            against a worker that renewed in the meantime).
    """

    job_id: str
    lease: str
    status: Status
    result: Any = None
    error: ErrorInfo | None = None
    delay_s: float = 0.0
    only_if_expired: bool = False
    run_s: float | None = None
    function: str = ""  # for metrics labels at a network edge

    def __post_init__(self) -> None:
        if self.status not in _OUTCOME_STATUSES:
            raise ValueError(
                f"an attempt ends complete, failed, aborted or queued, not {self.status}"
            )

    @classmethod
    def handed_back(cls, job: Job) -> "Outcome":
        """Queue again a job leased but never started (its attempt is not counted)."""
        return cls(job.id, job.lease or "", Status.QUEUED)

    @classmethod
    def for_failure(
        cls, job: Job, error: ErrorInfo, *, retryable: bool = True, **extra: Any
    ) -> "Outcome":
        """The retry policy: run the job again if retries are left, else fail it."""
        assert job.lease is not None, "only a leased job can fail"
        if retryable and job.can_retry():
            return cls(
                job.id, job.lease, Status.QUEUED, error=error, delay_s=job.retry_delay_s(), **extra
            )
        return cls(job.id, job.lease, Status.FAILED, error=error, **extra)


STORE_TIMEOUT_ENV = "JOBWIRE_STORE_TIMEOUT_S"
DEFAULT_STORE_TIMEOUT_S = 5.0


def store_timeout_s() -> float:
    """The deadline of one store call: ``$JOBWIRE_STORE_TIMEOUT_S`` or 5 s.

    Raises:
        ValueError: The variable is not a positive number.
    """
    text = os.environ.get(STORE_TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_STORE_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise ValueError(f"{STORE_TIMEOUT_ENV} must be a number of seconds in (0, 3600)")
    return value


class Backend(abc.ABC):
    """Storage for one named queue.

    Attributes:
        sweeps_itself: Expired leases are reclaimed by whoever owns the store (the
            service, for the network clients): workers need not sweep.
        call_timeout_s: Deadline of one store call (``Queue`` enforces it; a stalled
            store is ``Unavailable``); ``None`` for clients of the service, whose own
            requests carry deadlines. ``$JOBWIRE_STORE_TIMEOUT_S`` sets it (default 5).

    Args:
        queue_name: The queue this backend stores.
        lease_s: Default lease length for jobs with ``heartbeat == 0``.
    """

    sweeps_itself = False
    call_timeout_s: float | None = None
    detach_on_timeout = False  # True: a call past its deadline is left to cancel on its own

    def __init__(self, queue_name: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.queue_name = queue_name
        self.lease_s = lease_s
        if not self.sweeps_itself:
            self.call_timeout_s = store_timeout_s()

    @abc.abstractmethod
    def for_queue(self, queue_name: str) -> "Backend":
        """A backend for another queue on the same store, sharing this one's connections.

        The sibling does not own the shared connections: closing it releases only what
        is its own; closing this backend closes the shared ones.
        """

    async def connect(self) -> None:  # noqa: B027 - optional hook
        """Open connections; called lazily before first use."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """Store new jobs atomically each, in one round trip.

        A job whose id exists already, or whose key belongs to a live job, is not
        created: its pair holds the existing job and ``False``.
        """

    @abc.abstractmethod
    async def get(self, job_id: str) -> Job | None:
        """The job with that id, or ``None``."""

    @abc.abstractmethod
    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        """Up to ``limit`` jobs, optionally of one status."""

    @abc.abstractmethod
    async def counts(self) -> dict[Status, int]:
        """Number of jobs in each status."""

    @abc.abstractmethod
    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        """Abort a queued/scheduled job at once; mark an active one ``ABORTING``."""

    @abc.abstractmethod
    async def retry(self, job_id: str) -> Job | None:
        """Queue a finished job again; ``None`` if there is no such job.

        Raises:
            InvalidJobState: The job is still live, or its dedup key is taken.
        """

    @abc.abstractmethod
    async def lease(self, worker_id: str, max_jobs: int) -> tuple[list[Job], float | None]:
        """Atomically take up to ``max_jobs`` due jobs and mark them active.

        Nothing is leased while the queue is paused. The queue's ``QueueSettings`` hold
        in the same atomic step: a job a limit holds back stays queued and later jobs
        that no limit holds back are leased past it (scanning a bounded window of the
        queue's head).

        Returns:
            The leased jobs (each with a fresh ``lease`` token) and the seconds until
            more may be leased: the next scheduled job is due, or a rate window admits
            the next job (``None`` when neither is known: wait for a wake-up).
        """

    async def settings(self) -> QueueSettings:
        """The queue's stored limits (no limits if none were stored)."""
        return QueueSettings()

    async def put_settings(self, settings: QueueSettings) -> None:
        """Store the queue's limits (replacing the previous ones); workers leasing
        after this call see them. Relaxed limits wake waiting leases."""
        raise NotImplementedError(f"{type(self).__name__} keeps no queue settings")

    async def is_paused(self) -> bool:
        """Whether the queue is paused."""
        return False

    async def set_paused(self, paused: bool) -> None:
        """Pause (no job is leased; running ones finish; enqueue still works) or resume
        the queue; resuming wakes waiting leases in every process."""
        raise NotImplementedError(f"{type(self).__name__} cannot pause")

    async def bulk(
        self, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
    ) -> tuple[int, str | None]:
        """Apply ``action`` to the next jobs matching ``where``, visiting at most ``limit``
        jobs in one short store call (one transaction or script).

        Jobs are visited in a stable order from ``cursor`` (``None``: the start), so a
        whole pass visits each job present throughout once. Jobs the action does not
        apply to (retrying a live job, aborting a finished one) are skipped.

        Returns:
            How many jobs changed, and the cursor to go on from (``None``: done).
        """
        raise NotImplementedError(f"{type(self).__name__} has no bulk operations")

    async def lease_or_wait(
        self, worker_id: str, max_jobs: int, wait_s: float, stop: asyncio.Event | None = None
    ) -> tuple[list[Job], float | None]:
        """``lease``, but when nothing is due keep waiting for work up to ``wait_s``.

        Returns early, empty-handed, once ``stop`` is set (that waiter alone). Network
        clients override this to hold the wait on the server (a long poll).
        """
        deadline = time.monotonic() + wait_s
        while True:
            jobs, next_due_s = await self.lease(worker_id, max_jobs)
            left_s = deadline - time.monotonic()
            if jobs or left_s <= 0 or (stop is not None and stop.is_set()):
                return jobs, next_due_s
            timeout_s = left_s if next_due_s is None else min(left_s, next_due_s)
            await first_of(self.wait_for_work(timeout_s), stop)

    async def sweep(self, limit: int) -> int:
        """Reclaim up to ``limit`` jobs whose lease expired; return how many."""
        outcomes = [_reclaim(job, self.lease_s) for job in await self.expired(limit)]
        settled = await self.settle(outcomes)
        for outcome, done in zip(outcomes, settled, strict=True):
            if done:
                logger.warning("job %s lease expired: now %s", outcome.job_id, outcome.status)
        return sum(settled)

    async def watch(self, job_id: str) -> AsyncGenerator[Job | None, None]:
        """Yield the job now and after each change until it is finished (``None``: gone)."""
        async with self.job_changes(job_id) as changed:
            while True:
                job = await self.get(job_id)
                yield job
                if job is None or job.finished:
                    return
                await changed.wait()
                changed.clear()

    def job_changes(self, job_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        """An event set whenever the job may have changed, listening before it is yielded.

        This default sets it every half second; backends with change events override it.
        """
        return _ticking(0.5)

    async def throughput(self, window_s: float) -> float:
        """Jobs finished per second over the last ``window_s`` seconds.

        This default counts finished jobs still readable (so ``ttl=-1`` jobs are missed);
        backends that keep counters override it.
        """
        cutoff = time.time() - window_s
        finished = 0
        for status in FINISHED:
            finished += sum(j.completed >= cutoff for j in await self.list_jobs(status, 10_000))
        return finished / window_s

    @abc.abstractmethod
    async def queues(self) -> list[str]:
        """Names of the queues this store holds jobs for (sorted)."""

    async def find_job(self, job_id: str) -> Job | None:
        """The job with that id in any queue of this store (first match by queue name)."""
        for name in await self.queues():
            sibling = self.for_queue(name)
            try:
                job = await sibling.get(job_id)
            finally:
                await sibling.close()
            if job is not None:
                return job
        return None

    @abc.abstractmethod
    async def delete(self, job_id: str) -> bool:
        """Remove a job whatever its status; ``False`` if there was none."""

    @abc.abstractmethod
    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        """Extend the leases of ``(job_id, lease)`` pairs and report each job's state."""

    @abc.abstractmethod
    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        """Store progress/meta of a running attempt; ``False`` if the lease is stale."""

    @abc.abstractmethod
    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record how attempts ended; ``False`` for each stale lease (nothing changed)."""

    @abc.abstractmethod
    async def expired(self, limit: int) -> list[Job]:
        """Active/aborting jobs whose lease has expired (and drop finished jobs past ttl)."""

    @abc.abstractmethod
    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when new work may be available, or after ``timeout_s``."""

    def wake_local(self) -> None:  # noqa: B027 - backends with local waiters override it
        """Make a pending (or the next) ``wait_for_work`` in this process return now."""

    async def wait_finished(self, job_id: str, timeout_s: float | None) -> Job | None:
        """Wait, event-driven, until the job is finished; return it (``None`` if missing).

        Raises:
            TimeoutError: ``timeout_s`` ran out first.
        """
        state = "unfinished"
        try:
            async with asyncio.timeout(timeout_s), contextlib.aclosing(self.watch(job_id)) as jobs:
                async for job in jobs:
                    if job is None or job.finished:
                        return job
                    state = job.status
        except TimeoutError:  # asyncio's has no message: say which job and how long
            raise TimeoutError(f"job {job_id} still {state} after {timeout_s} s") from None
        return None

    @abc.abstractmethod
    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """Record that a worker is alive, with a little about it."""

    @abc.abstractmethod
    async def workers(self) -> list[dict[str, Any]]:
        """Workers seen recently (each with ``id`` and ``seen``)."""

    async def on_abort(self, callback: Callable[[str], None]) -> None:  # noqa: B027
        """Call ``callback(job_id)`` whenever an active job of this queue is aborted, by
        any process on the store, ahead of its worker's next ``renew``.

        The store pushes these (Redis pub/sub, PostgreSQL NOTIFY, a counter SQLite
        processes watch); one missed while that feed reconnects still reaches the worker
        at its next renew. A backend without such a feed never calls it (the default).
        """

    def off_abort(self, callback: Callable[[str], None]) -> None:  # noqa: B027
        """Stop calling ``callback`` (given to ``on_abort``)."""


@typing.runtime_checkable
class PushesJobs(typing.Protocol):
    """A backend that holds jobs pushed for a worker ahead of its ``lease_or_wait`` (the
    gRPC ``Work`` stream)."""

    async def stop_leasing(self, worker_id: str) -> None:
        """``worker_id`` takes no more jobs: hand back those pushed for it but not yet
        handed out."""


def _reclaim(job: Job, default_lease_s: float) -> Outcome:
    """How a job whose worker went silent ends: aborted, retried, or failed."""
    assert job.lease is not None
    if job.status == Status.ABORTING:
        return Outcome(job.id, job.lease, Status.ABORTED, only_if_expired=True)
    silent_s = job.lease_s(default_lease_s)
    error = ErrorInfo("LeaseExpired", f"worker {job.worker} went silent for over {silent_s:g} s")
    return Outcome.for_failure(job, error, only_if_expired=True)


async def first_of(work: Awaitable[None], stop: asyncio.Event | None) -> None:
    """Await ``work``, or until ``stop`` is set, whichever comes first."""
    if stop is None:
        await work
        return
    waiting, stopped = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        stopped.cancel()


@contextlib.asynccontextmanager
async def _ticking(period_s: float) -> AsyncIterator[asyncio.Event]:
    """An event set every ``period_s`` seconds while the context is open."""
    changed = asyncio.Event()

    async def tick() -> None:
        while True:
            await asyncio.sleep(period_s)
            changed.set()

    ticker = asyncio.create_task(tick())
    try:
        yield changed
    finally:
        ticker.cancel()
