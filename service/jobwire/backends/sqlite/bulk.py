"""Bulk operations by filter: each call is one short write transaction that visits at
most ``limit`` jobs of the queue in id order from a cursor, so a whole pass visits each
job once (a retried job keeps its id, behind the cursor) and never holds the database
for long. The filter is SQL, evaluated on the visited rows only."""

from jobwire.backends.codec import error_json
from jobwire.backends.sqlite.rows import (
    VISIBLE,
    abort_row,
    key_holders,
    requeue_finished,
    rows_by_id,
    store_rows,
)
from jobwire.backends.sqlite.store import Tx
from jobwire.flow import BulkAction, JobFilter
from jobwire.job import ErrorInfo

_FINISHED = ("complete", "failed", "aborted")
_HELD = ("active", "aborting")
_ABORTED = error_json(ErrorInfo("Aborted", "aborted")).decode()  # as Queue.abort's default


async def bulk_step(
    tx: Tx, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
) -> tuple[int, str | None]:
    """Apply ``action`` to the matching jobs among the next ``limit`` after ``cursor``.

    Returns:
        How many jobs changed, and the cursor to go on from (``None``: done).
    """
    condition, params = filter_sql(where)
    visited = list(
        await tx.db.execute_fetchall(
            f"SELECT id, {condition} FROM jobwire_jobs WHERE queue = :queue AND id > :cursor"
            " ORDER BY id LIMIT :limit",
            {**params, "queue": tx.queue, "cursor": cursor or "", "limit": limit, "now": tx.now},
        )
    )
    hits = [job_id for job_id, hit in visited if hit]
    next_cursor = visited[-1][0] if len(visited) == limit else None
    if not hits:
        return 0, next_cursor
    if action == BulkAction.DELETE:
        return await _delete(tx, hits), next_cursor
    if action == BulkAction.ABORT:
        return await _abort(tx, hits), next_cursor
    return await _retry(tx, hits), next_cursor


def filter_sql(where: JobFilter) -> tuple[str, dict[str, object]]:
    """The filter as an SQL condition on a ``jobwire_jobs`` row (``:now`` is to be
    bound: rows past their ttl never match), with its parameters."""
    clauses = [VISIBLE]
    params: dict[str, object] = {}
    if where.status is not None:
        clauses.append("status = :status")
        params["status"] = where.status.value
    if where.function is not None:
        clauses.append("function = :function")
        params["function"] = where.function
    if where.key_prefix is not None:
        clauses.append("substr(coalesce(key, ''), 1, length(:key_prefix)) = :key_prefix")
        params["key_prefix"] = where.key_prefix
    if where.enqueued_before is not None:
        clauses.append("created < :enqueued_before")
        params["enqueued_before"] = where.enqueued_before
    if where.enqueued_after is not None:
        clauses.append("created >= :enqueued_after")
        params["enqueued_after"] = where.enqueued_after
    return "(" + " AND ".join(clauses) + ")", params


async def _delete(tx: Tx, ids: list[str]) -> int:
    marks = ", ".join("?" * len(ids))
    statuses = [
        status
        for (status,) in await tx.db.execute_fetchall(
            f"DELETE FROM jobwire_jobs WHERE queue = ? AND id IN ({marks}) RETURNING status",
            (tx.queue, *ids),
        )
    ]
    tx.freed += sum(status in _HELD for status in statuses)
    tx.changed.update(ids)
    return len(statuses)


async def _abort(tx: Tx, ids: list[str]) -> int:
    rows = await rows_by_id(tx.db, tx.queue, ids)
    aborted = [row for row in rows.values() if abort_row(tx, row, _ABORTED)]
    await store_rows(tx, aborted)
    return len(aborted)


async def _retry(tx: Tx, ids: list[str]) -> int:
    """Queue the finished ones again, in id order; a job whose dedup key a live job holds
    (or one retried just before it) is skipped, as the single retry refuses it."""
    rows = [row for row in (await rows_by_id(tx.db, tx.queue, ids)).values()]
    finished = sorted((row for row in rows if row["status"] in _FINISHED), key=lambda r: r["id"])
    taken = set(await key_holders(tx, [row["key"] for row in finished if row["key"]]))
    retried = []
    for row in finished:
        if row["key"] is not None:
            if row["key"] in taken:
                continue
            taken.add(row["key"])
        requeue_finished(row, tx.now, await tx.next_seq())
        retried.append(row)
    await store_rows(tx, retried)
    tx.work = tx.work or bool(retried)
    return len(retried)
