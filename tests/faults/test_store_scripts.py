"""Redis scripts cannot fail halfway (Redis keeps a failed script's earlier writes): a
number read back from a job's hash that a command would refuse (a ttl EXPIRE rejects, a
non-integer count HINCRBY rejects, a non-number) is read and bounded before the first
write, so leasing, renewing and settling such a job still work and lose nothing."""

from collections.abc import AsyncIterator

import pytest
from fault_helpers import unique_name
from stores import OwnRedis

from jobwire import Queue, Status
from jobwire.backends.base import Outcome

TTL_MAX = 2**31 - 1


@pytest.fixture
async def queue(own_redis: OwnRedis) -> AsyncIterator[Queue]:
    """A queue of its own on the suite's Redis."""
    async with Queue.from_url(own_redis.url, name=unique_name("lua")) as queue:
        yield queue


def _key(queue: Queue, job_id: str) -> str:
    return f"jobwire:{{{queue.name}}}:job:{job_id}"


async def test_lease_survives_a_job_with_bad_counts(queue: Queue, own_redis: OwnRedis) -> None:
    jobs = [await queue.enqueue("f") for _ in range(3)]
    ids = [job.id for job in jobs if job is not None]
    with own_redis.client() as client:  # as an older version or a hand left them
        client.hset(_key(queue, ids[1]), mapping={"attempts": "1.5x", "heartbeat": "soon"})
    leased, _ = await queue.lease("w", 3)  # failed past ZPOPMIN before: all three lost
    assert sorted(job.id for job in leased) == sorted(ids)
    counts = await queue.counts()
    assert counts[Status.ACTIVE] == 3 and counts[Status.QUEUED] == 0, counts
    with own_redis.client() as client:
        assert client.hget(_key(queue, ids[1]), "attempts") == b"1"
        assert 0 < client.zscore(f"jobwire:{{{queue.name}}}:active", ids[1]) < 1e10
        tokens = [client.hget(_key(queue, job_id), "lease").decode() for job_id in ids]
    assert await queue.renew(list(zip(ids, tokens, strict=True))) == ["active"] * 3


@pytest.mark.parametrize("ttl", ["1e20", "99999999999999999999", "1.5", "never"])
async def test_settle_survives_a_ttl_expire_refuses(
    queue: Queue, own_redis: OwnRedis, ttl: str
) -> None:
    job = await queue.enqueue("f")
    assert job is not None
    [leased], _ = await queue.lease("w", 1)
    with own_redis.client() as client:
        client.hset(_key(queue, job.id), "ttl", ttl)
    assert await queue.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE)]) == [True]
    with own_redis.client() as client:  # finished in full, not half (status set, no index)
        assert client.hget(_key(queue, job.id), "status") == b"complete"
        assert client.zscore(f"jobwire:{{{queue.name}}}:complete", job.id) is not None
        assert client.zscore(f"jobwire:{{{queue.name}}}:active", job.id) is None
        assert client.hget(_key(queue, job.id), "lease") is None
        assert 0 < client.ttl(_key(queue, job.id)) <= TTL_MAX


async def test_retry_survives_a_bad_priority(queue: Queue, own_redis: OwnRedis) -> None:
    job = await queue.enqueue("f", retries=1)
    assert job is not None
    [leased], _ = await queue.lease("w", 1)
    with own_redis.client() as client:
        client.hset(_key(queue, job.id), "priority", "high")
    assert await queue.settle([Outcome(job.id, leased.lease or "", Status.QUEUED)]) == [True]
    [again], _ = await queue.lease("w", 1)
    assert again.id == job.id
