"""The Redis store's counts of active jobs per limited function and per concurrency key
stay exact across every way a job enters or leaves active/aborting."""

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from jobwire import ErrorInfo, FunctionLimits, Job, JobFilter, Queue, QueueSettings, Status
from jobwire.backends.base import Outcome
from jobwire.flow import BulkAction

LEASE_S = 0.3
LIMITS = QueueSettings(max_active_per_key=100, functions={"f": FunctionLimits(max_active=100)})


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    async with Queue.from_url(redis_url, name=f"counts-{uuid4().hex[:8]}", lease_s=LEASE_S) as q:
        yield q


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def stored_counts(queue: Queue, client: Redis) -> tuple[dict[str, int], dict[str, int]]:
    """The counts the store keeps: per function, per concurrency key."""
    prefix = f"jobwire:{{{queue.name}}}:"
    by_fn = await client.hgetall(prefix + "running_fn")
    by_key = await client.hgetall(prefix + "running_key")
    return {k: int(v) for k, v in by_fn.items()}, {k: int(v) for k, v in by_key.items()}


async def true_counts(
    queue: Queue, settings: QueueSettings
) -> tuple[dict[str, int], dict[str, int]]:
    """The same counts from the jobs themselves (status active or aborting)."""
    by_fn: collections.Counter[str] = collections.Counter()
    by_key: collections.Counter[str] = collections.Counter()
    live = await queue.jobs(Status.ACTIVE, 1000) + await queue.jobs(Status.ABORTING, 1000)
    for job in live:
        limits = settings.functions.get(job.function)
        if limits is not None and limits.max_active is not None:
            by_fn[job.function] += 1
        if job.concurrency_key is not None and settings.max_active_per_key is not None:
            by_key[job.concurrency_key] += 1
    return dict(by_fn), dict(by_key)


async def assert_exact(
    queue: Queue, client: Redis, settings: QueueSettings, fn: int, key_a: int
) -> None:
    """The stored counts match the jobs, and the expected number of ``f`` jobs and of key
    ``a`` jobs is active."""
    stored = await stored_counts(queue, client)
    assert stored == await true_counts(queue, settings)
    assert (stored[0].get("f", 0), stored[1].get("a", 0)) == (fn, key_a), stored


def _outcome(job: Job, status: Status, **extra: Any) -> Outcome:
    return Outcome(job.id, job.lease or "", status, **extra)


async def test_counts_follow_every_transition(queue: Queue, client: Redis) -> None:
    await queue.configure(LIMITS)
    # f jobs all keyed 'a'; g jobs (no function limit) keyed 'b'; two jobs without a key
    jobs = [Job("f", concurrency_key="a", retries=1) for _ in range(8)]
    jobs += [Job("g", concurrency_key="b") for _ in range(3)] + [Job("f"), Job("g")]
    await queue.enqueue_many(jobs)
    await assert_exact(queue, client, LIMITS, fn=0, key_a=0)

    leased, _ = await queue.lease("w", 100)
    assert len(leased) == 13
    f_a = [j for j in leased if j.concurrency_key == "a"]
    await assert_exact(queue, client, LIMITS, fn=9, key_a=8)

    # settle: complete, failed, aborted, retry (queued), hand-back with a delay
    await queue.settle([_outcome(f_a[0], Status.COMPLETE), _outcome(f_a[1], Status.FAILED)])
    await queue.settle([_outcome(f_a[2], Status.ABORTED), _outcome(f_a[3], Status.QUEUED)])
    await queue.settle([_outcome(f_a[4], Status.QUEUED, delay_s=60.0)])
    await assert_exact(queue, client, LIMITS, fn=4, key_a=3)

    # abort of an active job: it stays counted until settled
    await queue.abort(f_a[5])
    await assert_exact(queue, client, LIMITS, fn=4, key_a=3)
    await queue.settle([_outcome(f_a[5], Status.ABORTED)])
    await assert_exact(queue, client, LIMITS, fn=3, key_a=2)

    # delete of an active job; bulk abort (still counted) and bulk delete
    await queue.delete(f_a[6])
    await assert_exact(queue, client, LIMITS, fn=2, key_a=1)
    await queue.bulk(BulkAction.ABORT, JobFilter(status=Status.ACTIVE, function="g"))
    await assert_exact(queue, client, LIMITS, fn=2, key_a=1)
    assert await queue.bulk(BulkAction.DELETE, JobFilter(status=Status.ABORTING)) == 4
    await assert_exact(queue, client, LIMITS, fn=2, key_a=1)

    # a stale lease settles nothing and changes no count
    assert await queue.settle([Outcome(f_a[7].id, "stale", Status.COMPLETE)]) == [False]
    await assert_exact(queue, client, LIMITS, fn=2, key_a=1)

    # the requeued job runs again; then every lease expires and the sweep reclaims them
    again, _ = await queue.lease("w", 100)
    assert [j.id for j in again] == [f_a[3].id]
    await assert_exact(queue, client, LIMITS, fn=3, key_a=2)
    await asyncio.sleep(LEASE_S + 0.1)
    await queue.sweep()  # a service another test runs on this Redis may reclaim them first
    assert not await queue.jobs(Status.ACTIVE, 100)
    await assert_exact(queue, client, LIMITS, fn=0, key_a=0)


async def test_changed_limits_recount_the_active_jobs(queue: Queue, client: Redis) -> None:
    await queue.enqueue_many([Job("f", concurrency_key="a") for _ in range(4)])
    first, _ = await queue.lease("w", 2)  # leased without limits: nothing counted
    await assert_exact(queue, client, QueueSettings(), fn=0, key_a=0)
    await queue.configure(LIMITS)  # counted from the jobs already active
    await assert_exact(queue, client, LIMITS, fn=2, key_a=2)
    second, _ = await queue.lease("w", 1)
    await assert_exact(queue, client, LIMITS, fn=3, key_a=3)
    only_keys = QueueSettings(max_active_per_key=10)
    await queue.configure(only_keys)  # functions no longer counted
    await assert_exact(queue, client, only_keys, fn=0, key_a=3)
    await queue.configure(QueueSettings())
    await assert_exact(queue, client, QueueSettings(), fn=0, key_a=0)
    await queue.settle([_outcome(job, Status.COMPLETE) for job in first + second])
    await assert_exact(queue, client, QueueSettings(), fn=0, key_a=0)
    await queue.configure(LIMITS)
    last, _ = await queue.lease("w", 5)
    await assert_exact(queue, client, LIMITS, fn=1, key_a=1)
    await queue.settle([_outcome(last[0], Status.FAILED, error=ErrorInfo("E", "x"))])
    await assert_exact(queue, client, LIMITS, fn=0, key_a=0)
