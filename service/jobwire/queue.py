"""``Queue``: the facade applications use to enqueue, inspect and control jobs."""

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from jobwire.backends import backend_from_url
from jobwire.backends.base import Backend, LeaseState, Outcome, PushesJobs, first_of
from jobwire.errors import (
    JobAborted,
    JobFailed,
    JobNotFound,
    JobwireError,
    StaleLease,
    Unavailable,
)
from jobwire.flow import BULK_CHUNK, BulkAction, FunctionLimits, JobFilter, QueueSettings, Rate
from jobwire.job import DEFAULT_LEASE_S, NAME_PATTERN, ErrorInfo, Job, Status, check_json

logger = logging.getLogger("jobwire.queue")
THROUGHPUT_WINDOW_S = 300.0
READ_BACK_S = 1.0  # how long an enqueue that failed looks for its jobs in the store
READ_BACK_EVERY_S = 0.2
T = TypeVar("T")


class Queue:
    """A named queue over one backend, with per-queue job defaults.

    Args:
        backend: Where jobs are stored.
        timeout: Default job timeout in seconds (``None``: no limit).
        retries: Default retries after the first attempt.
        ttl: Default seconds a finished job stays readable.
        limits: Flow-control limits stored with the queue when it connects (``None``:
            leave the stored ones as they are).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        timeout: float | None = None,
        retries: int = 0,
        ttl: int = 600,
        limits: QueueSettings | None = None,
    ) -> None:
        self.backend = backend
        self.defaults = Job("_", timeout=timeout, retries=retries, ttl=ttl)
        self.defaults.validate()
        if limits is not None:
            limits.validate()
        self._limits = limits
        self._connected = False
        self._connect_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        name: str = "default",
        timeout: float | None = None,
        retries: int = 0,
        ttl: int = 600,
        lease_s: float = DEFAULT_LEASE_S,
        max_active: int | None = None,
        max_active_per_key: int | None = None,
        rate: Rate | None = None,
        rate_per_key: Rate | None = None,
        functions: dict[str, FunctionLimits] | None = None,
    ) -> "Queue":
        """Open a queue by URL: ``redis://``/``rediss://`` (a cluster:
        ``redis+cluster://host:port,host:port``), ``postgresql://`` (also
        ``postgres://``, ``postgresql+asyncpg://``), ``sqlite:///path.db``, or a running
        Jobwire service at ``http(s)://[:token@]host:port``.

        Args:
            url: Where the queue lives.
            name: Queue name; queues with different names are independent.
            timeout: Default job timeout in seconds (``None``: no limit).
            retries: Default retries after the first attempt.
            ttl: Default seconds a finished job stays readable.
            lease_s: Default lease: seconds a worker may stay silent before its job is
                reclaimed, for jobs with ``heartbeat == 0``.
            max_active: Jobs of the queue active at once, across every worker.
            max_active_per_key: Jobs active at once per ``concurrency_key``.
            rate: Jobs of the queue started per window, across every worker.
            rate_per_key: Jobs started per window per ``concurrency_key``.
            functions: Limits per function name.

        Given any of the limits, the queue stores them (all of them, replacing the
        stored ones) when it connects; see ``configure``.

        Raises:
            ValueError: Unsupported URL scheme, bad defaults or bad limits.
        """
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise ValueError(f"queue name must match {NAME_PATTERN}, got {name!r}")
        limits = QueueSettings(
            max_active, max_active_per_key, rate, rate_per_key, dict(functions or {})
        )
        backend = backend_from_url(url, name, lease_s=lease_s)
        return cls(
            backend, timeout=timeout, retries=retries, ttl=ttl,
            limits=limits if limits.limited else None,
        )  # fmt: skip

    @property
    def name(self) -> str:
        """The queue's name."""
        return self.backend.queue_name

    @property
    def lease_s(self) -> float:
        """Default lease length in seconds."""
        return self.backend.lease_s

    @property
    def sweeps_itself(self) -> bool:
        """Whether the store's owner reclaims expired leases (workers need not sweep)."""
        return self.backend.sweeps_itself

    def for_queue(self, name: str, *, lease_s: float | None = None) -> "Queue":
        """Another queue on the same store, sharing this one's connections.

        Args:
            name: The other queue's name.
            lease_s: Its default lease (this queue's if ``None``).
        """
        backend = self.backend.for_queue(name)
        backend.lease_s = lease_s or self.lease_s
        return Queue(backend)

    def __repr__(self) -> str:
        return f"Queue(name={self.name!r}, backend={type(self.backend).__name__})"

    async def _call(self, call: Awaitable[T], extra_s: float = 0.0) -> T:
        """Await one store call within the backend's deadline (``call_timeout_s``, plus
        ``extra_s`` for a call that waits on purpose): a stalled store is ``Unavailable``."""
        limit = self.backend.call_timeout_s
        if limit is None:
            return await call
        if self.backend.detach_on_timeout:  # its cleanup after a cancel may stall too
            task = asyncio.ensure_future(call)
            await asyncio.wait((task,), timeout=limit + extra_s)
            if task.done():
                return task.result()
            task.cancel()
            task.add_done_callback(_consume)  # let it finish cancelling in the background
        else:
            try:
                async with asyncio.timeout(limit + extra_s):
                    return await call
            except TimeoutError:
                pass
        raise Unavailable(f"the store did not answer within {limit:g} s")

    async def connect(self) -> None:
        """Connect now (every method also connects on first use)."""
        if self._connected:
            return
        async with self._connect_lock:
            if not self._connected:
                await self._call(self.backend.connect())
                self._connected = True
                if self._limits is not None:
                    await self._call(self.backend.put_settings(self._limits))

    async def close(self) -> None:
        """Close the backend's connections."""
        await self.backend.close()
        self._connected = False

    async def __aenter__(self) -> "Queue":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(
        self,
        job_or_function: Job | str,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        ttl: int | None = None,
        key: str | None = None,
        concurrency_key: str | None = None,
        heartbeat: float | None = None,
        scheduled: float = 0,
        retry_delay: float = 0.0,
        retry_backoff: bool | float = False,
        priority: int = 0,
        **kwargs: Any,
    ) -> Job | None:
        """Add a job.

        Args:
            job_or_function: A function name (with its keyword arguments in ``kwargs``),
                or a ready ``Job``.
            timeout: Seconds before the worker cancels the task (queue default if None).
            retries: Retries after the first attempt (queue default if None).
            ttl: Seconds the finished job stays readable (queue default if None).
            key: Deduplication key.
            concurrency_key: Groups jobs for the per-key limits (a tenant id, say).
            heartbeat: Lease length in seconds (queue default ``lease_s`` if None/0).
            scheduled: Unix time before which the job does not start.
            retry_delay: Seconds before a retry.
            retry_backoff: Double the delay at each retry (a number caps it).
            priority: Higher runs first, -1000..1000.
            **kwargs: The function's keyword arguments (JSON-serializable).

        Returns:
            The job, or ``None`` when ``key`` belongs to a queued/scheduled/active job.

        Raises:
            TypeError: An option or kwarg has the wrong type.
            ValueError: An option is out of range.
        """
        job = self._build(job_or_function, kwargs, dict(
            timeout=timeout, retries=retries, ttl=ttl, key=key, heartbeat=heartbeat,
            concurrency_key=concurrency_key,
            scheduled=scheduled, retry_delay=retry_delay, retry_backoff=retry_backoff,
            priority=priority,
        ))  # fmt: skip
        [(job, created)] = await self.put([job])
        return job if created else None

    async def enqueue_many(self, jobs: Iterable[Job]) -> list[Job | None]:
        """Add many jobs in one round trip.

        Returns:
            In order, each job, or ``None`` where it was a duplicate.
        """
        built = [self._build(job, {}, {}) for job in jobs]
        return [job if created else None for job, created in await self.put(built)]

    async def apply(
        self, job_or_function: Job | str, *, wait_timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """Enqueue a job, wait for it to finish, and return its result.

        Args:
            job_or_function: As for ``enqueue``.
            wait_timeout: Seconds to wait at most (``None``: until it finishes).
            **kwargs: Job options and the function's keyword arguments, as for ``enqueue``.

        Raises:
            JobFailed: The job failed; ``exc.job.error`` says why.
            JobAborted: The job was aborted.
            TimeoutError: ``wait_timeout`` ran out (the job keeps going).
        """
        job = self._build_from_call(job_or_function, kwargs)
        [(job, _)] = await self.put([job])  # a duplicate key waits on the existing job
        done = await self.wait(job, timeout=wait_timeout)
        if done.status == Status.FAILED:
            raise JobFailed(done)
        if done.status == Status.ABORTED:
            raise JobAborted(done)
        return done.result

    async def wait(self, job_or_id: Job | str, *, timeout: float | None = None) -> Job:
        """Wait until a job finishes (woken by the store's events, not by polling).

        Raises:
            JobNotFound: No such job (or it was deleted on finishing: ``ttl=-1``).
            TimeoutError: ``timeout`` seconds ran out first.
        """
        await self.connect()
        job_id = _job_id(job_or_id)
        job = await self.backend.wait_finished(job_id, timeout)
        return self._bind(job, job_id)

    async def job(self, job_id: str) -> Job | None:
        """The job with that id, or ``None``."""
        await self.connect()
        job = await self._call(self.backend.get(job_id))
        return self._bind(job, job_id) if job else None

    async def find(self, job_id: str) -> Job | None:
        """The job with that id in any queue of this store, or ``None``."""
        await self.connect()
        return await self._call(self.backend.find_job(job_id))

    async def watch(self, job_or_id: Job | str) -> AsyncIterator[Job | None]:
        """The job now and after each change until it is finished (``None``: deleted).

        Raises:
            JobNotFound: No such job.
        """
        await self.connect()
        job_id = _job_id(job_or_id)
        async with contextlib.aclosing(self.backend.watch(job_id)) as changes:
            async for job in changes:
                yield self._bind(job, job_id) if job is not None else None

    async def jobs(self, status: Status | str | None = None, limit: int = 100) -> list[Job]:
        """Up to ``limit`` jobs, optionally only those in one status."""
        await self.connect()
        wanted = Status(status) if status is not None else None
        listed = await self._call(self.backend.list_jobs(wanted, limit))
        return [self._bind(job, job.id) for job in listed]

    async def abort(self, job_or_id: Job | str, error: str = "aborted") -> Job:
        """Abort a job: a queued one at once, an active one as soon as its worker hears.

        Args:
            job_or_id: The job.
            error: The reason, stored as ``job.error.message``.

        Raises:
            JobNotFound: No such job.
        """
        await self.connect()
        job_id = _job_id(job_or_id)
        job = await self._call(self.backend.abort(job_id, ErrorInfo("Aborted", error)))
        logger.info("abort requested for job %s: %s", job_id, error)
        return self._bind(job, job_id)

    async def retry(self, job_or_id: Job | str) -> Job:
        """Queue a finished (complete, failed or aborted) job again.

        Raises:
            JobNotFound: No such job.
            InvalidJobState: The job is still queued, scheduled or active.
        """
        await self.connect()
        job_id = _job_id(job_or_id)
        return self._bind(await self._call(self.backend.retry(job_id)), job_id)

    async def delete(self, job_or_id: Job | str) -> None:
        """Delete a job whatever its status (a worker running it loses its lease).

        Raises:
            JobNotFound: No such job.
        """
        await self.connect()
        job_id = _job_id(job_or_id)
        if not await self._call(self.backend.delete(job_id)):
            raise JobNotFound(f"no job {job_id!r} in queue {self.name!r}")

    async def info(self) -> dict[str, Any]:
        """Counts per status, workers seen in the last minute, jobs finished per second
        over the last five minutes (``finished_per_s``), the pause state and the limits."""
        counts = await self.counts()
        return {
            "name": self.name,
            "counts": {status.value: count for status, count in counts.items()},
            "scheduled": counts[Status.SCHEDULED],
            "workers": await self.workers(),
            "finished_per_s": await self._call(self.backend.throughput(THROUGHPUT_WINDOW_S)),
            "paused": await self.paused(),
            "settings": (await self.settings()).to_dict(),
        }

    # Flow control: pause, limits, bulk operations.

    async def pause(self) -> None:
        """Stop leasing this queue's jobs, for every worker (running jobs finish;
        enqueue still works). The state is stored: it outlives this process."""
        await self.connect()
        await self._call(self.backend.set_paused(True))
        logger.info("queue %s paused", self.name)

    async def resume(self) -> None:
        """Lease this queue's jobs again; waiting workers wake at once."""
        await self.connect()
        await self._call(self.backend.set_paused(False))
        logger.info("queue %s resumed", self.name)

    async def paused(self) -> bool:
        """Whether the queue is paused."""
        await self.connect()
        return await self._call(self.backend.is_paused())

    async def settings(self) -> QueueSettings:
        """The queue's stored limits."""
        await self.connect()
        return await self._call(self.backend.settings())

    async def configure(self, settings: QueueSettings) -> None:
        """Store the queue's limits, replacing the stored ones (``QueueSettings()``
        removes every limit). Every worker leasing afterwards keeps them.

        Raises:
            TypeError: A limit has the wrong type.
            ValueError: A limit is out of range.
        """
        settings.validate()
        await self.connect()
        await self._call(self.backend.put_settings(settings))
        logger.info("queue %s limits: %s", self.name, settings.to_dict())

    async def bulk(self, action: BulkAction | str, where: JobFilter | None = None) -> int:
        """Apply ``action`` to every job ``where`` matches, in chunks of ``BULK_CHUNK``
        jobs (each one short store call, so the store is never held for long).

        Returns:
            How many jobs changed.
        """
        action, where = BulkAction(action), where or JobFilter()
        where.validate()
        await self.connect()
        changed, cursor, calls = 0, None, 0
        while True:
            done, cursor = await self._call(self.backend.bulk(action, where, cursor, BULK_CHUNK))
            changed, calls = changed + done, calls + 1
            if calls % 20 == 0:
                logger.info("bulk %s on %s: %d jobs so far", action, self.name, changed)
            if cursor is None:
                break
        logger.info("bulk %s on %s %s: %d jobs", action, self.name, where.to_dict(), changed)
        return changed

    async def retry_jobs(self, **where: Any) -> int:
        """Queue again every finished job matching the filter (``JobFilter``'s fields:
        status, function, key_prefix, enqueued_before, enqueued_after); returns how many."""
        return await self.bulk(BulkAction.RETRY, JobFilter.from_dict(where))

    async def delete_jobs(self, **where: Any) -> int:
        """Delete every job matching the filter (as for ``retry_jobs``); returns how many."""
        return await self.bulk(BulkAction.DELETE, JobFilter.from_dict(where))

    async def abort_jobs(self, **where: Any) -> int:
        """Abort every live job matching the filter (as for ``retry_jobs``); returns how
        many."""
        return await self.bulk(BulkAction.ABORT, JobFilter.from_dict(where))

    async def counts(self) -> dict[Status, int]:
        """Number of jobs in each status."""
        await self.connect()
        return await self._call(self.backend.counts())

    async def workers(self) -> list[dict[str, Any]]:
        """Workers seen in the last minute, each with ``id``, ``seen`` and what it said."""
        await self.connect()
        return await self._call(self.backend.workers())

    async def queues(self) -> list[str]:
        """Names of every queue the store holds jobs for (sorted)."""
        await self.connect()
        return await self._call(self.backend.queues())

    async def update(
        self, job: Job, *, progress: float | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        """Store a running job's progress and/or merge keys into its meta.

        Raises:
            StaleLease: The job's attempt no longer holds the lease.
        """
        if progress is not None and not 0 <= progress <= 1:
            raise ValueError(f"progress must be between 0 and 1, got {progress}")
        merged = {**job.meta, **meta} if meta is not None else None
        if merged is not None:
            check_json("meta", merged)
        if job.lease is None or not await self._call(
            self.backend.update(job.id, job.lease, progress, merged)
        ):
            raise StaleLease(f"job {job.id}: this attempt no longer holds the lease")
        if progress is not None:
            job.progress = progress
        if merged is not None:
            job.meta = merged

    async def sweep(self, limit: int = 100) -> int:
        """Reclaim jobs whose worker stopped renewing the lease.

        Each is retried if it has retries left, else failed (an aborting one ends
        aborted). Workers call this periodically.

        Returns:
            How many jobs were reclaimed.
        """
        await self.connect()
        return await self._call(self.backend.sweep(limit))

    # Worker-side primitives, used by Worker (and by the network service).

    async def lease(
        self,
        worker_id: str,
        max_jobs: int,
        *,
        wait_s: float = 0.0,
        stop: asyncio.Event | None = None,
    ) -> tuple[list[Job], float | None]:
        """Take up to ``max_jobs`` jobs, waiting up to ``wait_s`` when none is due.

        Args:
            worker_id: Who takes them.
            max_jobs: How many at most.
            wait_s: Seconds to wait for work when none is due.
            stop: Ends the wait early, empty-handed, once set.

        Returns:
            The leased jobs and the seconds until the next scheduled job (or ``None``).
        """
        await self.connect()
        jobs, next_due_s = await self._call(
            self.backend.lease_or_wait(worker_id, max_jobs, wait_s, stop), extra_s=wait_s
        )
        for job in jobs:
            job._owner = self
        return jobs, next_due_s

    async def pause_until_work(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``, or less: until the store says new work may be due (it answers
        again, after a failure) or ``stop`` is set."""
        await first_of(self.backend.wait_for_work(seconds), stop)

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        """Extend ``(job_id, lease)`` leases; each job's state comes back."""
        return await self._call(self.backend.renew(leases))

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record how attempts ended; ``False`` where the lease was stale.

        Raises:
            TypeError: A result is not JSON-serializable (nothing is recorded).
            ValueError: A result is larger than ``LIMITS.json_bytes`` (nothing is recorded).
        """
        for outcome in outcomes:
            if outcome.result is not None:
                check_json("result", outcome.result)
        return await self._call(self.backend.settle(outcomes))

    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """Record that a worker is alive, with what it says of itself."""
        await self._call(self.backend.touch_worker(worker_id, info))

    def wake_local(self) -> None:
        """Wake this process's waiting leases now (new work was just stored)."""
        self.backend.wake_local()

    async def on_abort(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(job_id)`` whenever an active job of this queue is aborted (by
        any process on the store), ahead of its worker's next ``renew``; the
        ``http://`` backend never does (its workers hear at the next renew)."""
        await self.connect()
        await self._call(self.backend.on_abort(callback))

    def off_abort(self, callback: Callable[[str], None]) -> None:
        """Stop calling ``callback`` (given to ``on_abort``)."""
        self.backend.off_abort(callback)

    async def stop_leasing(self, worker_id: str) -> None:
        """``worker_id`` takes no more jobs: hand back any pushed for it ahead of a lease."""
        if isinstance(self.backend, PushesJobs):
            await self._call(self.backend.stop_leasing(worker_id))

    async def put(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        """Store validated jobs in one round trip.

        Returns:
            Per job, in order: the stored job and ``True``, or the live job that has its
            id or key and ``False``.
        """
        for job in jobs:
            job.queue = self.name
            job.validate()
        await self.connect()
        try:
            pairs = await self._call(self.backend.enqueue(jobs))
        except (JobwireError, ValueError, TypeError) as exc:
            if not isinstance(exc, Unavailable):
                raise
            pairs = await self._stored_anyway(jobs, exc)
        except Exception as exc:  # a driver error: the write may have landed all the same
            pairs = await self._stored_anyway(jobs, exc)
        for job, created in pairs:
            job._owner = self
            if created:
                logger.debug("enqueued %s %s", job.function, job.id)
        return pairs

    async def _stored_anyway(self, jobs: Sequence[Job], error: Exception) -> list[tuple[Job, bool]]:
        """After an enqueue that failed or ran out of time, read the jobs back: a write
        the store made is answered as made, never as an error.

        A write past its deadline may land a moment later (a stalled store that
        resumes), so the read is tried for ``READ_BACK_S`` (every read within what is
        left of it: a store still stalled answers the error soon after the deadline).

        Raises:
            Exception: ``error``, when any job is still not found (it may yet be stored:
                retrying with a ``key`` is safe).
        """
        budget = time.monotonic() + READ_BACK_S
        while True:
            try:
                async with asyncio.timeout(max(budget - time.monotonic(), 0.05)):
                    found = [await self.backend.get(job.id) for job in jobs]
            except Exception:
                found = []
            stored = [job for job in found if job is not None]
            if found and len(stored) == len(jobs):
                logger.warning("enqueue of %d jobs stored despite %r", len(jobs), error)
                # the same function and kwargs under our id: this call's write
                return [(got, _same(got, job)) for got, job in zip(stored, jobs, strict=True)]
            if time.monotonic() >= budget:
                raise error
            await asyncio.sleep(READ_BACK_EVERY_S)

    def _build_from_call(self, job_or_function: Job | str, call: dict[str, Any]) -> Job:
        names = _OPTION_NAMES & call.keys()
        options = {name: call.pop(name) for name in names}
        return self._build(job_or_function, call, options)

    def _build(
        self, job_or_function: Job | str, kwargs: dict[str, Any], options: dict[str, Any]
    ) -> Job:
        if isinstance(job_or_function, Job):
            if kwargs or any(options.get(n) not in (None, _DEFAULTS[n]) for n in options):
                raise TypeError("pass options and kwargs on the Job itself, not beside it")
            job = job_or_function
            job.queue = self.name
        else:
            given = {name: value for name, value in options.items() if value is not None}
            job = Job(
                job_or_function,
                kwargs=kwargs,
                queue=self.name,
                **{
                    "timeout": self.defaults.timeout,
                    "retries": self.defaults.retries,
                    "ttl": self.defaults.ttl,
                    **given,
                },
            )
        job.validate()
        return job

    def _bind(self, job: Job | None, job_id: str) -> Job:
        if job is None:
            raise JobNotFound(f"no job {job_id!r} in queue {self.name!r}")
        job._owner = self
        return job


_DEFAULTS: dict[str, Any] = {
    "timeout": None, "retries": None, "ttl": None, "key": None, "heartbeat": None,
    "concurrency_key": None, "scheduled": 0, "retry_delay": 0.0, "retry_backoff": False,
    "priority": 0,
}  # fmt: skip
_OPTION_NAMES = frozenset(_DEFAULTS)


def _same(stored: Job, job: Job) -> bool:
    return stored.function == job.function and stored.kwargs == job.kwargs


def _job_id(job_or_id: Job | str) -> str:
    return job_or_id.id if isinstance(job_or_id, Job) else job_or_id


def _consume(task: "asyncio.Future[Any]") -> None:
    """Retrieve a detached call's outcome (it no longer has a caller)."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a store call past its deadline ended with %r", task.exception())
