"""The SQLite backend's machinery: one connection per database and event loop, its
schema migrations, short write transactions, and the wake-ups of this process's waiters.

Every backend on the same database in one event loop (siblings from ``for_queue`` and
independent ``Queue.from_url`` handles alike) shares one ``Store``: one aiosqlite
connection, one lock that serializes its transactions, and one ``Hub`` of wake-up events.
"""

import asyncio
import contextlib
import importlib.resources
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from urllib.parse import unquote

import aiosqlite

from jobwire.backends.sqlite.wal_watch import WalWatch
from jobwire.backends.waiters import tell_aborted

logger = logging.getLogger("jobwire.sqlite")

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's transaction
POLL_INTERVAL_S = 0.05  # how often waiters look for other processes' commits, without inotify
WATCHED_POLL_S = 1.0  # with inotify: a poll this often all the same (a missed event is cheap)
# After a WAL write that showed no new commit: look again after these delays. A commit's
# frames reach the WAL file (and inotify) just before the commit becomes visible; a writer
# descheduled in between would otherwise be noticed only by the next once-a-second poll.
RECHECK_S = (0.01, 0.05, 0.25)
_MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING
# A job left active/aborting (:freed) where a queued job may be waiting for its slot.
_SLOT_WANTED = (
    "(:freed AND holds_slots AND EXISTS (SELECT 1 FROM jobwire_jobs"
    " WHERE queue = :queue AND status = 'queued'))"
)

Row = sqlite3.Row


def database_of(url: str) -> str:
    """The database a ``sqlite://`` URL names: an absolute file path, or ``":memory:"``.

    ``sqlite:///jobs.db`` is relative to the current directory, ``sqlite:////var/jobs.db``
    absolute, and ``sqlite://:memory:`` one database shared within this process.

    Raises:
        ValueError: The URL is not of one of those forms.
    """
    scheme, separator, rest = url.partition("://")
    rest = rest.partition("?")[0]
    if scheme.lower() == "sqlite" and separator:
        if rest in (MEMORY, "/" + MEMORY):
            return MEMORY
        if rest.startswith("/") and len(rest) > 1:
            return os.path.abspath(unquote(rest[1:]))
    raise ValueError(
        f"a SQLite URL is sqlite:///relative/path.db, sqlite:////absolute/path.db or "
        f"sqlite://:memory:, not {url!r}"
    )


class Tx:
    """One write transaction on one queue's behalf.

    Attributes:
        db: The connection, inside ``BEGIN IMMEDIATE``.
        queue: The queue.
        now: The transaction's clock (Unix seconds), read once the write lock is held.
        work: Set when the transaction brings workers new work.
        changed: Ids of the jobs it changed (their waiters are woken on commit).
        finished: How many jobs it finished (counted per minute for the throughput).
        freed: How many jobs left active/aborting; in a queue with a concurrency limit
            that is new work too (a held job may start in the freed slot).
        aborted: Ids of the active jobs it turned aborting (their workers are told).
    """

    def __init__(self, db: aiosqlite.Connection, queue: str, now: float) -> None:
        self.db = db
        self.queue = queue
        self.now = now
        self.work = False
        self.changed: set[str] = set()
        self.finished = 0
        self.freed = 0
        self.aborted: list[str] = []
        self._seq: int | None = None
        self._seq_taken = False

    async def next_seq(self) -> int:
        """The next FIFO position of the queue."""
        if self._seq is None:
            rows = list(
                await self.db.execute_fetchall(
                    "SELECT seq FROM jobwire_queues WHERE queue = ?", (self.queue,)
                )
            )
            self._seq = int(rows[0][0]) if rows else 0
        self._seq += 1
        self._seq_taken = True
        return self._seq

    async def flush(self) -> None:
        """Store the queue's counters (other processes poll them) and its throughput.

        A freed slot is new work only where a concurrency limit is set (``holds_slots``)
        and jobs are queued: elsewhere nothing waits for the slot, and waking every worker
        on each finished job would cost a lease call apiece.
        """
        if self.finished:
            await self.db.execute(
                "INSERT INTO jobwire_throughput (queue, minute, finished) VALUES (?, ?, ?)"
                " ON CONFLICT (queue, minute)"
                " DO UPDATE SET finished = finished + excluded.finished",
                (self.queue, int(self.now // 60), self.finished),
            )
        if not (self._seq_taken or self.work or self.changed or self.freed):
            return
        [(work,)] = await self.db.execute_fetchall(
            "INSERT INTO jobwire_queues (queue, seq, work_version, job_version, abort_version)"
            " VALUES (:queue, :seq, :work, :changed, :aborted) ON CONFLICT (queue) DO UPDATE SET"
            " seq = max(seq, excluded.seq),"
            f" work_version = work_version + (excluded.work_version OR {_SLOT_WANTED}),"
            " job_version = job_version + excluded.job_version,"
            " abort_version = abort_version + excluded.abort_version"
            f" RETURNING :work OR {_SLOT_WANTED}",
            {"queue": self.queue, "seq": self._seq or 0, "work": self.work,
             "changed": bool(self.changed), "aborted": bool(self.aborted),
             "freed": self.freed > 0},
        )  # fmt: skip
        self.work = bool(work)  # the local waiters are woken on commit by this


class Hub:
    """Wakes this process's waiters on one database, and tells its abort callbacks.

    A commit made here wakes the waiters at once. Other processes' commits are noticed
    by reading ``PRAGMA data_version`` (and, when it moved, the per-queue counters) while
    anyone waits or listens for aborts: each time the WAL file is written (inotify; and
    again after ``RECHECK_S`` if the commit did not show yet), else every
    ``POLL_INTERVAL_S``.

    Args:
        poll: Reads the per-queue ``(queue, work_version, job_version, abort_version)``
            counters, or ``None`` when no other connection committed since the last call.
        wal: Tells when the database's WAL file is written (``None``: poll).
        aborting: Reads the ids of a queue's aborting jobs.
    """

    def __init__(
        self,
        poll: Callable[[], Awaitable[list[Row] | None]] | None,
        wal: WalWatch | None = None,
        aborting: Callable[[str], Awaitable[list[str]]] | None = None,
    ) -> None:
        self._poll = poll
        self._wal = wal
        self._aborting = aborting
        self._work: dict[str, set[asyncio.Event]] = {}
        self._watchers: dict[str, dict[str, set[asyncio.Event]]] = {}
        self._abort_callbacks: dict[str, list[Callable[[str], None]]] = {}
        self._told: dict[str, set[str]] = {}  # per queue: the aborting jobs told of
        self._versions: dict[str, tuple[int, int, int]] = {}
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None

    def listen(self, queue: str, work: asyncio.Event) -> None:
        """Set ``work`` whenever the queue gets new work."""
        self._work.setdefault(queue, set()).add(work)

    def unlisten(self, queue: str, work: asyncio.Event) -> None:
        """Stop setting ``work``."""
        self._work.get(queue, set()).discard(work)

    def committed(self, tx: Tx) -> None:
        """Wake whoever waits on what a local transaction just committed."""
        if tx.work:
            self._wake_work(tx.queue)
        watchers = self._watchers.get(tx.queue, {})
        for job_id in tx.changed:
            for event in watchers.get(job_id, ()):
                event.set()
        if tx.aborted and tx.queue in self._abort_callbacks:
            self._told.setdefault(tx.queue, set()).update(tx.aborted)
            for job_id in tx.aborted:
                tell_aborted(self._abort_callbacks[tx.queue], job_id)

    def baseline(self, rows: Iterable[Row]) -> None:
        """Record the counters as of opening: later changes wake waiters."""
        self._versions = {row[0]: (row[1], row[2], row[3]) for row in rows}

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Poll for other processes' commits while the block runs."""
        self._waiters += 1
        self._start_polling()
        try:
            yield
        finally:
            self._waiters -= 1

    def listen_for_aborts(self, queue: str, callback: Callable[[str], None]) -> None:
        """Call ``callback(job_id)`` whenever an active job of the queue turns aborting,
        here or in another process (polled from then on, as long as the store is open)."""
        if not self._abort_callbacks:
            self._waiters += 1  # never given back: the poller runs until ``stop``
        self._abort_callbacks.setdefault(queue, []).append(callback)
        self._start_polling()

    def forget_abort_callback(self, queue: str, callback: Callable[[str], None]) -> None:
        """Stop calling ``callback`` (polling for aborts ends with the last one)."""
        callbacks = self._abort_callbacks.get(queue, [])
        if callback not in callbacks:
            return
        callbacks.remove(callback)
        if not callbacks:
            del self._abort_callbacks[queue]
            self._told.pop(queue, None)
            if not self._abort_callbacks:
                self._waiters -= 1

    def _start_polling(self) -> None:
        if self._poll is not None and (self._poller is None or self._poller.done()):
            self._poller = asyncio.create_task(self._run_poller(), name="jobwire-sqlite-poll")

    @contextlib.asynccontextmanager
    async def watch(self, queue: str, job_id: str) -> AsyncIterator[asyncio.Event]:
        """Yield an event that is set whenever the job (may have) changed."""
        event = asyncio.Event()
        watchers = self._watchers.setdefault(queue, {})
        watchers.setdefault(job_id, set()).add(event)
        try:
            async with self.waiting():
                yield event
        finally:
            watchers[job_id].discard(event)
            if not watchers[job_id]:
                del watchers[job_id]
            if not watchers:
                self._watchers.pop(queue, None)

    async def stop(self) -> None:
        """Stop polling."""
        if self._wal is not None:
            await self._wal.stop()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def _run_poller(self) -> None:
        assert self._poll is not None
        failing = False
        watched = self._wal is not None and self._wal.start()
        rechecks = iter(RECHECK_S)
        looking = False  # the round ended on a WAL write (or a recheck after one)
        while self._waiters > 0:
            if self._wal is not None:
                self._wal.changed.clear()  # before reading: a commit from here on sets it
            seen = False
            try:
                rows = await self._poll()
                if rows is not None:
                    seen = True
                    for queue in self._notice(rows):
                        await self._tell_aborts(queue)
            except Exception as exc:  # the next round retries; waiters also time out
                if not failing:
                    logger.warning("polling the SQLite database for changes failed: %s", exc)
                failing = True
            else:
                failing = False
            delay_s = None
            if seen or not looking:
                rechecks = iter(RECHECK_S)
            else:  # a commit's WAL frames are written before it shows: look again soon
                delay_s = next(rechecks, None)
            looking = await self._next_round(watched, delay_s) or delay_s is not None

    async def _next_round(self, watched: bool, delay_s: float | None) -> bool:
        """Wait until another process may have committed (or ``delay_s``, if given);
        ``True`` if the WAL file was written."""
        if not watched or self._wal is None:
            await asyncio.sleep(POLL_INTERVAL_S)
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WATCHED_POLL_S if delay_s is None else delay_s):
                await self._wal.changed.wait()
        return self._wal.changed.is_set()

    def _notice(self, rows: Iterable[Row]) -> list[str]:
        """Wake the waiters of what changed; returns the queues whose aborts to tell."""
        aborted = []
        for queue, work_version, job_version, abort_version in rows:
            old_work, old_jobs, old_aborts = self._versions.get(queue, (0, 0, 0))
            self._versions[queue] = (work_version, job_version, abort_version)
            if work_version != old_work:
                self._wake_work(queue)
            if job_version != old_jobs:  # which job is unknown: wake all of the queue's
                for events in self._watchers.get(queue, {}).values():
                    for event in events:
                        event.set()
            if abort_version != old_aborts and queue in self._abort_callbacks:
                aborted.append(queue)
        return aborted

    async def _tell_aborts(self, queue: str) -> None:
        """Tell the callbacks of the queue's aborting jobs not told of yet."""
        assert self._aborting is not None
        aborting = set(await self._aborting(queue))
        told, self._told[queue] = self._told.get(queue, set()), aborting
        for job_id in aborting - told:
            tell_aborted(self._abort_callbacks.get(queue, ()), job_id)

    def _wake_work(self, queue: str) -> None:
        for event in self._work.get(queue, ()):
            event.set()


_STORES: weakref.WeakValueDictionary[tuple[str, asyncio.AbstractEventLoop], "Store"] = (
    weakref.WeakValueDictionary()
)


class Store:
    """One database's connection in this event loop, shared by all its backends.

    Args:
        database: Absolute file path, or ``":memory:"``.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        on_disk = database != MEMORY
        self.hub = Hub(
            self._poll if on_disk else None,
            WalWatch(database) if on_disk else None,
            self._aborting,
        )
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._claims = 0
        self._data_version = -1

    @classmethod
    def claim(cls, database: str) -> "Store":
        """The store of ``database`` in the running event loop; ``release`` it when done."""
        key = (database, asyncio.get_running_loop())
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = cls(database)
        store._claims += 1
        return store

    async def release(self) -> None:
        """Give up one claim; the last one closes the connection."""
        self._claims -= 1
        if self._claims > 0:
            return
        key = (self.database, asyncio.get_running_loop())
        if _STORES.get(key) is self:
            del _STORES[key]
        await self.hub.stop()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def connection(self) -> aiosqlite.Connection:
        """The open connection (opened, and the schema migrated, on first use)."""
        if self._db is None:
            async with self._opening:
                if self._db is None:
                    self._db = await _open(self.database)
                    await self._poll()  # the baseline of other processes' changes
        return self._db

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, for single-statement reads (no transaction of ours is open)."""
        db = await self.connection()
        async with self._lock:
            yield db

    @contextlib.asynccontextmanager
    async def writing(self, queue: str) -> AsyncIterator[Tx]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on exit, rolled back on error."""
        db = await self.connection()
        async with self._lock:
            if db.in_transaction:  # left open by a caller cancelled mid-transaction
                await db.rollback()
            try:
                # Inside the try: a caller cancelled while BEGIN waits for another process's
                # lock leaves the statement queued on aiosqlite's thread; the rollback queued
                # behind it ends that transaction before the lock passes to the next caller.
                await db.execute("BEGIN IMMEDIATE")
                tx = Tx(db, queue, time.time())
                yield tx
                await tx.flush()
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
        self.hub.committed(tx)

    async def _poll(self) -> list[Row] | None:
        async with self.reading() as db:
            [(version,)] = await db.execute_fetchall("PRAGMA data_version")
            if version == self._data_version:
                return None
            first = self._data_version < 0
            self._data_version = version
            rows = list(
                await db.execute_fetchall(
                    "SELECT queue, work_version, job_version, abort_version FROM jobwire_queues"
                )
            )
        if first:
            self.hub.baseline(rows)
            return None
        return rows

    async def _aborting(self, queue: str) -> list[str]:
        async with self.reading() as db:
            rows = await db.execute_fetchall(
                "SELECT id FROM jobwire_jobs WHERE queue = ? AND status = 'aborting'", (queue,)
            )
        return [row[0] for row in rows]


async def _open(database: str) -> aiosqlite.Connection:
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise RuntimeError(
            f"the SQLite backend needs SQLite >= {'.'.join(map(str, _MIN_SQLITE))}, "
            f"Python is linked with {sqlite3.sqlite_version}"
        )
    if database != MEMORY:
        await asyncio.to_thread(os.makedirs, os.path.dirname(database), exist_ok=True)
    connecting = aiosqlite.connect(database, isolation_level=None)
    _exit_without_close(connecting)
    db = await connecting
    try:
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        [(mode,)] = await db.execute_fetchall("PRAGMA journal_mode = WAL")
        if mode != "wal" and database != MEMORY:  # e.g. a file system without shared memory
            logger.warning("SQLite database %s is in %s mode, not WAL", database, mode)
        await db.execute("PRAGMA synchronous = NORMAL")  # WAL-safe: no corruption, fewer fsyncs
        await _migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


def _exit_without_close(connection: aiosqlite.Connection) -> None:
    """Let a connection nobody closed not keep the process alive at exit.

    aiosqlite (>= 0.22) runs each connection on a non-daemon thread, so a queue that is
    never closed would hang interpreter shutdown. Ending that thread at exit is as safe
    as a crash, which SQLite's atomic commits are made for: nothing committed is lost. The
    thread is private to aiosqlite; if it moves, this does nothing (and closing is needed).
    """
    thread = getattr(connection, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring the schema to the newest version; idempotent, safe in concurrent processes."""
    migrations = _migrations()
    if await _user_version(db) >= len(migrations):
        return
    await db.execute("BEGIN IMMEDIATE")
    try:
        version = await _user_version(db)  # again, now that no one else can migrate
        for number, statements in enumerate(migrations[version:], start=version + 1):
            for statement in statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")
            logger.info("SQLite schema migrated to version %d", number)
        await db.commit()
    except BaseException:
        await db.rollback()
        raise


async def _user_version(db: aiosqlite.Connection) -> int:
    [(version,)] = await db.execute_fetchall("PRAGMA user_version")
    return int(version)


def _migrations() -> list[list[str]]:
    """The numbered ``migrations/NNN_*.sql`` scripts, in order, split into statements."""
    folder = importlib.resources.files("jobwire.backends.sqlite") / "migrations"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    return [_statements((folder / name).read_text()) for name in names]


def _statements(script: str) -> list[str]:
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements


class StoreLink:
    """A backend's claim on its database's store, taken on first use and shared with the
    backend's siblings; only the owner releases it.

    Args:
        database: Absolute file path, or ``":memory:"``.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._store: Store | None = None

    @property
    def claimed(self) -> Store | None:
        """The store, if claimed already."""
        return self._store

    async def store(self) -> Store:
        """The store, claimed and connected on first use."""
        if self._store is None:
            self._store = Store.claim(self.database)
        await self._store.connection()
        return self._store

    async def release(self) -> None:
        """Give the claim up (the store closes once no backend holds it)."""
        store, self._store = self._store, None
        if store is not None:
            await store.release()
