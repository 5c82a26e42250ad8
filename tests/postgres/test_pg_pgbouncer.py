"""PostgreSQL behind PgBouncer in transaction mode: why the store's ``prepared_statements``
and ``listen_url`` options exist, and that the store works with them.

PgBouncer 1.18 (Debian 12's) runs each transaction on whichever server session is free and
knows nothing of prepared statements: one parsed in a transaction stays on its session.
The tests pin server sessions by holding them in open transactions, with a pool of two.
"""

import asyncio
import contextlib
import importlib.resources
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest

from jobwire import Queue, Status, Worker
from jobwire.backends.postgres import connect
from jobwire.backends.postgres.connect import parse_options

StartBouncer = Callable[..., contextlib.AbstractContextManager[str]]
PROMPT_S = 2.0  # a wake-up through LISTEN arrives well within this


def test_parse_options_takes_out_the_pooler_options() -> None:
    options = parse_options(
        "postgresql://u@bouncer:6432/db?prepared_statements=false&sslmode=disable"
        "&listen_url=postgres://u@db:5432/db%3Fsslmode%3Drequire"
    )
    assert options.dsn == "postgresql://u@bouncer:6432/db?sslmode=disable"
    assert options.prepared_statements is False
    assert options.listen_dsn == "postgresql://u@db:5432/db?sslmode=require"
    plain = parse_options("postgresql://u@db/db?prepared_statements=TRUE")
    assert plain.prepared_statements is True
    assert plain.listen_dsn == plain.dsn == "postgresql://u@db/db"
    with pytest.raises(ValueError, match="prepared_statements"):
        parse_options("postgresql://u@db/db?prepared_statements=no")
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        parse_options("postgresql://u@db/db?listen_url=redis://db")


class Sessions:
    """Other clients of a PgBouncer that pin its server sessions in open transactions."""

    def __init__(self, bouncer_url: str) -> None:
        self._url = bouncer_url
        self._held: dict[int, asyncpg.Connection] = {}

    async def hold_all(self, count: int) -> set[int]:
        """Hold ``count`` server sessions (the whole pool); return their backend pids."""
        for _ in range(count):
            conn = await asyncpg.connect(self._url, statement_cache_size=0)
            await conn.execute("BEGIN")
            self._held[await conn.fetchval("SELECT pg_backend_pid()")] = conn
        return set(self._held)

    async def release(self, pid: int) -> None:
        """End the transaction holding the session ``pid``: it is free for others."""
        conn = self._held.pop(pid)
        await conn.execute("COMMIT")
        await conn.close()

    async def close(self) -> None:
        for pid in list(self._held):
            await self.release(pid)


@pytest.fixture
async def small_bouncer(
    start_pgbouncer: StartBouncer, postgres_url: str
) -> AsyncIterator[tuple[str, Sessions]]:
    """A PgBouncer of two server sessions, on a database of the test's own (so that the
    store migrates it through PgBouncer), and the means to pin its sessions."""
    name = f"jobwire_pgb_{uuid4().hex[:12]}"
    dsn = parse_options(postgres_url).dsn
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        with start_pgbouncer(dsn, pool_size=2) as bouncer:
            sessions = Sessions(urlunsplit(urlsplit(bouncer)._replace(path=f"/{name}")))
            try:
                yield sessions._url, sessions
            finally:
                await sessions.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _read_on_each_session(queue: Queue, job_id: str, sessions: Sessions) -> None:
    """Read the job on one server session, then on the other (the same statement)."""
    pids = sorted(await sessions.hold_all(2))
    await sessions.close()
    for pid in pids:
        await sessions.hold_all(2)  # the pool's two sessions
        await sessions.release(pid)  # the store's next transaction runs on this one
        assert await queue.job(job_id) is not None
        await sessions.close()


def _store_url(bouncer_url: str, postgres_url: str, **options: object) -> str:
    """The queue URL through ``bouncer_url``, one pooled connection, and ``options``."""
    direct = urlunsplit(urlsplit(postgres_url)._replace(path=urlsplit(bouncer_url).path))
    query = {"pool_size": 1, **options}
    if options:
        query["listen_url"] = direct
    return f"{bouncer_url}?{urlencode(query)}"


async def test_the_store_needs_the_option_through_transaction_pooling(
    small_bouncer: tuple[str, Sessions], postgres_url: str
) -> None:
    url, sessions = small_bouncer
    async with Queue.from_url(_store_url(url, postgres_url), name="pgb") as queue:
        job = await queue.enqueue("fn")
        assert job is not None
        with pytest.raises(asyncpg.InvalidSQLStatementNameError):
            await _read_on_each_session(queue, job.id, sessions)


async def test_the_store_works_from_session_to_session_with_the_options(
    small_bouncer: tuple[str, Sessions], postgres_url: str
) -> None:
    url, sessions = small_bouncer
    store_url = _store_url(url, postgres_url, prepared_statements="false")
    async with (
        Queue.from_url(store_url, name="pgb") as queue,
        Queue.from_url(store_url, name="pgb") as waiter,
    ):
        job = await queue.enqueue("fn")  # migrates the new database through PgBouncer
        assert job is not None
        await _read_on_each_session(queue, job.id, sessions)
        # Wake-ups come over the direct LISTEN connection.
        waiting = asyncio.create_task(waiter.backend.wait_for_work(30))
        await asyncio.sleep(0.1)
        await queue.enqueue("fn")
        await asyncio.wait_for(waiting, PROMPT_S)
        leased, _ = await waiter.backend.lease("w", 2)
        assert len(leased) == 2 and {job.status for job in leased} == {Status.ACTIVE}


async def test_type_look_ups_through_the_pooler_run_in_one_transaction(
    pgbouncer_queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg looks types up with JIT off for the session around the query; outside a
    # transaction those three statements would run on three server sessions, and JIT
    # compiling the look-up takes seconds.
    look_ups: list[bool] = []
    look_up = asyncpg.Connection._introspect_types

    async def watched(conn: asyncpg.Connection, *args: Any) -> Any:
        look_ups.append(conn.is_in_transaction())
        return await look_up(conn, *args)

    monkeypatch.setattr(asyncpg.Connection, "_introspect_types", watched)

    async def add(ctx: dict[str, Any], *, a: int) -> int:
        return a + 1

    async with Queue.from_url(pgbouncer_queue_url, name=f"pgb-{uuid4().hex[:8]}") as queue:
        worker = Worker(queue, [add], concurrency=4, handle_signals=False)
        running = asyncio.create_task(worker.start())
        try:
            jobs = [await queue.enqueue("add", a=n) for n in range(8)]
            for job in jobs:
                assert job is not None
                assert (await queue.wait(job, timeout=5)).result == job.kwargs["a"] + 1
            assert await queue.info()
        finally:
            await worker.stop()
            await running
    assert look_ups and all(look_ups)


_ALIASES = {"integer": "int4", "bigint": "int8", "smallint": "int2", "boolean": "bool"}
_ALIASES |= {"double precision": "float8", "real": "float4"}


def test_every_array_type_the_statements_bind_is_looked_up_in_a_transaction() -> None:
    source = importlib.resources.files("jobwire.backends.postgres").joinpath("sql.py")
    casts = set(re.findall(r"::\s*([a-z][a-z0-9_ ]*?)\s*\[\]", source.read_text()))
    assert casts
    assert {_ALIASES.get(name, name) for name in casts} <= set(connect._ARRAY_TYPES)
