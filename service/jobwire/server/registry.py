"""The queues the service serves, all on one backend and its connections."""

import logging
import re
from collections.abc import Callable

from jobwire.backends import backend_from_url
from jobwire.backends.base import Backend
from jobwire.errors import JobNotFound
from jobwire.job import DEFAULT_LEASE_S, NAME_PATTERN, Job
from jobwire.queue import Queue

_NAME = re.compile(NAME_PATTERN)
logger = logging.getLogger("jobwire.server")


class QueueRegistry:
    """Hands out a ``Queue`` per (name, lease length), sharing the root backend's pool.

    Args:
        url: The store's URL.
        lease_s: Default lease for jobs without a heartbeat.
    """

    def __init__(self, url: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.root: Backend = backend_from_url(url, "default", lease_s=lease_s)
        self._queues: dict[tuple[str, float], Queue] = {}
        self._abort_listeners: list[Callable[[Job], None]] = []

    def get(self, name: str, lease_s: float | None = None) -> Queue:
        """The queue called ``name`` (whose jobs get ``lease_s`` leases by default).

        Raises:
            ValueError: The name is not a valid queue name.
        """
        if not _NAME.match(name):
            raise ValueError(f"queue name must match {NAME_PATTERN}, got {name!r}")
        key = (name, lease_s or self.root.lease_s)
        queue = self._queues.get(key)
        if queue is None:
            backend = self.root.for_queue(name)
            backend.lease_s = key[1]
            queue = self._queues[key] = Queue(backend)
        return queue

    async def find(self, job_id: str, queue: str | None = None) -> tuple[Queue, Job]:
        """The job with that id (in ``queue`` if given, else in any queue).

        Raises:
            JobNotFound: There is none.
        """
        if queue is not None:
            owner = self.get(queue)
            job = await owner.job(job_id)
        else:
            job = await self.root.find_job(job_id)
            owner = self.get(job.queue) if job else self.get("default")
        if job is None:
            where = f"queue {queue!r}" if queue else "any queue"
            raise JobNotFound(f"no job {job_id!r} in {where}")
        return owner, job

    def on_abort(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` whenever a job is aborted through this process (REST or
        gRPC), so that a worker streaming from here can be told at once."""
        self._abort_listeners.append(listener)

    def aborted(self, job: Job) -> None:
        """Tell the listeners that ``job`` was just aborted (its status after the abort)."""
        for listener in self._abort_listeners:
            try:
                listener(job)
            except Exception:
                logger.exception("abort listener failed for job %s", job.id)

    def interrupt_waits(self) -> None:
        """End every waiting lease in this process (shutdown is starting)."""
        for queue in self._queues.values():
            queue.backend.interrupt_wait()

    async def names(self) -> list[str]:
        """Names of every queue the store knows."""
        return await self.root.queues()

    async def ping(self) -> None:
        """One round trip to the store (raises if it is unreachable)."""
        await self.root.queues()

    async def close(self) -> None:
        """Close every queue, then the shared connections."""
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()
        await self.root.close()
