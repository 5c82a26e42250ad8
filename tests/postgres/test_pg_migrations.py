"""PostgreSQL schema migrations: idempotent, and safe when processes migrate at once."""

import asyncio
from uuid import uuid4

import asyncpg
import pytest

from jobwire import FunctionLimits, Job, Queue, QueueSettings, Rate
from jobwire.backends.postgres.backend import parse_url
from jobwire.backends.postgres.sql import migrate, migrations


async def _applied(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch("SELECT version FROM jobwire_migrations ORDER BY version")
    return [row["version"] for row in rows]


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_migrate_applies_each_migration_once(fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        every = [version for version, _, _ in migrations()]
        assert await migrate(conn) == every
        assert await migrate(conn) == []
        assert await _applied(conn) == every
    finally:
        await conn.close()


async def test_migration_scripts_are_idempotent_on_their_own(fresh_database: str) -> None:
    """Running a script again (say, its record was lost) changes nothing and fails nothing."""
    conn = await asyncpg.connect(fresh_database)
    try:
        await migrate(conn)
        for _, _, script in migrations():
            await conn.execute(script)
        indexes = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'jobwire_jobs' ORDER BY 1"
        )
        assert [row["indexname"] for row in indexes] == [
            "jobwire_jobs_dequeue",
            "jobwire_jobs_finished",
            "jobwire_jobs_leases",
            "jobwire_jobs_live_key",
            "jobwire_jobs_pkey",
            "jobwire_jobs_scheduled",
        ]
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(fresh_database: str) -> None:
    conns = [await asyncpg.connect(fresh_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
        every = [version for version, _, _ in migrations()]
        assert sorted(results) == [[], [], [], every], "exactly one connection migrated"
        assert await _applied(conns[0]) == every
    finally:
        for conn in conns:
            await conn.close()


async def test_backends_starting_together_on_an_empty_database(fresh_database: str) -> None:
    queues = [Queue.from_url(fresh_database, name=f"q{i}") for i in range(3)]
    try:
        await asyncio.gather(*(q.connect() for q in queues))
        job = await queues[0].enqueue("fn", x=1)
        assert job is not None
        assert [j.id for j in await queues[0].jobs()] == [job.id]
        assert await queues[1].jobs() == []
    finally:
        for q in queues:
            await q.close()


async def test_status_is_check_constrained(postgres_url: str) -> None:
    queue = Queue.from_url(postgres_url, name=f"check-{uuid4().hex[:8]}")
    async with queue:
        job = await queue.enqueue("fn")
        assert job is not None
    conn = await asyncpg.connect(parse_url(postgres_url)[0])
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE jobwire_jobs SET status = 'exploded' WHERE queue = $1 AND id = $2",
                queue.name,
                job.id,
            )
    finally:
        await conn.close()


async def test_jobs_of_version_1_carry_on_under_the_latest(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database an older Jobwire made: its jobs have no concurrency key, its queues no
    settings, and they work as before once the later migrations are in."""
    conn = await asyncpg.connect(fresh_database)
    try:
        with monkeypatch.context() as patched:
            first = [m for m in migrations() if m[0] == 1]
            patched.setattr("jobwire.backends.postgres.sql.migrations", lambda: first)
            assert await migrate(conn) == [1]
        await conn.execute(
            "INSERT INTO jobwire_queues (name) VALUES ('q');"
            "INSERT INTO jobwire_jobs (queue, id, status, function, kwargs, created, queued)"
            " VALUES ('q', 'old', 'queued', 'fn', '{}', 1, 1)"
        )
        async with Queue.from_url(fresh_database, name="q") as queue:
            await queue.connect()
            assert await _applied(conn) == [version for version, _, _ in migrations()]
            old = await queue.job("old")
            assert old is not None and old.concurrency_key is None
            assert (await queue.paused(), (await queue.settings()).limited) == (False, False)
            leased, _ = await queue.lease("w", 10)
            assert [job.id for job in leased] == ["old"]
    finally:
        await conn.close()


async def test_limits_stored_under_version_2_hold_after_version_3(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 3 derives the numbers leases read from settings stored before, and gives
    rate log rows of version 2 their totals (and the queue's bucket its starts)."""
    conn = await asyncpg.connect(fresh_database)
    try:
        with monkeypatch.context() as patched:
            first_two = [m for m in migrations() if m[0] <= 2]
            patched.setattr("jobwire.backends.postgres.sql.migrations", lambda: first_two)
            assert await migrate(conn) == [1, 2]
        settings = QueueSettings(max_active=3, functions={"f": FunctionLimits(rate=Rate(3, 60.0))})
        await conn.execute(
            "INSERT INTO jobwire_queues (name, settings, limited) VALUES ('q', $1, true)",
            settings.to_json(),
        )
        await conn.execute(  # two starts of f, logged as version 2 did
            "INSERT INTO jobwire_starts (queue, scope, name, at, n)"
            " VALUES ('q', 'function', 'f', extract(epoch FROM now()) - 1, 2)"
        )
        async with Queue.from_url(fresh_database, name="q") as queue:
            await queue.enqueue_many([Job("f") for _ in range(5)] + [Job("g") for _ in range(5)])
            leased, _ = await queue.lease("w", 10)
            # f's rate has room for one more; max_active 3 takes two of g
            assert sorted(job.function for job in leased) == ["f", "g", "g"]
        limits = await conn.fetchrow(
            "SELECT max_active, scoped, scoped_rate_limit FROM jobwire_queues WHERE name = 'q'"
        )
        assert tuple(limits) == (3, True, 3)
        totals = await conn.fetch(
            "SELECT scope, total FROM jobwire_starts WHERE queue = 'q' ORDER BY scope, at"
        )
        assert [tuple(row) for row in totals] == [
            ("function", 2),
            ("function", 3),
            ("queue", 2),
            ("queue", 5),
        ]
    finally:
        await conn.close()
