"""Bulk operations on PostgreSQL: bounded chunks in id order, and retries that keep the
dedup rules within a chunk and against racing enqueues."""

import asyncio
from uuid import uuid4

import asyncpg

from jobwire import ErrorInfo, Job, JobFilter, Queue, Status
from jobwire.backends.base import Outcome
from jobwire.backends.postgres.backend import parse_url
from jobwire.flow import BulkAction


def _name() -> str:
    return f"bulk-{uuid4().hex[:8]}"


async def _fail(queue: Queue, jobs: list[Job]) -> None:
    """Enqueue ``jobs`` and fail each (one at a time: a key may repeat)."""
    for job in jobs:
        assert await queue.enqueue(job) is not None
        [leased], _ = await queue.lease("w", 1)
        error = ErrorInfo("E", "x")
        await queue.settle([Outcome(leased.id, leased.lease or "", Status.FAILED, error=error)])


async def test_a_chunk_visits_at_most_limit_jobs_in_id_order(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.enqueue_many([Job("f", id=f"job-{i:02d}") for i in range(25)])
        nothing = JobFilter(function="nope")
        steps = []
        cursor = None
        while True:
            changed, cursor = await queue.backend.bulk(BulkAction.DELETE, nothing, cursor, 10)
            steps.append((changed, cursor))
            if cursor is None:
                break
        assert steps == [(0, "job-09"), (0, "job-19"), (0, None)]
        changed, cursor = await queue.backend.bulk(BulkAction.DELETE, JobFilter(), "job-19", 10)
        assert (changed, cursor) == (5, None)
        assert (await queue.counts())[Status.QUEUED] == 20


async def test_small_chunks_retry_each_job_once(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await _fail(queue, [Job("f") for _ in range(7)])
        total, cursor, calls = 0, None, 0
        while True:
            changed, cursor = await queue.backend.bulk(BulkAction.RETRY, JobFilter(), cursor, 2)
            total, calls = total + changed, calls + 1
            if cursor is None:
                break
        assert (total, calls) == (7, 4)
        assert (await queue.counts())[Status.QUEUED] == 7


async def test_retry_keeps_one_live_job_per_key(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await _fail(queue, [Job("f", id="a1", key="dup"), Job("f", id="a2", key="dup")])
        await _fail(queue, [Job("f", id="b1", key="held"), Job("f", id="c1")])
        assert await queue.enqueue("f", key="held") is not None
        assert await queue.retry_jobs(status="failed") == 2
        states = {job_id: (await queue.job(job_id)).status for job_id in ("a1", "a2", "b1", "c1")}  # type: ignore[union-attr]
        assert states == {
            "a1": Status.QUEUED,  # the first of the two with its key
            "a2": Status.FAILED,
            "b1": Status.FAILED,  # a live job holds its key
            "c1": Status.QUEUED,
        }


async def test_retry_survives_an_enqueue_taking_a_key_meanwhile(postgres_url: str) -> None:
    """The chunk's UPDATE meets a racing enqueue's key: it runs again and skips that job."""
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await _fail(queue, [Job("f", id="keyed", key="k"), Job("f", id="plain")])
        admin = await asyncpg.connect(parse_url(postgres_url)[0])
        try:
            transaction = admin.transaction()
            await transaction.start()
            await admin.execute(
                "INSERT INTO jobwire_jobs (queue, id, status, function, kwargs, key)"
                " VALUES ($1, 'racer', 'queued', 'f', '{}', 'k')",
                queue.name,
            )
            retry = asyncio.create_task(queue.retry_jobs())
            await asyncio.sleep(0.3)
            assert not retry.done(), "waits for the racing insert of its key"
            await transaction.commit()
            assert await retry == 1
        finally:
            await admin.close()
        assert (await queue.job("keyed")).status is Status.FAILED  # type: ignore[union-attr]
        assert (await queue.job("plain")).status is Status.QUEUED  # type: ignore[union-attr]


async def test_abort_counts_what_it_changed(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await _fail(queue, [Job("f")])
        leased = await queue.enqueue("f")
        assert leased is not None and len((await queue.lease("w", 1))[0]) == 1
        await queue.enqueue("f", ttl=-1)  # aborted: gone at once, counted
        await queue.enqueue("f", scheduled=4e9)
        assert await queue.abort_jobs() == 3
        assert await queue.abort_jobs() == 0, "aborting and finished jobs are left alone"
        counts = await queue.counts()
        assert (counts[Status.ABORTED], counts[Status.ABORTING], counts[Status.FAILED]) == (1, 1, 1)
        job = await queue.job(leased.id)
        assert job is not None and job.error is not None and job.error.type == "Aborted"
