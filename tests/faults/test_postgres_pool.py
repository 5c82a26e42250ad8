"""asyncpg: a connection the server dropped leaves the pool, and a read (idempotent) that
met it is retried once on a fresh connection, so reads go on through terminated
connections; writes are not retried (the caller sees Unavailable)."""

import asyncpg
from fault_helpers import unique_name
from stores import OwnPostgres

from jobwire import Queue

ROUNDS = 15


async def _terminate_others(admin: asyncpg.Connection) -> None:
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        " AND datname = current_database() AND backend_type = 'client backend'"
    )


async def test_reads_go_on_through_terminated_connections(own_postgres: OwnPostgres) -> None:
    queue = Queue.from_url(f"{own_postgres.url}?pool_size=2", name=unique_name("pool"))
    admin = await asyncpg.connect(own_postgres.url)
    try:
        async with queue:
            job = await queue.enqueue("f")
            assert job is not None
            failures: list[str] = []
            for _ in range(ROUNDS):
                await _terminate_others(admin)
                try:
                    found = await queue.job(job.id)
                    assert found is not None and found.id == job.id
                    counts = await queue.counts()
                    assert sum(counts.values()) == 1
                except Exception as exc:  # counted, then asserted on
                    failures.append(repr(exc))
            assert not failures, failures
            assert await queue.enqueue("f") is not None  # the pool is whole again
    finally:
        await admin.close()
