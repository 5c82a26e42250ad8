"""``CronJob``: a task a worker enqueues on a cron schedule, once per tick fleet-wide."""

import dataclasses
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from croniter import croniter

from jobwire.job import Job

TaskFunction = Callable[..., Awaitable[Any]]


@dataclasses.dataclass(slots=True)
class CronJob:
    """A function to run on a cron schedule.

    Any number of workers may declare the same ``CronJob``: each tick's job has the id
    ``cron:<function>:<tick>``, so only the first enqueue of a tick creates it.

    Args:
        function: The task function (registered on the worker automatically).
        cron: Five fields (minute precision), or six with seconds last
            (``"* * * * * */5"`` runs every 5 s). Evaluated in UTC.
        timeout: Seconds before the worker cancels the task.
        retries: Retries after the first attempt.
        ttl: Seconds the finished job stays readable.
        heartbeat: Lease length in seconds (0: the queue default).
        kwargs: Keyword arguments for the function.

    Raises:
        ValueError: The cron expression is invalid.
    """

    function: TaskFunction
    cron: str
    timeout: float | None = None
    retries: int = 0
    ttl: int = 600
    heartbeat: float = 0
    kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"invalid cron expression {self.cron!r}")

    @property
    def name(self) -> str:
        """The function's registered name."""
        return self.function.__name__

    def next_tick(self, after: float) -> float:
        """The first tick strictly after Unix time ``after``."""
        start = datetime.datetime.fromtimestamp(after, datetime.UTC)
        return float(croniter(self.cron, start).get_next(float))

    def job_for(self, tick: float, queue: str) -> Job:
        """The job that runs this cron job's ``tick``."""
        return Job(
            self.name,
            kwargs=dict(self.kwargs or {}),
            queue=queue,
            id=f"cron:{self.name}:{tick:.0f}",
            timeout=self.timeout,
            retries=self.retries,
            ttl=self.ttl,
            heartbeat=self.heartbeat,
            scheduled=tick,
        )
