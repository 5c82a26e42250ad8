"""PostgreSQL backend: one table for every queue, one SQL statement per primitive.

Schema (``migrations/*.sql``, applied on first use by numbered migrations): ``jobwire_jobs``
holds every job of every queue, keyed by ``(id, queue)``, with its status CHECK-constrained;
one partial index per status group, shaped like the query that reads it (the dequeue one
holds only queued jobs, ordered by priority then FIFO sequence); a partial unique index on
``(queue, key)`` over live jobs does the dedup. ``jobwire_workers`` records the workers
seen, ``jobwire_queues`` the queues with their pause state and limits, ``jobwire_starts``
the starts rate limits count. The statements are in ``sql`` (flow control's in ``flow``).

Dequeue is ``FOR UPDATE SKIP LOCKED``, so concurrent workers never wait on each other,
unless the queue has limits: then leases take turns on the queue's row, each one counting
what runs and what started within the rate windows (``jobwire_lease_within_limits``).
Wake-ups and job events are ``NOTIFY``s on per-queue channels, heard on one dedicated
``LISTEN`` connection per store (``listen``).

URL: ``postgres://``, ``postgresql://`` or ``postgresql+asyncpg://``, anything asyncpg
accepts, plus Jobwire's query options (``connect``): ``pool_size=N`` (default 10), and for a
pooler in transaction mode such as PgBouncer, ``prepared_statements=false`` and
``listen_url=<a direct URL>``, e.g.
``postgresql://u@bouncer:6432/db?prepared_statements=false&listen_url=postgresql://u@db:5432/db``.
No statement leaves session state behind (migrations take a transaction-scoped advisory
lock, notifications are sent inside each statement's transaction), so with those two
options every transaction may run on another server session.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import orjson

from jobwire.backends.base import Backend, LeaseState, Outcome
from jobwire.backends.codec import Row, error_json, job_from_row
from jobwire.backends.postgres import flow, sql
from jobwire.backends.postgres.connect import (
    ConnectOptions,
    open_listen_connection,
    open_pool,
    parse_options,
)
from jobwire.backends.postgres.listen import Listener, QueueEvents
from jobwire.errors import InvalidJobState
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, ErrorInfo, Job, Status

logger = logging.getLogger("jobwire.postgres")
_WORKER_SEEN_S = 60.0
# A connection the server dropped (terminated, restarted) or left in a broken state: it
# and its idle siblings are replaced by fresh ones, and a read that met it is retried once.
_CONNECTION_LOST = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InternalClientError,
    ConnectionResetError,
)
_PURGE_LIMIT = 10_000  # finished jobs past their ttl deleted per sweep, at most
_BULK_ABORT_ERROR = error_json(ErrorInfo("Aborted", "aborted")).decode()  # as Queue.abort's
_BULK_RETRY_ATTEMPTS = 5  # a chunk run again when an enqueue took a key it was retrying


def parse_url(url: str) -> tuple[str, int]:
    """Split a queue URL into the DSN asyncpg takes and the pool size (``parse_options``
    reads every option).

    Raises:
        ValueError: Not a PostgreSQL URL, or a bad option value.
    """
    options = parse_options(url)
    return options.dsn, options.pool_size


class _Store:
    """What sibling backends share: the pool, the LISTEN connection, the migrated schema."""

    def __init__(self, options: ConnectOptions, pool: asyncpg.Pool | None) -> None:
        self.options = options
        self.listener = Listener(self._connect_listener)
        self._pool = pool
        self._owns_pool = pool is None
        self._ready = False
        self._lock = asyncio.Lock()

    async def _connect_listener(self) -> asyncpg.Connection:
        return await open_listen_connection(self.options)

    async def pool(self) -> asyncpg.Pool:
        """The pool, created (and the schema migrated) on first use."""
        if self._ready and self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await open_pool(self.options)
            if not self._ready:
                async with self._pool.acquire() as conn:
                    await sql.migrate(conn)
                self._ready = True
        return self._pool

    async def close(self) -> None:
        await self.listener.close()
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._ready = False


class PostgresBackend(Backend):
    """Queue storage on PostgreSQL (asyncpg).

    asyncpg waits for a cancelled query's connection to settle before the pool takes it
    back, which a stalled server never lets happen: calls past their deadline are left to
    cancel in the background (``detach_on_timeout``).

    Args:
        url: ``postgres://``, ``postgresql://`` or ``postgresql+asyncpg://`` URL, with
            Jobwire's query options: ``pool_size`` (default 10) sizes the connection pool;
            ``prepared_statements=false`` (default true) keeps no named prepared statements
            nor session state, for a pooler in transaction mode (PgBouncer); ``listen_url``
            (default: ``url``) is the server to LISTEN on, directly (a transaction pooler
            cannot carry LISTEN).
        queue_name: The queue.
        lease_s: Default lease for jobs with ``heartbeat == 0``.
        pool: An asyncpg pool to use instead of creating one (the caller closes it).
    """

    detach_on_timeout = True

    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        pool: asyncpg.Pool | None = None,
    ) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self.url = url
        self._store = _Store(parse_options(url), pool)
        self._owns_store = True
        self._events = QueueEvents(self._store.listener, queue_name)
        self._registered = False
        # as last seen (a lease, put_settings): leases take the limited path first, and
        # settles wake waiting leases (a slot freed)
        self._limited = False

    def for_queue(self, queue_name: str) -> "PostgresBackend":
        sibling = PostgresBackend(self.url, queue_name, lease_s=self.lease_s)
        sibling._store = self._store
        sibling._owns_store = False
        sibling._events = QueueEvents(self._store.listener, queue_name)
        return sibling

    async def connect(self) -> None:
        await self._store.pool()
        await self._events.start()

    async def close(self) -> None:
        await self._events.stop()
        if self._owns_store:
            await self._store.close()

    async def _fetch(self, query: str, *args: Any, read: bool = False) -> list[asyncpg.Record]:
        """Run a statement of this queue (the queue name is its ``$1``)."""
        return await self._fetch_any(query, self.queue_name, *args, read=read)

    async def _fetch_any(self, query: str, *args: Any, read: bool = False) -> list[asyncpg.Record]:
        """Run a statement on a pooled connection.

        A connection found lost is closed, so the pool replaces it; a ``read`` (a statement
        without side effects) is then retried once, on another connection.
        """
        pool = await self._store.pool()
        for attempt in range(2):
            async with pool.acquire() as conn:
                try:
                    rows: list[asyncpg.Record] = await conn.fetch(query, *args)
                    return rows
                except _CONNECTION_LOST as exc:
                    # a connection already closed is detached from its proxy (and dropped)
                    with contextlib.suppress(asyncpg.exceptions.InterfaceError):
                        conn.terminate()
                    # what dropped this one (a restart, a failover, terminated backends)
                    # most likely dropped its idle siblings too: open fresh ones
                    await pool.expire_connections()
                    if not read or attempt > 0:
                        raise
                    logger.warning("connection lost (%r); reading again", exc)
        raise AssertionError("unreachable")

    def _job(self, row: asyncpg.Record) -> Job:
        return _job_from_row(row, self.queue_name)

    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        if not self._registered:  # once per process: cheap, idempotent
            await self._fetch(sql.REGISTER_QUEUE)
            self._registered = True
        return await self._enqueue(jobs, retries_left=2)

    async def _enqueue(self, jobs: Sequence[Job], retries_left: int) -> list[tuple[Job, bool]]:
        if not jobs:
            return []
        rows = await self._fetch(sql.ENQUEUE, *_enqueue_columns(jobs), self._events.wake_channel)
        created = _created(jobs, rows)
        pairs = [(job, made) for job, made in zip(jobs, created, strict=True)]
        for job, made in pairs:
            if made:
                _mark_enqueued(job, rows[0]["now"])
        duplicates = [i for i, made in enumerate(created) if not made]
        if duplicates:
            await self._resolve_duplicates(pairs, duplicates, retries_left)
        return pairs

    async def _resolve_duplicates(
        self, pairs: list[tuple[Job, bool]], indexes: list[int], retries_left: int
    ) -> None:
        """Replace each duplicate's job by the stored job it duplicates.

        A duplicate whose job is gone by now (its id held by a finished job past its ttl
        that no sweep deleted yet, or deleted meanwhile) is enqueued again, as Redis would
        have created it.
        """
        jobs = [pairs[i][0] for i in indexes]
        rows = await self._fetch(
            sql.GET_EXISTING, [job.id for job in jobs], [job.key or None for job in jobs]
        )
        found = {row["ord"] - 1: self._job(row) for row in rows}
        missing = [i for n, i in enumerate(indexes) if n not in found]
        for n, i in enumerate(indexes):
            if n in found:
                pairs[i] = (found[n], False)
        if missing and retries_left > 0:
            await self._fetch(sql.PURGE_EXPIRED_IDS, [pairs[i][0].id for i in missing])
            again = await self._enqueue([pairs[i][0] for i in missing], retries_left - 1)
            for i, pair in zip(missing, again, strict=True):
                pairs[i] = pair

    async def get(self, job_id: str) -> Job | None:
        rows = await self._fetch(sql.GET, job_id, read=True)
        return self._job(rows[0]) if rows else None

    async def queues(self) -> list[str]:
        return [row["name"] for row in await self._fetch_any(sql.QUEUES, read=True)]

    async def find_job(self, job_id: str) -> Job | None:
        rows = await self._fetch_any(sql.FIND_JOB, job_id, read=True)
        return _job_from_row(rows[0], rows[0]["queue"]) if rows else None

    async def delete(self, job_id: str) -> bool:
        rows = await self._fetch(
            sql.DELETE, job_id, self._events.events_channel, self._events.wake_channel
        )
        return bool(rows[0][0])

    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        jobs: list[Job] = []
        for wanted in [status] if status else list(Status):
            if len(jobs) >= limit:
                break
            jobs += [
                self._job(row)
                for row in await self._fetch(sql.LIST[wanted], limit - len(jobs), read=True)
            ]
        return jobs

    async def counts(self) -> dict[Status, int]:
        found = {row["status"]: row["n"] for row in await self._fetch(sql.COUNTS, read=True)}
        return {status: found.get(status.value, 0) for status in Status}

    async def throughput(self, window_s: float) -> float:
        rows = await self._fetch(sql.THROUGHPUT, float(window_s), read=True)
        return float(rows[0][0]) / window_s

    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        rows = await self._fetch(
            sql.ABORT,
            job_id,
            error_json(error).decode(),
            self._events.events_channel,
            self._events.wake_channel,
        )
        if not rows:
            return None
        job = self._job(rows[0])
        if rows[0]["how"] == "dropped":  # ttl < 0: deleted on finishing; show how it ended
            job.status, job.error, job.lease = Status.ABORTED, error, None
        return job

    async def retry(self, job_id: str) -> Job | None:
        try:
            rows = await self._fetch(
                sql.RETRY, job_id, self._events.events_channel, self._events.wake_channel
            )
        except asyncpg.UniqueViolationError:  # a job with its key was enqueued meanwhile
            raise InvalidJobState(f"job {job_id}: another live job holds its key") from None
        if not rows:
            return None
        job = self._job(rows[0])
        if rows[0]["code"] == 2:
            raise InvalidJobState(f"job {job_id}: another live job holds its key {job.key!r}")
        if rows[0]["code"] == 3:
            raise InvalidJobState(
                f"job {job_id} is {job.status}; only a finished job can be retried"
            )
        return job

    async def lease(self, worker_id: str, max_jobs: int) -> tuple[list[Job], float | None]:
        """The fast statement, unless the queue is limited: then ``jobwire_lease_within_limits``.

        Each finds out whether the queue is limited (atomically with its lease), and the
        next lease takes the path the last one found right, so a limited queue costs one
        round trip per lease too, except when its limits come or go.
        """
        args = (max(max_jobs, 0), secrets.token_hex(8), worker_id, float(self.lease_s))
        if self._limited:
            leased = await self._lease_limited(*args)
            if leased is not None:
                return leased
            self._limited = False
        rows = await self._fetch(sql.LEASE, *args)
        gate = rows[0]
        if gate["limited"] and not gate["paused"]:
            self._limited = True
            # (None: the limits went away between the two statements; lease again now)
            return await self._lease_limited(*args) or ([], 0.0)
        next_due = None if gate["paused"] else gate["next_due_s"]  # a resume wakes leases
        return [self._job(row) for row in rows if row["id"] is not None], next_due

    async def _lease_limited(
        self, max_jobs: int, token: str, worker_id: str, lease_s: float
    ) -> tuple[list[Job], float | None] | None:
        """Lease under the queue's limits; ``None`` if it has none (and is not paused)."""
        rows = await self._fetch(
            flow.LEASE_LIMITED, max_jobs, token, worker_id, lease_s, flow.LEASE_WINDOW
        )
        *leased, last = rows
        if last["state"] == "unlimited":
            return None
        return [self._job(row) for row in leased], last["next_s"]

    async def settings(self) -> QueueSettings:
        rows = await self._fetch(flow.SETTINGS, read=True)
        return QueueSettings.from_json(rows[0]["settings"] if rows else None)

    async def put_settings(self, settings: QueueSettings) -> None:
        await self._fetch(
            flow.PUT_SETTINGS, *flow.settings_args(settings), self._events.wake_channel
        )
        self._limited = settings.limited

    async def is_paused(self) -> bool:
        rows = await self._fetch(flow.SETTINGS, read=True)
        return bool(rows and rows[0]["paused"])

    async def set_paused(self, paused: bool) -> None:
        await self._fetch(flow.SET_PAUSED, paused, self._events.wake_channel)

    async def bulk(
        self, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
    ) -> tuple[int, str | None]:
        statement, extra = {
            BulkAction.RETRY: (flow.BULK_RETRY, []),
            BulkAction.DELETE: (flow.BULK_DELETE, []),
            BulkAction.ABORT: (flow.BULK_ABORT, [_BULK_ABORT_ERROR]),
        }[BulkAction(action)]
        limit = max(limit, 1)
        channels = [self._events.events_channel, self._events.wake_channel]
        args = [cursor or "", limit, *flow.filter_args(where), *channels, *extra]
        for attempt in range(_BULK_RETRY_ATTEMPTS):
            try:
                rows = await self._fetch(statement, *args)
                break
            except asyncpg.UniqueViolationError:  # an enqueue took a key being retried
                if attempt == _BULK_RETRY_ATTEMPTS - 1:
                    raise
        row = rows[0]
        return row["changed"], row["last"] if row["visited"] == limit else None

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        if not leases:
            return []
        rows = await self._fetch(
            sql.RENEW,
            [job_id for job_id, _ in leases],
            [token for _, token in leases],
            float(self.lease_s),
        )
        states = {(row["id"], row["lease"]): row["status"] for row in rows}
        return [states.get(pair, "lost") for pair in leases]

    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        rows = await self._fetch(
            sql.UPDATE,
            job_id,
            lease,
            None if progress is None else float(progress),
            None if meta is None else orjson.dumps(meta).decode(),
            self._events.events_channel,
        )
        return bool(rows[0][0])

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        rows = await self._fetch(
            sql.SETTLE,
            [o.job_id for o in outcomes],
            [o.lease for o in outcomes],
            [o.status.value for o in outcomes],
            [_result_json(o) for o in outcomes],
            [error_json(o.error).decode() if o.error else None for o in outcomes],
            [float(o.delay_s) for o in outcomes],
            [o.only_if_expired for o in outcomes],
            self._events.events_channel,
            self._events.wake_channel,
        )
        settled = {row["ord"] for row in rows}
        return [n in settled for n in range(1, len(outcomes) + 1)]

    async def expired(self, limit: int) -> list[Job]:
        rows = await self._fetch(sql.EXPIRED, max(limit, 0), _PURGE_LIMIT)
        return [self._job(row) for row in rows]

    async def wait_for_work(self, timeout_s: float) -> None:
        await self._events.wait_for_work(timeout_s)

    def wake_local(self) -> None:
        self._events.work.set()

    def job_changes(self, job_id: str) -> contextlib.AbstractAsyncContextManager[asyncio.Event]:
        return self._events.watch(job_id)

    async def on_abort(self, callback: Callable[[str], None]) -> None:
        await self._events.start()
        self._events.abort_callbacks.append(callback)

    def off_abort(self, callback: Callable[[str], None]) -> None:
        self._events.forget_abort_callback(callback)

    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        await self._fetch(sql.TOUCH_WORKER, worker_id, orjson.dumps(info).decode())

    async def workers(self) -> list[dict[str, Any]]:
        return [
            {**orjson.loads(row["info"]), "id": row["id"], "seen": row["seen"]}
            for row in await self._fetch(sql.WORKERS, _WORKER_SEEN_S, read=True)
        ]


def _enqueue_columns(jobs: Sequence[Job]) -> list[list[Any]]:
    """The ENQUEUE statement's arrays, one per column, in its parameter order."""
    return [
        [job.id for job in jobs],
        [job.function for job in jobs],
        [orjson.dumps(job.kwargs).decode() for job in jobs],
        [job.key or None for job in jobs],  # like Redis, an empty key is no key
        [job.concurrency_key for job in jobs],
        [job.priority for job in jobs],
        [None if job.timeout is None else float(job.timeout) for job in jobs],
        [float(job.heartbeat) for job in jobs],
        [job.retries for job in jobs],
        [job.attempts for job in jobs],
        [job.ttl for job in jobs],
        [float(job.scheduled) for job in jobs],
        [float(job.retry_delay) for job in jobs],
        [orjson.dumps(job.retry_backoff).decode() for job in jobs],
        [float(job.progress) for job in jobs],
        [orjson.dumps(job.meta).decode() for job in jobs],
    ]


def _created(jobs: Sequence[Job], inserted: Sequence[asyncpg.Record]) -> list[bool]:
    """Which jobs ENQUEUE inserted, from the (id, key) pairs it returned.

    Of inputs sharing an id, only one can be inserted, and it is the first with the key
    the stored row has: an earlier input with the same pair would have been inserted
    instead (nothing frees a key while the statement runs).
    """
    pending = {(row["id"], row["key"]) for row in inserted}
    created = []
    for job in jobs:
        pair = (job.id, job.key or None)
        created.append(pair in pending)
        pending.discard(pair)
    return created


def _job_from_row(row: Row, queue: str) -> Job:
    job = job_from_row(row, queue)
    job.concurrency_key = row["concurrency_key"]
    return job


def _mark_enqueued(job: Job, stamp: float) -> None:
    job.created = job.queued = job.touched = stamp
    job.status = Status.SCHEDULED if job.scheduled > stamp else Status.QUEUED


def _result_json(outcome: Outcome) -> str | None:
    return orjson.dumps(outcome.result).decode() if outcome.status == Status.COMPLETE else None
