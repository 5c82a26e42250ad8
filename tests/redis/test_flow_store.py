"""Flow control details of the Redis store: bulk passes in chunks, the lease's bounded
scan, wake-ups only where a limit held a lease back, and scripts that survive bad
stored values."""

from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from jobwire import ErrorInfo, FunctionLimits, Job, JobFilter, Queue, QueueSettings, Rate, Status
from jobwire.backends.base import Outcome
from jobwire.flow import BulkAction


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    async with Queue.from_url(redis_url, name=f"flow-{uuid4().hex[:8]}") as q:
        yield q


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def _key(queue: Queue, name: str) -> str:
    return f"jobwire:{{{queue.name}}}:{name}"


async def _fail_all(queue: Queue) -> int:
    """Lease every queued job and fail it; returns how many."""
    failed = 0
    while True:
        leased, _ = await queue.lease("w", 500)
        if not leased:
            return failed
        error = ErrorInfo("E", "x")
        await queue.settle(
            [Outcome(j.id, j.lease or "", Status.FAILED, error=error) for j in leased]
        )
        failed += len(leased)


async def test_a_bulk_retry_pass_retries_each_job_once_while_they_fail_again(
    queue: Queue,
) -> None:
    n = 600  # past Redis's compact encoding: ZSCAN then walks the index in chunks
    await queue.enqueue_many([Job("f") for _ in range(n)])
    assert await _fail_all(queue) == n
    where, cursor, retried, calls = JobFilter(status=Status.FAILED), None, 0, 0
    while True:
        changed, cursor = await queue.backend.bulk(BulkAction.RETRY, where, cursor, 50)
        retried, calls = retried + changed, calls + 1
        assert changed <= 50 * 1.25, changed  # COUNT is ZSCAN's hint: a little over at times
        await _fail_all(queue)  # the retried jobs fail again at once, back in the index
        if cursor is None:
            break
    assert retried == n
    assert calls >= n // 60
    attempts = [job.attempts for job in await queue.jobs(Status.FAILED, n)]
    assert attempts == [2] * n  # the first attempt and one retry each


async def test_bulk_delete_in_chunks_visits_every_status(queue: Queue) -> None:
    await queue.enqueue_many([Job("f", key=f"k-{i}") for i in range(300)])
    await _fail_all(queue)
    await queue.enqueue_many([Job("f", key=f"k-{i}") for i in range(300)])  # keys free again
    await queue.enqueue("f", scheduled=4e9)
    await queue.lease("w", 100)
    cursor, deleted = None, 0
    while True:
        changed, cursor = await queue.backend.bulk(BulkAction.DELETE, JobFilter(), cursor, 100)
        deleted += changed
        if cursor is None:
            break
    assert deleted == 601
    assert sum((await queue.counts()).values()) == 0
    assert await queue.enqueue("f", key="k-1") is not None  # dedup keys went with the jobs


async def test_a_lease_scans_a_bounded_window_of_the_queue(queue: Queue) -> None:
    await queue.configure(QueueSettings(functions={"slow": FunctionLimits(max_active=1)}))
    await queue.enqueue("slow")
    assert len((await queue.lease("w", 10))[0]) == 1
    await queue.enqueue_many([Job("slow") for _ in range(999)] + [Job("quick")])
    leased, _ = await queue.lease("w", 10)  # the 1000th queued job is within the window
    assert [job.function for job in leased] == ["quick"]
    await queue.enqueue_many([Job("slow") for _ in range(5)] + [Job("quick")])
    leased, _ = await queue.lease("w", 10)  # 1004 slow jobs ahead of it: out of reach
    assert leased == []
    assert (await queue.counts())[Status.QUEUED] == 1005


async def _wake_ups(client: Redis, queue: Queue, work: Callable[[], Awaitable[object]]) -> int:
    """How many wake-ups ``work()`` publishes on the queue's channel."""
    pubsub = client.pubsub()
    await pubsub.subscribe(_key(queue, "wake"))
    assert (await pubsub.get_message(timeout=1) or {}).get("type") == "subscribe"
    await work()
    count = 0
    while await pubsub.get_message(timeout=0.2) is not None:
        count += 1
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    return count


async def test_a_freed_slot_wakes_leases_only_when_a_limit_held_one(
    queue: Queue, client: Redis
) -> None:
    await queue.configure(QueueSettings(max_active=2))
    await queue.enqueue_many([Job("f") for _ in range(4)])
    leased, _ = await queue.lease("w", 1)  # below the limit: nothing held back
    done = Outcome(leased[0].id, leased[0].lease or "", Status.COMPLETE)
    assert await _wake_ups(client, queue, lambda: queue.settle([done])) == 0
    leased, _ = await queue.lease("w", 10)  # takes two; the third is held by max_active
    assert len(leased) == 2
    outcomes = [Outcome(j.id, j.lease or "", Status.COMPLETE) for j in leased]
    assert await _wake_ups(client, queue, lambda: queue.settle(outcomes)) == 1


async def test_rate_logs_expire_when_idle(queue: Queue, client: Redis) -> None:
    await queue.configure(QueueSettings(rate=Rate(10, 2.0), rate_per_key=Rate(5, 3.0)))
    await queue.enqueue("f", concurrency_key="tenant")
    assert len((await queue.lease("w", 1))[0]) == 1
    assert 2000 < await client.pttl(_key(queue, "starts")) <= 3000
    assert 3000 < await client.pttl(_key(queue, "starts:k:tenant")) <= 4000


async def test_scripts_survive_bad_stored_values(queue: Queue, client: Redis) -> None:
    settings = QueueSettings(max_active_per_key=5, functions={"f": FunctionLimits(max_active=5)})
    await queue.configure(settings)
    await queue.enqueue_many([Job("f", concurrency_key="a") for _ in range(3)])
    await client.hset(_key(queue, "running_fn"), "f", "lots")  # as a hand might leave them
    await client.hset(_key(queue, "running_key"), "a", "1.5x")
    leased, _ = await queue.lease("w", 10)
    assert len(leased) == 3
    await client.hset(_key(queue, f"job:{leased[0].id}"), "held", "never")
    outcomes = [Outcome(j.id, j.lease or "", Status.COMPLETE) for j in leased]
    assert await queue.settle(outcomes) == [True] * 3
    await client.hset(_key(queue, "flow"), "limits", "x y")  # unreadable limits: none
    await queue.enqueue("f", concurrency_key="a")
    assert len((await queue.lease("w", 10))[0]) == 1
    assert await queue.settings() == settings  # the stored settings are intact


async def test_settings_without_a_limit_keep_the_fast_path(queue: Queue, client: Redis) -> None:
    settings = QueueSettings(functions={"f": FunctionLimits()})
    await queue.configure(settings)
    assert await queue.settings() == settings
    assert await client.hgetall(_key(queue, "flow")) == {"settings": settings.to_json()}
    await queue.configure(QueueSettings(max_active=1))
    assert await client.hget(_key(queue, "flow"), "limits") is not None
    await queue.configure(QueueSettings())
    assert await client.hgetall(_key(queue, "flow")) == {}
