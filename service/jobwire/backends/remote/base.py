"""``RemoteBackend``: what the network clients (http, grpc) do the same way.

A remote backend talks to a running Jobwire service, which owns the store: the service
reclaims expired leases (workers need not sweep) and records workers as they lease. This
base holds the one error map (a service's error code to its ``JobwireError``), the one
long-poll loop that waits for a job to finish, the one in-process wake event, the flow
control reads and bulk operations (one call each: the service works in chunks), and
what both read from a service URL.
"""

import abc
import asyncio
import contextlib
import os
import time
from typing import Any
from urllib.parse import SplitResult

from jobwire import errors
from jobwire.backends.base import Backend
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import Job

WORKER_DETAILS = ("concurrency", "running", "host", "pid")
LONG_POLL_CHUNK_S = 30.0  # one long poll; a longer wait is several
BATCH = 1000  # the service's largest batch, page and lease
BULK_TIMEOUT_S = 600.0  # one bulk call goes through every matching job (in chunks)
ERRORS: dict[str, type[errors.JobwireError]] = {
    cls.code: cls
    for cls in (errors.JobNotFound, errors.InvalidJobState, errors.StaleLease,
                errors.InvalidRequest, errors.PayloadTooLarge, errors.Unauthenticated,
                errors.Forbidden, errors.Unavailable)
}  # fmt: skip


def error_for(code: str | None, message: str) -> errors.JobwireError | None:
    """The ``JobwireError`` a service's error code stands for (``None``: unknown code)."""
    cls = ERRORS.get(code or "")
    return cls(message) if cls is not None else None


class RemoteBackend(Backend, abc.ABC):
    """The contract over a Jobwire service; subclasses speak one transport."""

    sweeps_itself = True

    def __init__(self, queue_name: str, *, lease_s: float) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self._work = asyncio.Event()
        self._workers: dict[str, dict[str, Any]] = {}

    @abc.abstractmethod
    async def poll_finished(self, job_id: str, wait_s: float) -> Job | None:
        """One long poll: the job once finished or after ``wait_s`` (``None``: gone)."""

    @abc.abstractmethod
    async def queue_settings(self) -> tuple[QueueSettings, bool]:
        """The queue's limits and whether it is paused (one call)."""

    @abc.abstractmethod
    async def bulk_all(self, action: BulkAction, where: JobFilter) -> int:
        """Apply ``action`` to every job ``where`` matches (one call); how many changed."""

    async def settings(self) -> QueueSettings:
        return (await self.queue_settings())[0]

    async def is_paused(self) -> bool:
        return (await self.queue_settings())[1]

    async def bulk(
        self, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
    ) -> tuple[int, str | None]:
        """The whole filter in one call: the service goes through it in short chunks."""
        return await self.bulk_all(action, where), None

    async def wait_finished(self, job_id: str, timeout_s: float | None) -> Job | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = LONG_POLL_CHUNK_S if deadline is None else deadline - time.monotonic()
            job = await self.poll_finished(job_id, max(min(left, LONG_POLL_CHUNK_S), 0.0))
            if job is None or job.finished:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout_s} s")

    async def lease(self, worker_id: str, max_jobs: int) -> tuple[list[Job], float | None]:
        return await self.lease_or_wait(worker_id, max_jobs, 0.0)

    async def expired(self, limit: int) -> list[Job]:
        return []  # reclaiming happens on the service: see sweep()

    async def wait_for_work(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._work.wait()
        self._work.clear()

    def wake_local(self) -> None:
        self._work.set()

    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        self._workers[worker_id] = info  # sent with its next lease: the service records it

    def worker_info(self, worker_id: str) -> tuple[list[str], dict[str, Any]]:
        """What ``worker_id`` last said of itself: its functions, and the details the
        service records (concurrency, running, host, pid)."""
        info = self._workers.get(worker_id, {})
        details = {name: info[name] for name in WORKER_DETAILS if name in info}
        return list(info.get("functions", ())), details


def bracketed_host(parts: SplitResult) -> str:
    """The URL's host, bracketed if it is an IPv6 address (``localhost`` if absent)."""
    host = parts.hostname or "localhost"
    return f"[{host}]" if ":" in host else host


def bearer_token(parts: SplitResult) -> str | None:
    """The token: the URL's password (``scheme://:TOKEN@host``), else ``$JOBWIRE_TOKEN``."""
    return parts.password or os.environ.get("JOBWIRE_TOKEN")
