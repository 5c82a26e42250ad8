"""Flow control on PostgreSQL: what a limit counts across every transition, leases racing
under a limit, the rate log's housekeeping, the limited lease's plan, concurrency keys."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from jobwire import FunctionLimits, Job, Queue, QueueSettings, Rate, Status
from jobwire.backends.base import Outcome
from jobwire.backends.postgres import flow, sql
from jobwire.backends.postgres.backend import parse_url

LIMIT = 2
SCOPES = {
    "queue": (QueueSettings(max_active=LIMIT), None),
    "function": (QueueSettings(functions={"f": FunctionLimits(max_active=LIMIT)}), Job("g")),
    "key": (QueueSettings(max_active_per_key=LIMIT), Job("f")),  # no key: not counted
}


def _name() -> str:
    return f"flow-{uuid4().hex[:8]}"


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own to the test database."""
    conn = await asyncpg.connect(parse_url(postgres_url)[0])
    try:
        yield conn
    finally:
        await conn.close()


class Walk:
    """A queue under a limit of ``LIMIT`` running jobs, and checks of what it admits."""

    def __init__(self, queue: Queue, admin: asyncpg.Connection) -> None:
        self.queue = queue
        self.admin = admin

    async def lease(self, expected: int, via: Queue | None = None) -> list[Job]:
        """Lease as much as the limit lets through: exactly ``expected`` jobs."""
        jobs, _ = await (via or self.queue).lease("w", 10)
        assert len(jobs) == expected, [j.id for j in jobs]
        running = await self.admin.fetchval(
            "SELECT count(*) FROM jobwire_jobs WHERE queue = $1 AND status IN "
            "('active', 'aborting')",
            self.queue.name,
        )
        assert running == LIMIT
        return jobs

    async def settle(self, job: Job, status: Status, delay_s: float = 0.0) -> None:
        outcome = Outcome(job.id, job.lease or "", status, delay_s=delay_s)
        assert await self.queue.settle([outcome]) == [True]


@pytest.mark.parametrize("scope", list(SCOPES))
async def test_a_limit_counts_running_jobs_across_every_transition(
    postgres_url: str, admin: asyncpg.Connection, scope: str
) -> None:
    """Lease, settle (complete, failed, aborted, retried now or later), abort (the job
    runs until settled), delete, bulk delete and abort, and the sweep of a lapsed lease:
    after each, the limit admits exactly the slots freed."""
    settings, free_job = SCOPES[scope]
    jobs = [Job("f", key=f"j{i:02d}-", concurrency_key="k") for i in range(20)]
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.configure(settings)
        await queue.enqueue_many(jobs)
        walk = Walk(queue, admin)
        a, b = await walk.lease(2)
        await walk.lease(0)
        await queue.abort(a.id)  # aborting: still running until its worker settles it
        await walk.lease(0)
        await walk.settle(a, Status.ABORTED)
        [c] = await walk.lease(1)
        await walk.settle(b, Status.COMPLETE)
        [d] = await walk.lease(1)
        await walk.settle(c, Status.FAILED)
        [e] = await walk.lease(1)
        await walk.settle(d, Status.QUEUED)  # a retry (or a worker handing a job back)
        [f] = await walk.lease(1)
        await walk.settle(e, Status.QUEUED, delay_s=60)  # a retry after a delay
        [g] = await walk.lease(1)
        await queue.delete(f.id)
        [h] = await walk.lease(1)
        assert await queue.delete_jobs(key_prefix=g.key) == 1
        [i] = await walk.lease(1)
        assert await queue.abort_jobs(key_prefix=h.key) == 1
        await walk.lease(0)
        await walk.settle(h, Status.ABORTED)
        await walk.lease(1)
        await walk.settle(i, Status.COMPLETE)
        short = queue.for_queue(queue.name, lease_s=0.2)
        try:
            await walk.lease(1, via=short)
        finally:
            await short.close()
        await asyncio.sleep(0.4)
        assert await queue.sweep() == 1  # its worker went silent: failed, slot freed
        await walk.lease(1)
        if free_job is not None:  # a job this scope's limit does not count runs anyway
            assert await queue.enqueue(free_job) is not None
            leased, _ = await queue.lease("w", 10)
            assert [job.id for job in leased] == [free_job.id]
        counts = await queue.counts()
        assert counts[Status.ACTIVE] + counts[Status.ABORTING] == LIMIT + (free_job is not None)


async def test_racing_leases_never_exceed_max_active(postgres_url: str) -> None:
    """Leases through separate pools (as separate processes) at once: five in all."""
    name = _name()
    handles = [Queue.from_url(postgres_url, name=name) for _ in range(8)]
    try:
        await handles[0].configure(QueueSettings(max_active=5))
        await handles[0].enqueue_many([Job("f") for _ in range(100)])
        for _ in range(3):
            leased = await asyncio.gather(*(h.lease(f"w{n}", 4) for n, h in enumerate(handles)))
            assert sum(len(jobs) for jobs, _ in leased) == 5
            running = [job for jobs, _ in leased for job in jobs]
            outcomes = [Outcome(j.id, j.lease or "", Status.COMPLETE) for j in running]
            await handles[0].settle(outcomes)
    finally:
        for handle in handles:
            await handle.close()


async def test_a_lease_already_under_way_finishes_before_new_limits_hold(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    """A settings change waits for leases that read the queue's row, so no lease can count
    running jobs without one a racing unlimited lease took."""
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.enqueue_many([Job("f") for _ in range(10)])
        await queue.configure(QueueSettings())
        async with admin.transaction():
            await admin.execute("SELECT FROM jobwire_queues WHERE name = $1 FOR SHARE", queue.name)
            change = asyncio.create_task(queue.configure(QueueSettings(max_active=3)))
            await asyncio.sleep(0.3)
            assert not change.done(), "the change waits for the lease holding the row"
        await change
        leased, _ = await queue.lease("w", 10)
        assert len(leased) == 3


async def test_pause_holds_the_fast_and_the_limited_path(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.enqueue("f")
        await queue.enqueue("f", scheduled=time.time() + 0.2)
        await queue.enqueue("f", scheduled=time.time() + 60)
        await queue.pause()
        await asyncio.sleep(0.3)
        assert await queue.lease("w", 10) == ([], None), "nothing, and no wait for a due job"
        await queue.configure(QueueSettings(max_active=5))
        assert await queue.lease("w", 10) == ([], None)
        assert await queue.lease("w", 10) == ([], None)  # (now on the limited path)
        await queue.resume()
        leased, _ = await queue.lease("w", 10)
        assert len(leased) == 2


async def test_a_backend_follows_limits_coming_and_going(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        other = queue.for_queue(queue.name)
        await queue.enqueue_many([Job("f") for _ in range(10)])
        await other.configure(QueueSettings(max_active=1))
        assert len((await queue.lease("w", 10))[0]) == 1
        await other.configure(QueueSettings())
        assert len((await queue.lease("w", 3))[0]) == 3
        await other.configure(QueueSettings(max_active=5))
        assert len((await queue.lease("w", 10))[0]) == 1


async def test_the_rate_log_keeps_only_the_window(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    count = "SELECT count(*) FROM jobwire_starts WHERE queue = $1"
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        rate = Rate(1000, 2.0)
        await queue.configure(
            QueueSettings(rate=rate, rate_per_key=rate, functions={"f": FunctionLimits(rate=rate)})
        )
        await queue.enqueue_many([Job("f", concurrency_key=f"k{i % 3}") for i in range(120)])
        assert len((await queue.lease("w", 20))[0]) == 20
        # one row per lease call and bucket: the queue, the function, and each key met
        assert await admin.fetchval(count, queue.name) == 1 + 1 + 3
        await asyncio.sleep(2.1)
        assert len((await queue.lease("w", 50))[0]) == 50
        assert await admin.fetchval(count, queue.name) == 10, "kept until a hundredth start"
        assert len((await queue.lease("w", 30))[0]) == 30  # the 100th start: rows pruned
        assert await admin.fetchval(count, queue.name) == 10, "the window's rows are kept"
        await queue.configure(QueueSettings(max_active=100))
        assert await admin.fetchval(count, queue.name) == 0, "no rate: no log"


async def test_the_rate_window_slides(postgres_url: str) -> None:
    """Starts count for one period from their own time, not from a fixed window's start."""
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.configure(QueueSettings(rate=Rate(4, 2.0)))
        await queue.enqueue_many([Job("f") for _ in range(20)])
        assert len((await queue.lease("w", 2))[0]) == 2
        await asyncio.sleep(1.0)
        assert len((await queue.lease("w", 10))[0]) == 2
        jobs, next_s = await queue.lease("w", 10)
        assert jobs == [] and next_s is not None and 0 < next_s <= 1.0
        await asyncio.sleep(next_s + 0.05)
        assert len((await queue.lease("w", 10))[0]) == 2, "the first two aged out, not the others"


async def test_the_limited_lease_reads_only_the_head_of_a_big_backlog(
    fresh_database: str,
) -> None:
    """With statistics that say the queue holds a job or two (analyzed then, 5,000 now), no
    statement of the limited lease reads the backlog: the walk reads the dequeue index in
    order, and the jobs it leases are reached by id."""
    async with Queue.from_url(fresh_database, name="other") as other:
        await other.enqueue_many([Job("f") for _ in range(5000)])
        queue = other.for_queue("limited")
        await queue.enqueue("f")
    admin = await asyncpg.connect(fresh_database)
    try:
        await admin.execute("ANALYZE jobwire_jobs")
        try:
            await admin.execute("LOAD 'auto_explain'")
        except asyncpg.PostgresError:
            pytest.skip("auto_explain cannot be loaded on the test server")
        async with Queue.from_url(fresh_database, name="limited") as queue:
            await queue.enqueue_many([Job("f") for _ in range(5000)])
            await queue.configure(QueueSettings(max_active=1_000_000))
        plans = await _nested_plans(admin, flow.LEASE_LIMITED, "limited", 10, "t", "w", 30.0, 1000)
    finally:
        await admin.close()
    scans = [n for plan in plans for n in _nodes(plan) if n.get("Relation Name") == "jobwire_jobs"]
    assert scans, "auto_explain logged nothing"
    for node in scans:
        assert node["Node Type"] != "Seq Scan", node
        assert node["Actual Rows"] * node["Actual Loops"] <= 20, node


async def _nested_plans(conn: asyncpg.Connection, query: str, *args: Any) -> list[dict[str, Any]]:
    """The executed plans of the statements ``query`` runs (functions' included), run eight
    times (past the five custom plans PL/pgSQL makes before it may switch to a generic one),
    each in a transaction rolled back."""
    for setting in (
        "log_min_duration = 0", "log_nested_statements = on", "log_analyze = on",
        "log_format = json",
    ):  # fmt: skip
        await conn.execute(f"SET auto_explain.{setting}")
    await conn.execute("SET client_min_messages = log")
    messages: list[str] = []
    conn.add_log_listener(lambda _, message: messages.append(message.message))
    for _ in range(8):
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.fetch(query, *args)
        finally:
            await transaction.rollback()
    await asyncio.sleep(0.1)
    return [_plan(message) for message in messages if "plan:" in message]


def _plan(message: str) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(message[message.index("{") :])["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _nodes(child)
    return nodes


async def test_concurrency_key_round_trips(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        keyed = await queue.enqueue("f", concurrency_key="tenant-1")
        plain = await queue.enqueue("f")
        assert keyed is not None and plain is not None
        assert keyed.concurrency_key == "tenant-1"
        assert (await queue.job(keyed.id)).concurrency_key == "tenant-1"  # type: ignore[union-attr]
        assert (await queue.job(plain.id)).concurrency_key is None  # type: ignore[union-attr]
        listed = {job.id: job.concurrency_key for job in await queue.jobs(Status.QUEUED)}
        assert listed == {keyed.id: "tenant-1", plain.id: None}
        leased, _ = await queue.lease("w", 10)
        assert {job.id: job.concurrency_key for job in leased} == listed
        found = await queue.backend.find_job(keyed.id)
        assert found is not None and found.concurrency_key == "tenant-1"


async def test_the_limited_lease_answers_the_job_columns(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    """jobwire_lease_row spells out sql.JOB_COLUMNS: a column added to jobs goes there too."""
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.connect()  # (the schema is migrated)
    rows = await admin.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'jobwire_lease_row'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    )
    assert [row["attname"] for row in rows] == ["state", "next_s", *sql.JOB_COLUMNS]
