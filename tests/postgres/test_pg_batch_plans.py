"""Batch statements reach each job by a primary-key probe, whatever the statistics say.

A queue table's statistics are always stale (here: a brand-new queue nobody analyzed), and
the planner then believes a queue holds a row or two. These tests run the statements on a
few hundred jobs and check the executed plans: every ``jobwire_jobs`` read is a probe by
id (or the dequeue index), never a scan of all the queue's active jobs per input row (the
quadratic plan a pushed-down status test or a nested loop over two row sets would give).
"""

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from jobwire import Job, Queue
from jobwire.backends.postgres import sql
from jobwire.backends.postgres.backend import parse_url

BATCH = 300
# Indexes a batch statement may read: the primary key (probes by id) and the partial
# indexes of the queued and scheduled jobs (dequeue and promotion read only what they take).
_PROBED_INDEXES = ("jobwire_jobs_pkey", "jobwire_jobs_dequeue", "jobwire_jobs_scheduled")


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _nodes(child)
    return nodes


@pytest.fixture
async def leased(postgres_url: str) -> AsyncIterator[tuple[Queue, list[Job], asyncpg.Connection]]:
    """A queue with BATCH active jobs (and as many queued), plus an admin connection."""
    queue = Queue.from_url(postgres_url, name=f"batch-{uuid4().hex[:8]}")
    await queue.enqueue_many([Job("fn") for _ in range(2 * BATCH)])
    jobs, _ = await queue.lease("w", BATCH)
    assert len(jobs) == BATCH
    conn = await asyncpg.connect(parse_url(postgres_url)[0])
    try:
        yield queue, jobs, conn
    finally:
        await conn.close()
        await queue.close()


async def _executed_plan(conn: asyncpg.Connection, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run ``query`` under EXPLAIN ANALYZE in a rolled-back transaction; its plan nodes."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        explained = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + query, *args)
    finally:
        await transaction.rollback()
    return _nodes(json.loads(explained)[0]["Plan"])


def _assert_probes(nodes: list[dict[str, Any]], rows: int) -> None:
    for node in nodes:
        if node.get("Relation Name") != "jobwire_jobs" or "Scan" not in node["Node Type"]:
            continue
        assert node["Node Type"] != "Seq Scan", node
        assert node.get("Index Name") in _PROBED_INDEXES, node
        read = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        assert read * node["Actual Loops"] <= 2 * rows, f"read {read} x {node['Actual Loops']}"


async def test_settle_probes_each_job(
    leased: tuple[Queue, list[Job], asyncpg.Connection],
) -> None:
    queue, jobs, conn = leased
    nodes = await _executed_plan(
        conn,
        sql.SETTLE,
        queue.name,
        [job.id for job in jobs],
        [job.lease for job in jobs],
        ["complete"] * BATCH,
        ["1"] * BATCH,
        [None] * BATCH,
        [0.0] * BATCH,
        [False] * BATCH,
        "events",
        "wake",
    )
    _assert_probes(nodes, BATCH)


async def test_renew_probes_each_job(leased: tuple[Queue, list[Job], asyncpg.Connection]) -> None:
    queue, jobs, conn = leased
    nodes = await _executed_plan(
        conn, sql.RENEW, queue.name, [job.id for job in jobs], [job.lease for job in jobs], 30.0
    )
    _assert_probes(nodes, BATCH)


async def test_lease_probes_each_job(leased: tuple[Queue, list[Job], asyncpg.Connection]) -> None:
    queue, _, conn = leased
    nodes = await _executed_plan(conn, sql.LEASE, queue.name, BATCH, "token", "worker", 30.0)
    _assert_probes(nodes, BATCH)
