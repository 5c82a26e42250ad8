"""Fixtures shared by the conformance suite.

Every test here runs once per queue implementation listed in ``IMPLEMENTATIONS``: each
store directly (PostgreSQL also through PgBouncer in transaction mode), and the service over
each store through both of its APIs. Each test gets a
freshly named queue, so tests never see each other's jobs.
"""

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Literal
from uuid import uuid4

import pytest
from service_fixtures import GrpcService
from timing import QUEUE_LEASE_S, seconds

from jobwire import Job, Queue, Status, Worker

Via = Literal["store", "http", "grpc"]

# Implementation id -> the fixture that provides it, and how the SDK reaches it: "store"
# fixtures yield a store's URL, the others a service (tests/service_fixtures.py) that
# serves both APIs, so one process per store carries its "http-" and "grpc-" rows. Adding
# a backend to the conformance suite is entries here (plus the fixture that provides it).
IMPLEMENTATIONS: dict[str, tuple[str, Via]] = {
    "redis": ("conformance_redis_url", "store"),
    "postgres": ("postgres_url", "store"),
    "sqlite": ("sqlite_url", "store"),
    "pgbouncer": ("pgbouncer_queue_url", "store"),
    "redis-cluster": ("redis_cluster_url", "store"),  # 3 masters with a replica each
    "http-redis": ("redis_service", "http"),
    "http-postgres": ("postgres_service", "http"),
    "http-sqlite": ("sqlite_service", "http"),
    "grpc-redis": ("redis_service", "grpc"),
    "grpc-postgres": ("postgres_service", "grpc"),
    "grpc-sqlite": ("sqlite_service", "grpc"),
}

# Short intervals keep the suite fast; tests override them per worker when needed.
WORKER_DEFAULTS: dict[str, Any] = {
    "poll_interval_s": seconds(0.1),
    "sweep_interval_s": seconds(0.2),
    "shutdown_grace_s": 1,
    "handle_signals": False,
}

WORKER_EXIT_TIMEOUT_S = 10.0

Predicate = Callable[[], Any]


def unique_queue_name() -> str:
    """A queue name no other test uses."""
    return f"t-{uuid4().hex[:12]}"


# Rows left out of the quick run (``-m "not slow"``): "pgbouncer" is the postgres row again
# through one more hop; tests/postgres/test_pg_pgbouncer.py covers what that hop changes.
SLOW_ROWS = {"pgbouncer"}


@pytest.fixture(
    params=[
        pytest.param(row, marks=pytest.mark.slow) if row in SLOW_ROWS else row
        for row in IMPLEMENTATIONS
    ]
)
def queue_url(request: pytest.FixtureRequest) -> str:
    """URL of the queue implementation under test."""
    fixture, via = IMPLEMENTATIONS[request.param]
    provided = request.getfixturevalue(fixture)
    if via == "store":
        return str(provided)
    assert isinstance(provided, GrpcService), provided
    return provided.http if via == "http" else provided.url


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a fresh SQLite database file, one per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/jobs.db"


@pytest.fixture
async def queue(queue_url: str) -> AsyncIterator[Queue]:
    """A queue with a unique name and a default lease of ``QUEUE_LEASE_S``, closed after
    the test."""
    q = Queue.from_url(queue_url, name=unique_queue_name(), lease_s=QUEUE_LEASE_S)
    try:
        yield q
    finally:
        await q.close()


@pytest.fixture
async def make_queue(queue_url: str) -> AsyncIterator[Callable[..., Queue]]:
    """Factory for extra Queue objects (closed after the test).

    Call it as ``make_queue(name=None, **options)``; a ``None`` name means a fresh
    unique queue, while passing ``queue.name`` gives a second handle on the same queue
    (as a second process would have).
    """
    made: list[Queue] = []

    def factory(name: str | None = None, **options: Any) -> Queue:
        options.setdefault("lease_s", QUEUE_LEASE_S)
        q = Queue.from_url(queue_url, name=name or unique_queue_name(), **options)
        made.append(q)
        return q

    try:
        yield factory
    finally:
        for q in made:
            await q.close()


@pytest.fixture
async def running_worker() -> AsyncIterator[
    Callable[..., contextlib.AbstractAsyncContextManager[Worker]]
]:
    """Factory of async context managers that run a Worker in the background.

    Usage: ``async with running_worker(queue, [task], concurrency=2) as worker: ...``.
    The worker uses short poll/sweep intervals and no signal handlers unless overridden.
    On exit it is stopped and its ``start()`` task awaited, so a crashed worker fails
    the test.
    """
    tasks: list[asyncio.Task[None]] = []
    workers: list[Worker] = []

    @contextlib.asynccontextmanager
    async def run(
        queue: Queue, functions: Iterable[Any] = (), **options: Any
    ) -> AsyncIterator[Worker]:
        worker = Worker(queue, functions=list(functions), **{**WORKER_DEFAULTS, **options})
        task = asyncio.create_task(worker.start())
        workers.append(worker)
        tasks.append(task)
        try:
            yield worker
        finally:
            await worker.stop()
            await asyncio.wait_for(task, timeout=WORKER_EXIT_TIMEOUT_S)

    try:
        yield run
    finally:
        for worker, task in zip(workers, tasks, strict=True):
            if not task.done():
                await worker.stop()
                await asyncio.wait_for(task, timeout=WORKER_EXIT_TIMEOUT_S)


@pytest.fixture
def owner_sweeping() -> Callable[[Queue], contextlib.AbstractAsyncContextManager[None]]:
    """Factory of contexts in which a queue whose store's owner sweeps (a service) is
    swept every ``WORKER_DEFAULTS["sweep_interval_s"]``, as its worker would sweep a store.

    The suite's services sweep nothing in the background, so that tests counting what
    ``sweep()`` reclaims count exactly; this stands in for the service's sweeper.
    """

    @contextlib.asynccontextmanager
    async def sweeping(queue: Queue) -> AsyncIterator[None]:
        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(WORKER_DEFAULTS["sweep_interval_s"])
                await queue.sweep()

        task = asyncio.create_task(sweep_forever()) if queue.sweeps_itself else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return sweeping


async def _eventually(
    predicate: Predicate, timeout: float = 5.0, interval: float = 0.02, message: str = ""
) -> Any:
    """Poll ``predicate`` (sync, or returning an awaitable) until it gives a truthy value.

    Returns:
        The first truthy value.

    Raises:
        AssertionError: The deadline passed; the message includes the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"condition not met within {timeout} s (last value: {value!r}) {message}"
            )
        await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """The polling helper: ``await eventually(predicate, timeout=5)``."""
    return _eventually


async def _wait_status(
    queue: Queue, job: Job | str, *statuses: Status, timeout: float = 5.0
) -> Job:
    """Poll ``queue.job()`` until the job has one of ``statuses``; return it.

    Raises:
        AssertionError: The job did not reach any of the statuses in time.
    """
    job_id = job if isinstance(job, str) else job.id
    last: list[Job | None] = [None]

    async def reached() -> Job | None:
        last[0] = await queue.job(job_id)
        return last[0] if last[0] is not None and last[0].status in statuses else None

    try:
        return await _eventually(reached, timeout=timeout)  # type: ignore[no-any-return]
    except AssertionError:
        current = last[0].status if last[0] is not None else None
        raise AssertionError(
            f"job {job_id} did not reach {[str(s) for s in statuses]} within {timeout} s; "
            f"last status: {current}"
        ) from None


@pytest.fixture
def wait_status() -> Callable[..., Awaitable[Job]]:
    """The status helper: ``await wait_status(queue, job, Status.ACTIVE, timeout=5)``."""
    return _wait_status
