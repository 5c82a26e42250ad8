"""The queues the service serves, all on one store and its connections."""

import re

from jobwire.errors import InvalidRequest, JobNotFound
from jobwire.job import DEFAULT_LEASE_S, JOB_ID_PATTERN, NAME_PATTERN, Job
from jobwire.queue import Queue

_NAME = re.compile(NAME_PATTERN)
_JOB_ID = re.compile(JOB_ID_PATTERN)


class QueueRegistry:
    """Hands out a ``Queue`` per (name, lease length), sharing the root queue's pool.

    Args:
        url: The store's URL.
        lease_s: Default lease for jobs without a heartbeat.
    """

    def __init__(self, url: str, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.root = Queue.from_url(url, name="default", lease_s=lease_s)
        self._queues: dict[tuple[str, float], Queue] = {}

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
            queue = self._queues[key] = self.root.for_queue(name, lease_s=key[1])
        return queue

    async def find(self, job_id: str, queue: str | None = None) -> tuple[Queue, Job]:
        """The job with that id (in ``queue`` if given, else in any queue).

        Raises:
            InvalidRequest: ``job_id`` is not a valid job id.
            JobNotFound: There is none.
        """
        if not _JOB_ID.match(job_id):
            raise InvalidRequest(f"job_id must match {JOB_ID_PATTERN}, got {job_id!r}")
        if queue is not None:
            owner = self.get(queue)
            job = await owner.job(job_id)
        else:
            job = await self.root.find(job_id)
            owner = self.get(job.queue) if job else self.root
        if job is None:
            where = f"queue {queue!r}" if queue else "any queue"
            raise JobNotFound(f"no job {job_id!r} in {where}")
        return owner, job

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
