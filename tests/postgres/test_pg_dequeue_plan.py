"""The dequeue statement reads the partial indexes, so its cost stays flat as the backlog grows."""

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from jobwire import Job, Queue
from jobwire.backends.postgres.backend import parse_url
from jobwire.backends.postgres.sql import LEASE

BACKLOG = 3000


@pytest.fixture
async def backlog(postgres_url: str) -> AsyncIterator[tuple[Queue, asyncpg.Connection]]:
    """A queue with a few thousand queued jobs, and an admin connection to the database."""
    queue = Queue.from_url(postgres_url, name=f"plan-{uuid4().hex[:8]}")
    await queue.enqueue_many([Job("fn", priority=i % 5) for i in range(BACKLOG)])
    await queue.enqueue("fn", scheduled=2e9)
    conn = await asyncpg.connect(parse_url(postgres_url)[0])
    await conn.execute("ANALYZE jobwire_jobs")
    try:
        yield queue, conn
    finally:
        await conn.close()
        await queue.close()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _nodes(child)
    return nodes


def _assert_indexed(explained: str) -> None:
    plan = json.loads(explained)[0]["Plan"]
    tree = _nodes(plan)
    # (jobwire_queues, one row per queue, is read for the queue's flags: a table this small
    # is read whole, and one big enough for an index is one whose statistics say so)
    seq_scans = [
        n for n in tree if n["Node Type"] == "Seq Scan" and n["Relation Name"] != "jobwire_queues"
    ]
    assert seq_scans == [], f"sequential scan in the dequeue plan: {seq_scans}"
    indexes = {n.get("Index Name") for n in tree}
    assert "jobwire_jobs_dequeue" in indexes, indexes
    assert "jobwire_jobs_scheduled" in indexes, indexes
    dequeue = next(n for n in tree if n.get("Index Name") == "jobwire_jobs_dequeue")
    assert dequeue["Node Type"] == "Index Scan", "must read the index in order, not sort"


async def test_lease_uses_the_partial_dequeue_index(
    backlog: tuple[Queue, asyncpg.Connection],
) -> None:
    queue, conn = backlog
    explained = await conn.fetchval(
        "EXPLAIN (FORMAT JSON) " + LEASE, queue.name, 10, "token", "worker", 30.0
    )
    _assert_indexed(explained)


async def test_generic_lease_plan_uses_the_partial_dequeue_index(
    backlog: tuple[Queue, asyncpg.Connection],
) -> None:
    """A prepared statement may switch to a generic plan (queue name unknown): same indexes."""
    queue, conn = backlog
    await conn.execute(f"PREPARE lease_plan(text, integer, text, text, float8) AS {LEASE}")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    explained = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) EXECUTE lease_plan('{queue.name}', 10, 'token', 'worker', 30)"
    )
    _assert_indexed(explained)


async def test_lease_reads_only_the_rows_it_takes(
    backlog: tuple[Queue, asyncpg.Connection],
) -> None:
    """Executed, the dequeue index scan stops after the jobs leased, whatever the backlog."""
    queue, conn = backlog
    transaction = conn.transaction()
    await transaction.start()
    try:
        explained = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + LEASE, queue.name, 10, "token", "worker", 30.0
        )
    finally:
        await transaction.rollback()  # EXPLAIN ANALYZE really leased them
    tree = _nodes(json.loads(explained)[0]["Plan"])
    dequeue = next(n for n in tree if n.get("Index Name") == "jobwire_jobs_dequeue")
    assert dequeue["Actual Rows"] <= 11, dequeue["Actual Rows"]
    leased = await queue.lease("w", 1)
    assert len(leased[0]) == 1, "the rolled-back lease left the jobs queued"
