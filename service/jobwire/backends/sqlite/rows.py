"""Rows of the SQLite backend's ``jobwire_jobs`` table, and the status transitions on
them: the counterparts of ``redis/codec.py`` and of the helpers in ``redis/lua/prelude.lua``.

A row is read as a ``dict`` of its columns, changed in Python inside the caller's write
transaction, and written back whole (``store_rows``).
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import aiosqlite
import orjson

from jobwire.backends.base import Outcome
from jobwire.backends.codec import error_json, job_from_row
from jobwire.backends.sqlite.store import Row, Tx
from jobwire.job import Job, Status

RowData = dict[str, Any]

LIVE_SQL = "('queued', 'scheduled', 'active', 'aborting')"
VISIBLE = "(expires_at IS NULL OR expires_at > :now)"  # finished rows past ttl are gone
_HELD = ("active", "aborting")  # statuses in which an attempt holds a lease
HELD_SQL = "('active', 'aborting')"
_FINISHED = ("complete", "failed", "aborted")
_ID_CHUNK = 500  # ids per IN (...) list
_PROMOTE_LIMIT = 1000  # scheduled jobs promoted per lease, as in lease.lua
_FIRST_DUE = "SELECT MIN(scheduled) FROM jobwire_jobs WHERE queue = :queue AND status = 'scheduled'"
_ACTIVE = f"SELECT COUNT(*) FROM jobwire_jobs WHERE queue = :queue AND status IN {HELD_SQL}"
_RATE_USED = (
    "SELECT coalesce(SUM(n), 0) FROM jobwire_starts WHERE queue = :queue AND scope = ''"
    " AND at > :now - q.rate_period_s"
)

# How a lease marks a queued job active: its attempt's token, worker and lease expiry.
LEASE_SET = """status = 'active', attempts = attempts + 1, started = :now, touched = :now,
    lease = :token || '.' || seq, worker = :worker,
    lease_expires = :now + CASE WHEN heartbeat > 0 THEN heartbeat ELSE :lease_s END"""
# The plain lease: the first :limit queued jobs in priority/FIFO order.
LEASE_HEAD = f"""
UPDATE jobwire_jobs SET {LEASE_SET}
WHERE queue = :queue AND id IN (
    SELECT id FROM jobwire_jobs WHERE queue = :queue AND status = 'queued'
    ORDER BY priority DESC, seq LIMIT :limit)
RETURNING *"""

_COLUMNS = (
    "queue", "id", "function", "kwargs", "key", "status", "priority", "seq", "timeout",
    "heartbeat", "retries", "attempts", "ttl", "scheduled", "retry_delay", "retry_backoff",
    "progress", "meta", "result", "error", "created", "queued", "started", "completed",
    "touched", "worker", "lease", "lease_expires", "expires_at", "concurrency_key",
)  # fmt: skip
_MUTABLE = (
    "status", "seq", "attempts", "scheduled", "progress", "meta", "result", "error",
    "queued", "started", "completed", "touched", "worker", "lease", "lease_expires",
    "expires_at",
)  # fmt: skip
_INSERT = "INSERT INTO jobwire_jobs ({}) VALUES ({})".format(
    ", ".join(_COLUMNS), ", ".join(":" + name for name in _COLUMNS)
)
_SAVE = "UPDATE jobwire_jobs SET {} WHERE queue = :queue AND id = :id".format(
    ", ".join(f"{name} = :{name}" for name in _MUTABLE)
)


class Enqueue:
    """One enqueue batch: new jobs are inserted, duplicates (by id or live key) are not."""

    def __init__(self, tx: Tx, jobs: Sequence[Job]) -> None:
        self.tx = tx
        self.jobs = jobs

    async def run(self) -> list[tuple[Job, bool]]:
        tx = self.tx
        ids = await self._live_ids()
        holders = await self._key_holders()
        new_rows: list[RowData] = []
        existing: dict[int, str] = {}
        for index, job in enumerate(self.jobs):
            other = job.id if job.id in ids else holders.get(job.key) if job.key else None
            if other is not None:
                existing[index] = other
                continue
            new_rows.append(await new_row(tx, job))
            ids.add(job.id)
            if job.key:
                holders[job.key] = job.id
            _mark_enqueued(job, tx.now)
        await tx.db.executemany(_INSERT, new_rows)
        tx.work = bool(new_rows)
        return await self._pairs(existing)

    async def _live_ids(self) -> set[str]:
        """Ids of the batch that exist already; rows of those past their ttl are dropped."""
        rows = await rows_by_id(self.tx.db, self.tx.queue, [job.id for job in self.jobs])
        gone = [job_id for job_id, row in rows.items() if _expired(row, self.tx.now)]
        if gone:
            await self.tx.db.executemany(
                "DELETE FROM jobwire_jobs WHERE queue = ? AND id = ?",
                [(self.tx.queue, job_id) for job_id in gone],
            )
        return set(rows) - set(gone)

    async def _key_holders(self) -> dict[str, str]:
        """Dedup key -> id of the live job holding it, for the batch's keys."""
        return await key_holders(self.tx, [job.key for job in self.jobs if job.key])

    async def _pairs(self, existing: dict[int, str]) -> list[tuple[Job, bool]]:
        """Each job and whether it was created; a duplicate's pair holds the stored job."""
        stored = await rows_by_id(self.tx.db, self.tx.queue, list(existing.values()))
        pairs: list[tuple[Job, bool]] = []
        for index, job in enumerate(self.jobs):
            if index not in existing:
                pairs.append((job, True))
                continue
            row = stored.get(existing[index])
            pairs.append((job_of(row) if row is not None else job, False))
        return pairs


async def new_row(tx: Tx, job: Job) -> RowData:
    """The row of a job enqueued now (as enqueue.lua stores it)."""
    due_later = job.scheduled > tx.now
    return {
        "queue": tx.queue, "id": job.id, "function": job.function,
        "kwargs": orjson.dumps(job.kwargs).decode(), "key": job.key or None,
        "status": "scheduled" if due_later else "queued",
        "priority": job.priority, "seq": 0 if due_later else await tx.next_seq(),
        "timeout": job.timeout, "heartbeat": job.heartbeat, "retries": job.retries,
        "attempts": job.attempts, "ttl": job.ttl, "scheduled": job.scheduled,
        "retry_delay": job.retry_delay, "retry_backoff": orjson.dumps(job.retry_backoff).decode(),
        "progress": job.progress, "meta": orjson.dumps(job.meta).decode(),
        "result": None, "error": None, "created": tx.now, "queued": 0.0 if due_later else tx.now,
        "started": 0.0, "completed": 0.0, "touched": tx.now, "worker": None, "lease": None,
        "lease_expires": None, "expires_at": None, "concurrency_key": job.concurrency_key,
    }  # fmt: skip


def _mark_enqueued(job: Job, now: float) -> None:
    job.created = job.queued = job.touched = now
    job.status = Status.SCHEDULED if job.scheduled > now else Status.QUEUED


async def settle_row(tx: Tx, row: RowData, outcome: Outcome) -> bool:
    """Apply one outcome to its job's row (as settle.lua does); ``False`` if stale."""
    if not holds(row, outcome.lease):
        return False
    if outcome.only_if_expired and not (
        row["lease_expires"] is not None and row["lease_expires"] <= tx.now
    ):
        return False
    tx.freed += 1  # whatever the outcome, the attempt no longer holds a slot
    status = outcome.status
    error = error_json(outcome.error).decode() if outcome.error else None
    if row["status"] == "aborting" and status != Status.COMPLETE:
        status, error = Status.ABORTED, None  # the abort's own error is already stored
    if error is not None:
        row["error"] = error
    if status == Status.QUEUED:
        row.update(lease=None, lease_expires=None)
        if error is None:  # handed back unstarted: not an attempt
            row["attempts"] = max(row["attempts"] - 1, 0)
        if outcome.delay_s > 0:
            row.update(status="scheduled", scheduled=tx.now + outcome.delay_s, touched=tx.now)
        else:
            push_queued(row, tx.now, await tx.next_seq())
        tx.work = True
    else:
        if status == Status.COMPLETE:
            row.update(result=orjson.dumps(outcome.result).decode(), progress=1.0)
        finish(tx, row, status)
    tx.changed.add(row["id"])
    return True


def holds(row: Row | RowData, token: str) -> bool:
    """Whether ``token`` is the lease of the job's current attempt."""
    return bool(row["lease"] == token and row["status"] in _HELD)


def push_queued(row: RowData, now: float, seq: int) -> None:
    """Queue a job again, behind the queued jobs of its priority."""
    row.update(status="queued", seq=seq, queued=now, touched=now)


def abort_row(tx: Tx, row: RowData, error: str) -> bool:
    """Abort a live job (as abort.lua does): a queued or scheduled one ends aborted at
    once, an active one turns aborting until its worker settles it. ``False``: nothing
    to abort (finished, or aborting already); the row is then unchanged."""
    if row["status"] in ("queued", "scheduled"):
        row["error"] = error
        finish(tx, row, Status.ABORTED)
    elif row["status"] == "active":
        row.update(status="aborting", error=error, touched=tx.now)
        tx.aborted.append(row["id"])
    else:
        return False
    return True


def requeue_finished(row: RowData, now: float, seq: int) -> None:
    """Queue a finished job again (a retry by hand): its result and ttl are dropped, its
    error kept."""
    row.update(result=None, completed=0.0, progress=0.0, expires_at=None)
    push_queued(row, now, seq)


def finish(tx: Tx, row: RowData, status: Status) -> RowData:
    """Move a job to a finished status: its key frees up, its ttl starts."""
    ttl = row["ttl"]
    row.update(
        status=status.value,
        lease=None,
        lease_expires=None,
        completed=tx.now,
        touched=tx.now,
        expires_at=tx.now + ttl if ttl > 0 else None,
    )
    tx.finished += 1
    return row


async def store_rows(tx: Tx, rows: Sequence[RowData]) -> None:
    """Write changed rows back; a finished job with ``ttl < 0`` is deleted instead."""
    kept: list[RowData] = []
    gone: list[RowData] = []
    for row in rows:
        (gone if row["status"] in _FINISHED and row["ttl"] < 0 else kept).append(row)
    if kept:
        await tx.db.executemany(_SAVE, kept)
    if gone:
        await tx.db.executemany("DELETE FROM jobwire_jobs WHERE queue = :queue AND id = :id", gone)
    tx.changed.update(row["id"] for row in rows)


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseState:
    """What a lease reads first, in one statement.

    Attributes:
        next_due_s: Seconds until the next scheduled job is due (``None``: none is).
        paused: Whether the queue is paused.
        settings: The queue's limits as stored (``None``: no limits).
        active: The queue's active and aborting jobs, counted only while a concurrency
            limit is set (else ``None``).
        rate_used: Starts in the queue-wide rate's window, if that rate is set.
    """

    next_due_s: float | None
    paused: bool
    settings: str | None
    active: int | None
    rate_used: int | None


async def lease_state(tx: Tx) -> LeaseState:
    """The queue's state for a lease; due jobs are queued first, oldest due time first,
    as lease.lua does."""
    [(due_at, paused, settings, active, rate_used)] = await tx.db.execute_fetchall(
        f"SELECT ({_FIRST_DUE}), coalesce(q.paused, 0), q.settings,"
        f" CASE WHEN q.holds_slots THEN ({_ACTIVE}) END,"
        f" CASE WHEN q.rate_period_s IS NOT NULL THEN ({_RATE_USED}) END"
        " FROM (SELECT 1) LEFT JOIN jobwire_queues q ON q.queue = :queue",
        {"queue": tx.queue, "now": tx.now},
    )
    if due_at is not None and due_at <= tx.now:
        await _promote_due(tx)
        [(due_at,)] = await tx.db.execute_fetchall(_FIRST_DUE, {"queue": tx.queue})
    next_due_s = None if due_at is None else float(due_at) - tx.now
    return LeaseState(next_due_s, bool(paused), settings, active, rate_used)


async def _promote_due(tx: Tx) -> None:
    due = await tx.db.execute_fetchall(
        "SELECT id FROM jobwire_jobs WHERE queue = ? AND status = 'scheduled'"
        " AND scheduled <= ? ORDER BY scheduled, id LIMIT ?",
        (tx.queue, tx.now, _PROMOTE_LIMIT),
    )
    promoted = [(await tx.next_seq(), tx.now, tx.now, tx.queue, job_id) for (job_id,) in due]
    await tx.db.executemany(
        "UPDATE jobwire_jobs SET status = 'queued', seq = ?, queued = ?, touched = ?"
        " WHERE queue = ? AND id = ?",
        promoted,
    )


async def visible_row(db: aiosqlite.Connection, queue: str, job_id: str, now: float) -> Row | None:
    rows = list(
        await db.execute_fetchall(
            f"SELECT * FROM jobwire_jobs WHERE queue = :queue AND id = :id AND {VISIBLE}",
            {"queue": queue, "id": job_id, "now": now},
        )
    )
    return rows[0] if rows else None


async def rows_by_id(
    db: aiosqlite.Connection, queue: str, ids: Sequence[str]
) -> dict[str, RowData]:
    """The rows of these ids (expired ones included), by id."""
    unique = list(dict.fromkeys(ids))
    found: dict[str, RowData] = {}
    for start in range(0, len(unique), _ID_CHUNK):
        chunk = unique[start : start + _ID_CHUNK]
        rows = await db.execute_fetchall(
            f"SELECT * FROM jobwire_jobs WHERE queue = ? AND id IN ({', '.join('?' * len(chunk))})",
            (queue, *chunk),
        )
        found.update((row["id"], dict(row)) for row in rows)
    return found


async def key_holders(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
    """Dedup key -> id of the live job holding it, for these keys."""
    unique = list(dict.fromkeys(keys))
    holders: dict[str, str] = {}
    for start in range(0, len(unique), _ID_CHUNK):
        chunk = unique[start : start + _ID_CHUNK]
        rows = await tx.db.execute_fetchall(
            f"SELECT key, id FROM jobwire_jobs WHERE queue = ? AND status IN {LIVE_SQL}"
            f" AND key IN ({', '.join('?' * len(chunk))})",
            (tx.queue, *chunk),
        )
        holders.update({key: job_id for key, job_id in rows})
    return holders


async def key_holder(tx: Tx, key: str, other_than: str) -> str | None:
    """The id of another live job that holds the dedup key, if any."""
    rows = list(
        await tx.db.execute_fetchall(
            f"SELECT id FROM jobwire_jobs WHERE queue = ? AND key = ? AND id != ?"
            f" AND status IN {LIVE_SQL}",
            (tx.queue, key, other_than),
        )
    )
    return str(rows[0][0]) if rows else None


def _expired(row: RowData, now: float) -> bool:
    return row["expires_at"] is not None and row["expires_at"] <= now


def job_of(row: Row | RowData) -> Job:
    """Build a ``Job`` from its row."""
    job = job_from_row(row, row["queue"])
    job.concurrency_key = row["concurrency_key"]
    return job
