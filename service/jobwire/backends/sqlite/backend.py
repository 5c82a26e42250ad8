"""SQLite backend: the embedded default, one database file on one host.

Jobs of every queue live in one ``jobwire_jobs`` table (``migrations/*.sql``, migrated
on first use by ``PRAGMA user_version``), keyed by ``(queue, id)``. Each primitive the
Redis backend runs as a Lua script is here one short ``BEGIN IMMEDIATE`` transaction
with the same semantics, so several worker processes on one file never lease a job
twice: SQLite lets one writer in at a time (the others wait up to a busy timeout) and
WAL mode keeps readers out of the writer's way. Times are Unix seconds from the local
clock, which is the store's clock here. ``sqlite://:memory:`` is one database shared
by the backends of one event loop in this process (it lives while one of them is open).
Across several worker processes the store stays correct, but every write waits for the
one writer's turn: it suits one host and modest rates, not a fleet.

Flow control: a queue's pause state and limits live in its ``jobwire_queues`` row. A lease
reads them in its first statement, with the next due time, so a queue without limits
leases in the same statements as ever; limits are enforced inside the lease's write
transaction (``limits.py``), which no other writer can interleave with. Bulk operations
take one short transaction per chunk (``bulk.py``).

Wake-ups: SQLite has no LISTEN/NOTIFY. A commit made in this process wakes this
process's waiters at once (all backends on one database in one event loop share one
connection and one set of events). Commits of *other* processes are noticed, while
anyone here waits, when the database's WAL file is written (Linux inotify, a
millisecond or so): ``PRAGMA data_version`` (an in-memory check) then says whether
another connection committed, and the per-queue counters which queue it touched. Where
inotify is not to be had, the check runs every 50 ms instead (new work or a finished job
seen up to ~50 ms late). A process that waits for nothing does not check. A resume, new
limits, and a job leaving active in a queue with a concurrency limit count as new work.
"""

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiosqlite
import orjson

from jobwire.backends.base import Backend, LeaseState, Outcome
from jobwire.backends.codec import error_json
from jobwire.backends.sqlite.bulk import bulk_step
from jobwire.backends.sqlite.limits import LimitedLease, prune_starts
from jobwire.backends.sqlite.rows import (
    LEASE_HEAD,
    VISIBLE,
    Enqueue,
    abort_row,
    holds,
    job_of,
    key_holder,
    lease_state,
    requeue_finished,
    rows_by_id,
    settle_row,
    store_rows,
    visible_row,
)
from jobwire.backends.sqlite.store import Row, Store, StoreLink, Tx, database_of
from jobwire.errors import InvalidJobState
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, ErrorInfo, Job, Status

_LIVE = ("queued", "scheduled", "active", "aborting")
_WORKER_SEEN_S = 60.0
_WORKER_FORGET_S = 3600.0
_THROUGHPUT_KEPT_MIN = 60  # minutes of finished-job counts kept, as on Redis

_LIST_ORDER = {
    Status.QUEUED: "priority DESC, seq",
    Status.SCHEDULED: "scheduled, id",
    Status.ACTIVE: "lease_expires, id",
    Status.ABORTING: "id",
}
_FINISHED_ORDER = "expires_at IS NULL DESC, expires_at DESC, id DESC"  # newest ttl first


class SqliteBackend(Backend):
    """Queue storage in a local SQLite database.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or
            ``sqlite://:memory:``.
        queue_name: The queue.
        lease_s: Default lease for jobs with ``heartbeat == 0``.
        link: The store of a backend this one is a sibling of (internal; see
            ``for_queue``).

    Raises:
        ValueError: The URL is not a SQLite URL.
    """

    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        link: StoreLink | None = None,
    ) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self.url = url
        self._link = link or StoreLink(database_of(url))
        self._owns_link = link is None
        self._work = asyncio.Event()
        self._listening: Store | None = None
        self._settings: tuple[str | None, QueueSettings] | None = None  # stored text, parsed

    def for_queue(self, queue_name: str) -> "SqliteBackend":
        return SqliteBackend(self.url, queue_name, lease_s=self.lease_s, link=self._link)

    async def connect(self) -> None:
        await self._store()

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.hub.unlisten(self.queue_name, self._work)
            self._listening = None
        if self._owns_link:
            await self._link.release()

    async def _store(self) -> Store:
        store = await self._link.store()
        if self._listening is not store:
            store.hub.listen(self.queue_name, self._work)
            self._listening = store
        return store

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        async with (await self._store()).reading() as db:
            yield db

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[Tx]:
        async with (await self._store()).writing(self.queue_name) as tx:
            yield tx

    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        if not jobs:
            return []
        async with self._writing() as tx:
            return await Enqueue(tx, jobs).run()

    async def get(self, job_id: str) -> Job | None:
        async with self._reading() as db:
            row = await visible_row(db, self.queue_name, job_id, time.time())
        return job_of(row) if row is not None else None

    async def queues(self) -> list[str]:
        async with self._reading() as db:
            rows = await db.execute_fetchall("SELECT queue FROM jobwire_queues ORDER BY queue")
        return [name for (name,) in rows]

    async def find_job(self, job_id: str) -> Job | None:
        async with self._reading() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM jobwire_jobs WHERE queue IN (SELECT queue FROM jobwire_queues)"
                    f" AND id = :id AND {VISIBLE} ORDER BY queue LIMIT 1",
                    {"id": job_id, "now": time.time()},
                )
            )
        return job_of(rows[0]) if rows else None

    async def delete(self, job_id: str) -> bool:
        async with self._writing() as tx:
            rows = list(
                await tx.db.execute_fetchall(
                    f"DELETE FROM jobwire_jobs WHERE queue = :queue AND id = :id AND {VISIBLE}"
                    " RETURNING status",
                    {"queue": tx.queue, "id": job_id, "now": tx.now},
                )
            )
            if rows:
                tx.changed.add(job_id)
                tx.freed += rows[0][0] in ("active", "aborting")
        return bool(rows)

    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        rows: list[Row] = []
        async with self._reading() as db:
            for wanted in [status] if status else list(Status):
                if len(rows) >= limit:
                    break
                rows += await db.execute_fetchall(
                    f"SELECT * FROM jobwire_jobs WHERE queue = :queue AND status = :status"
                    f" AND {VISIBLE} ORDER BY {_LIST_ORDER.get(wanted, _FINISHED_ORDER)}"
                    " LIMIT :limit",
                    {"queue": self.queue_name, "status": wanted.value, "now": time.time(),
                     "limit": limit - len(rows)},
                )  # fmt: skip
        return [job_of(row) for row in rows]

    async def counts(self) -> dict[Status, int]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"SELECT status, COUNT(*) FROM jobwire_jobs WHERE queue = :queue AND {VISIBLE}"
                " GROUP BY status",
                {"queue": self.queue_name, "now": time.time()},
            )
        found = {Status(status): count for status, count in rows}
        return {status: found.get(status, 0) for status in Status}

    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        async with self._writing() as tx:
            row = await visible_row(tx.db, tx.queue, job_id, tx.now)
            if row is None:
                return None
            job = dict(row)
            if abort_row(tx, job, error_json(error).decode()):
                await store_rows(tx, [job])
        return job_of(job)

    async def retry(self, job_id: str) -> Job | None:
        async with self._writing() as tx:
            row = await visible_row(tx.db, tx.queue, job_id, tx.now)
            if row is None:
                return None
            job = dict(row)
            if job["status"] in _LIVE:
                raise InvalidJobState(
                    f"job {job_id} is {job['status']}; only a finished job can be retried"
                )
            if job["key"] is not None and await key_holder(tx, job["key"], job_id):
                raise InvalidJobState(
                    f"job {job_id}: another live job holds its key {job['key']!r}"
                )
            requeue_finished(job, tx.now, await tx.next_seq())
            await store_rows(tx, [job])
            tx.work = True
        return job_of(job)

    async def lease(self, worker_id: str, max_jobs: int) -> tuple[list[Job], float | None]:
        params = {
            "queue": self.queue_name, "token": secrets.token_hex(8), "worker": worker_id,
            "lease_s": self.lease_s, "limit": max_jobs,
        }  # fmt: skip
        async with self._writing() as tx:
            state = await lease_state(tx)  # promotes the due jobs first
            next_s = state.next_due_s
            rows: list[Row] = []
            if state.paused:
                next_s = None  # nothing starts before a resume, which wakes the waiters
            elif max_jobs > 0 and state.settings is None:
                rows = list(await tx.db.execute_fetchall(LEASE_HEAD, {**params, "now": tx.now}))
            elif max_jobs > 0:
                limited = LimitedLease(tx, self._parsed(state.settings), max_jobs, state)
                rows, reopens_s = await limited.run({**params, "now": tx.now})
                next_s = _earliest(next_s, reopens_s)
        rows.sort(key=lambda row: (-row["priority"], row["seq"]))  # RETURNING has no order
        return [job_of(row) for row in rows], next_s

    def _parsed(self, text: str | None) -> QueueSettings:
        """Stored settings, parsed once per change (a lease reads them every time)."""
        if self._settings is None or self._settings[0] != text:
            self._settings = (text, QueueSettings.from_json(text))
        return self._settings[1]

    async def settings(self) -> QueueSettings:
        async with self._reading() as db:
            return self._parsed(await _stored_settings(db, self.queue_name))

    async def put_settings(self, settings: QueueSettings) -> None:
        holds_slots = settings.max_active is not None or settings.max_active_per_key is not None
        holds_slots = holds_slots or any(
            limits.max_active is not None for limits in settings.functions.values()
        )
        rate_period_s = settings.rate.period_s if settings.rate is not None else None
        async with self._writing() as tx:
            await tx.db.execute(
                "INSERT INTO jobwire_queues (queue, settings, holds_slots, rate_period_s)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (queue) DO UPDATE SET"
                " settings = excluded.settings, holds_slots = excluded.holds_slots,"
                " rate_period_s = excluded.rate_period_s",
                (tx.queue, settings.to_json() if settings.limited else None, holds_slots,
                 rate_period_s),
            )  # fmt: skip
            tx.work = True  # relaxed limits may let held jobs start now, in any process

    async def is_paused(self) -> bool:
        async with self._reading() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT paused FROM jobwire_queues WHERE queue = ?", (self.queue_name,)
                )
            )
        return bool(rows and rows[0][0])

    async def set_paused(self, paused: bool) -> None:
        async with self._writing() as tx:
            await tx.db.execute(
                "INSERT INTO jobwire_queues (queue, paused) VALUES (?, ?)"
                " ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused",
                (tx.queue, paused),
            )
            tx.work = not paused  # a resume wakes the waiting leases of every process

    async def bulk(
        self, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
    ) -> tuple[int, str | None]:
        async with self._writing() as tx:
            return await bulk_step(tx, action, where, cursor, limit)

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        if not leases:
            return []
        states: list[LeaseState] = []
        async with self._writing() as tx:
            rows = await rows_by_id(tx.db, tx.queue, [job_id for job_id, _ in leases])
            renewed = []
            for job_id, token in leases:
                row = rows.get(job_id)
                if row is None or not holds(row, token):
                    states.append("lost")
                    continue
                states.append(row["status"])
                lease_s = row["heartbeat"] if row["heartbeat"] > 0 else self.lease_s
                renewed.append((tx.now + lease_s, tx.now, tx.queue, job_id))
            if renewed:
                await tx.db.executemany(
                    "UPDATE jobwire_jobs SET lease_expires = ?, touched = ?"
                    " WHERE queue = ? AND id = ?",
                    renewed,
                )
        return states

    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        async with self._writing() as tx:
            cursor = await tx.db.execute(
                "UPDATE jobwire_jobs SET progress = coalesce(:progress, progress),"
                " meta = coalesce(:meta, meta), touched = :now"
                " WHERE queue = :queue AND id = :id AND lease = :lease"
                " AND status IN ('active', 'aborting')",
                {"progress": None if progress is None else float(progress),
                 "meta": None if meta is None else orjson.dumps(meta).decode(),
                 "now": tx.now, "queue": tx.queue, "id": job_id, "lease": lease},
            )  # fmt: skip
            owned = cursor.rowcount > 0
            if owned:
                tx.changed.add(job_id)
        return owned

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        async with self._writing() as tx:
            rows = await rows_by_id(tx.db, tx.queue, [o.job_id for o in outcomes])
            settled = []
            for outcome in outcomes:
                row = rows.get(outcome.job_id)
                settled.append(row is not None and await settle_row(tx, row, outcome))
            await store_rows(tx, [rows[job_id] for job_id in tx.changed])
        return settled

    async def expired(self, limit: int) -> list[Job]:
        async with self._writing() as tx:
            await tx.db.execute(
                "DELETE FROM jobwire_jobs WHERE queue = ? AND expires_at <= ?", (tx.queue, tx.now)
            )
            await tx.db.execute(
                "DELETE FROM jobwire_throughput WHERE queue = ? AND minute < ?",
                (tx.queue, int(tx.now // 60) - _THROUGHPUT_KEPT_MIN),
            )
            await prune_starts(tx, self._parsed(await _stored_settings(tx.db, tx.queue)))
            rows = await tx.db.execute_fetchall(
                "SELECT * FROM jobwire_jobs WHERE queue = ? AND status IN ('active', 'aborting')"
                " AND lease_expires <= ? ORDER BY lease_expires LIMIT ?",
                (tx.queue, tx.now, limit),
            )
        return [job_of(row) for row in rows]

    async def wait_for_work(self, timeout_s: float) -> None:
        store = await self._store()
        with contextlib.suppress(TimeoutError):
            async with store.hub.waiting(), asyncio.timeout(timeout_s):
                await self._work.wait()
        self._work.clear()

    def wake_local(self) -> None:
        self._work.set()

    def job_changes(self, job_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        return self._changes(job_id)

    async def on_abort(self, callback: Callable[[str], None]) -> None:
        store = await self._store()
        store.hub.listen_for_aborts(self.queue_name, callback)

    def off_abort(self, callback: Callable[[str], None]) -> None:
        if self._link.claimed is not None:
            self._link.claimed.hub.forget_abort_callback(self.queue_name, callback)

    @contextlib.asynccontextmanager
    async def _changes(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        store = await self._store()
        async with store.hub.watch(self.queue_name, job_id) as changed:
            yield changed

    async def throughput(self, window_s: float) -> float:
        since = int((time.time() - window_s) // 60)  # whole minutes, as on Redis
        async with self._reading() as db:
            [(finished,)] = await db.execute_fetchall(
                "SELECT coalesce(SUM(finished), 0) FROM jobwire_throughput"
                " WHERE queue = ? AND minute >= ?",
                (self.queue_name, since),
            )
        return int(finished) / window_s

    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        async with self._writing() as tx:
            await tx.db.execute(
                "INSERT INTO jobwire_workers (queue, id, seen, info) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (queue, id) DO UPDATE SET seen = excluded.seen, info = excluded.info",
                (tx.queue, worker_id, tx.now, orjson.dumps(info).decode()),
            )
            await tx.db.execute(
                "DELETE FROM jobwire_workers WHERE queue = ? AND seen < ?",
                (tx.queue, tx.now - _WORKER_FORGET_S),
            )

    async def workers(self) -> list[dict[str, Any]]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT id, seen, info FROM jobwire_workers WHERE queue = ? AND seen >= ?"
                " ORDER BY seen, id",
                (self.queue_name, time.time() - _WORKER_SEEN_S),
            )
        return [
            {**orjson.loads(info), "id": worker_id, "seen": seen} for worker_id, seen, info in rows
        ]


def _earliest(*seconds: float | None) -> float | None:
    """The smallest of the known delays (``None``: none is known)."""
    known = [value for value in seconds if value is not None]
    return min(known) if known else None


async def _stored_settings(db: aiosqlite.Connection, queue: str) -> str | None:
    """The queue's limits as stored (``None``: none)."""
    rows = list(
        await db.execute_fetchall("SELECT settings FROM jobwire_queues WHERE queue = ?", (queue,))
    )
    return rows[0][0] if rows else None
