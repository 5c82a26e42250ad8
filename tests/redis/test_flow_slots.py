"""Every key a Redis script touches carries its queue's ``{queue}`` hash tag, so a queue
lives in one Redis Cluster slot. A one-node cluster checks it: scripts loaded with a
``#!lua`` shebang may only touch keys of the slot of the keys they are called with
(scripts without one may cross slots, so the store's scripts are loaded that way here)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from redis.exceptions import ResponseError

from jobwire import ErrorInfo, FunctionLimits, Job, JobFilter, Queue, QueueSettings, Rate, Status
from jobwire.backends.base import Outcome
from jobwire.backends.redis import RedisBackend
from jobwire.backends.redis import backend as redis_backend
from jobwire.flow import BulkAction

LIMITS = QueueSettings(
    max_active=50,
    max_active_per_key=3,
    rate=Rate(100, 1.0),
    rate_per_key=Rate(2, 60.0),
    functions={"f": FunctionLimits(max_active=1, rate=Rate(5, 1.0)), "g": FunctionLimits()},
)


@pytest.fixture
async def queue(cluster_redis_url: str) -> AsyncIterator[Queue]:
    """A queue on the one-node cluster whose scripts run with the slot check on."""
    queue = Queue.from_url(cluster_redis_url, name=f"slots-{uuid4().hex[:8]}", lease_s=0.2)
    backend = queue.backend
    assert isinstance(backend, RedisBackend)
    backend._scripts = {
        name: backend.redis.register_script("#!lua\n" + source)
        for name, source in redis_backend._SOURCES.items()
    }
    async with queue:
        yield queue


async def test_the_check_catches_a_key_of_another_slot(queue: Queue) -> None:
    backend = queue.backend
    assert isinstance(backend, RedisBackend)
    stray = backend.redis.register_script("#!lua\nreturn redis.call('GET', 'jobwire:elsewhere')")
    with pytest.raises(ResponseError, match="same slot"):
        await stray(keys=[backend.prefix])


async def _settle(queue: Queue, jobs: list[Job], status: Status, **extra: Any) -> None:
    outcomes = [Outcome(job.id, job.lease or "", status, **extra) for job in jobs]
    assert await queue.settle(outcomes) == [True] * len(jobs)


async def test_every_script_keeps_to_the_queue_slot(queue: Queue) -> None:
    await queue.configure(LIMITS)
    jobs = [
        Job("f", key="k-1", concurrency_key="a"),
        Job("f", concurrency_key="a"),
        Job("g", concurrency_key="a"),
        Job("g", concurrency_key="b", retries=1),
        Job("h"),
        Job("h", scheduled=1.0),  # due at once: promoted by the lease
        Job("h", concurrency_key="a"),  # held back by the rate of key 'a'
    ]
    await queue.enqueue_many(jobs)
    leased, next_s = await queue.lease("w", 10)  # per-job limits: the scan path
    assert sorted(j.function for j in leased) == ["f", "g", "g", "h", "h"], leased
    assert next_s is not None and 59 < next_s <= 60  # when key 'a' may start one more
    assert await queue.renew([(j.id, j.lease or "") for j in leased]) == ["active"] * 5
    await queue.update(leased[0], progress=0.5)
    by_function = {j.function: j for j in leased}
    await queue.abort(by_function["f"])
    await _settle(queue, [by_function["f"]], Status.ABORTED)
    g_jobs = [j for j in leased if j.function == "g"]
    await _settle(queue, g_jobs[:1], Status.QUEUED, delay_s=30.0)
    await _settle(queue, g_jobs[1:], Status.FAILED, error=ErrorInfo("E", "x"))
    h_jobs = [j for j in leased if j.function == "h"]
    await queue.delete(h_jobs[0])
    await asyncio.sleep(0.3)  # the other h job's lease expires
    assert await queue.sweep() == 1
    await queue.retry(g_jobs[1])
    assert await queue.abort_jobs(function="f") == 1  # the queued f job
    assert await queue.retry_jobs(status="aborted") == 2
    await queue.pause()
    assert await queue.paused()
    await queue.resume()
    await queue.configure(QueueSettings(max_active=3, rate=Rate(10, 1.0)))  # the pop path
    assert len((await queue.lease("w", 10))[0]) == 3
    await queue.configure(QueueSettings())  # no limits: the fast path
    assert len((await queue.lease("w", 1))[0]) == 1
    assert await queue.bulk(BulkAction.DELETE, JobFilter()) == 6  # one was deleted before
    assert sum((await queue.counts()).values()) == 0
