"""PostgreSQL storage details: URLs, shared pools, JSON fidelity, ttl housekeeping."""

import asyncio
from uuid import uuid4

import asyncpg
import orjson
import pytest

from jobwire import Job, Queue, Status
from jobwire.backends.base import Outcome
from jobwire.backends.postgres.backend import PostgresBackend, parse_url


def _name() -> str:
    return f"store-{uuid4().hex[:8]}"


def test_parse_url_strips_pool_size_and_normalises_the_scheme() -> None:
    assert parse_url("postgres://u:p@h:5/db") == ("postgresql://u:p@h:5/db", 10)
    assert parse_url("postgresql+asyncpg://h/db?pool_size=3&sslmode=disable") == (
        "postgresql://h/db?sslmode=disable",
        3,
    )
    for bad in ("postgresql://h/db?pool_size=0", "postgresql://h/db?pool_size=x"):
        with pytest.raises(ValueError, match="pool_size"):
            parse_url(bad)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
async def test_every_scheme_opens_a_postgres_queue(postgres_url: str, scheme: str) -> None:
    url = scheme + postgres_url[postgres_url.index("://") :] + "?pool_size=2"
    async with Queue.from_url(url, name=_name()) as queue:
        assert isinstance(queue.backend, PostgresBackend)
        job = await queue.enqueue("fn")
        assert job is not None and await queue.job(job.id) is not None
        pool = await queue.backend._store.pool()
        assert pool.get_max_size() == 2


async def test_siblings_share_the_pool_and_only_the_owner_closes_it(postgres_url: str) -> None:
    owner = PostgresBackend(postgres_url, _name())
    sibling = owner.for_queue(_name())
    await owner.connect()
    await sibling.connect()
    pool = await owner._store.pool()
    assert await sibling._store.pool() is pool
    await sibling.close()
    assert not pool.is_closing()
    assert await owner.counts()
    await owner.close()
    assert pool.is_closing()


async def test_a_callers_pool_is_used_and_left_open(postgres_url: str) -> None:
    dsn, _ = parse_url(postgres_url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with Queue(PostgresBackend(postgres_url, _name(), pool=pool)) as queue:
            assert await queue.enqueue("fn") is not None
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_json_round_trips_exactly(postgres_url: str) -> None:
    """Key order, float vs int, big floats and escapes come back as orjson wrote them."""
    value = {"z": 1, "a": 1.0, "big": 1e20, "tiny": 5e-324, "s": 'é\u0000"\\', "n": None}
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        job = await queue.enqueue("fn", **value)
        assert job is not None
        [leased], _ = await queue.lease("w", 1)
        await queue.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE, result=value)])
        stored = await queue.job(job.id)
    assert stored is not None
    for got in (stored.kwargs, stored.result):
        assert orjson.dumps(got) == orjson.dumps(value)
        assert type(got["a"]) is float and type(got["big"]) is float


async def test_expired_jobs_are_hidden_then_deleted_by_the_sweep(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        job = await queue.enqueue("fn", ttl=1, key="k")
        assert job is not None
        [leased], _ = await queue.lease("w", 1)
        await queue.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE, result=1)])
        assert (await queue.info())["counts"]["complete"] == 1
        await asyncio.sleep(1.2)
        assert await queue.job(job.id) is None
        assert await queue.jobs() == []
        assert (await queue.info())["counts"]["complete"] == 0
        dsn, _ = parse_url(postgres_url)
        conn = await asyncpg.connect(dsn)
        try:
            count = "SELECT count(*) FROM jobwire_jobs WHERE queue = $1"
            assert await conn.fetchval(count, queue.name) == 1, "hidden, not yet deleted"
            await queue.sweep()
            assert await conn.fetchval(count, queue.name) == 0
        finally:
            await conn.close()


async def test_the_id_of_an_expired_unswept_job_can_be_used_again(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        first = await queue.enqueue(Job("fn", id="reused", ttl=1, kwargs={"n": 1}))
        assert first is not None
        [leased], _ = await queue.lease("w", 1)
        await queue.settle([Outcome("reused", leased.lease or "", Status.FAILED)])
        assert await queue.enqueue(Job("fn", id="reused", kwargs={"n": 2})) is None
        await asyncio.sleep(1.2)
        again = await queue.enqueue(Job("fn", id="reused", kwargs={"n": 3}))
        assert again is not None
        stored = await queue.job("reused")
        assert stored is not None
        assert (stored.status, stored.kwargs) == (Status.QUEUED, {"n": 3})


async def test_queues_find_job_and_delete(postgres_url: str) -> None:
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        job = await queue.enqueue("fn", key="k")
        assert job is not None
        assert queue.name in await queue.backend.queues()
        found = await queue.backend.find_job(job.id)
        assert found is not None and found.queue == queue.name
        await queue.delete(job)
        assert await queue.job(job.id) is None
        assert await queue.enqueue("fn", key="k") is not None, "delete frees the key"
        assert not await queue.backend.delete(job.id)
