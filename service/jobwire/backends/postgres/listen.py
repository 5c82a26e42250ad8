"""LISTEN/NOTIFY for the PostgreSQL backend.

A ``Listener`` owns one dedicated connection (outside the pool: a pooled connection
would be reset, and its LISTENs dropped, whenever it went back to the pool) on which
every backend of a store listens. It reconnects when the connection drops and then tells
every subscriber, since notifications sent meanwhile were lost.

A ``QueueEvents`` fans one queue's two channels out to local waiters, like the Redis
backend's notifier: ``wake`` (new work, empty payload; or an active job was aborted,
payload: its id) and ``events`` (a job changed; payload: its id).
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from jobwire.backends.waiters import Waiters

logger = logging.getLogger("jobwire.postgres")

Connect = Callable[[], Awaitable[asyncpg.Connection]]
RECONNECT_DELAY_S = 0.5
PING_INTERVAL_S = 10.0  # a connection silently gone (no FIN) is noticed within this
PING_TIMEOUT_S = 5.0
_MAX_CHANNEL_BYTES = 63  # NAMEDATALEN - 1


def channel_name(kind: str, queue: str) -> str:
    """The channel of one queue: readable when it fits PostgreSQL's 63 bytes, else hashed."""
    name = f"jobwire:{kind}:{queue}"
    if len(name.encode()) <= _MAX_CHANNEL_BYTES:
        return name
    return f"jobwire:{kind}:#{hashlib.sha1(queue.encode()).hexdigest()}"


class _Subscriber:
    __slots__ = ("channel", "on_message", "on_reconnect")

    def __init__(
        self, channel: str, on_message: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        self.channel = channel
        self.on_message = on_message
        self.on_reconnect = on_reconnect


class Listener:
    """One connection LISTENing on channels for many subscribers.

    Args:
        connect: Opens a new connection.
    """

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._subscribers: dict[str, list[_Subscriber]] = {}
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one operation at a time on the connection
        self._supervisor: asyncio.Task[None] | None = None

    async def subscribe(
        self, channel: str, on_message: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> _Subscriber:
        """Call ``on_message(payload)`` for each notification on ``channel``.

        Once this returns, the channel is listened to (or, while the connection is down,
        ``on_reconnect`` will be called when it is back).

        Raises:
            OSError, asyncpg.PostgresError: The first connection could not be opened.
        """
        subscriber = _Subscriber(channel, on_message, on_reconnect)
        async with self._lock:
            if self._supervisor is None:
                conn = await self._open()
                self._supervisor = asyncio.create_task(
                    self._supervise(conn), name="jobwire-pg-listen"
                )
            subscribers = self._subscribers.setdefault(channel, [])
            subscribers.append(subscriber)
            if len(subscribers) == 1 and self._conn is not None:
                await self._conn.add_listener(channel, self._dispatch)
        return subscriber

    async def unsubscribe(self, subscriber: _Subscriber) -> None:
        """Stop calling ``subscriber``; UNLISTEN its channel if nobody else listens."""
        async with self._lock:
            subscribers = self._subscribers.get(subscriber.channel, [])
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if subscribers:
                return
            self._subscribers.pop(subscriber.channel, None)
            if self._conn is not None and not self._conn.is_closed():
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await self._conn.remove_listener(subscriber.channel, self._dispatch)

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._subscribers.clear()

    async def _open(self) -> asyncpg.Connection:
        """Connect and LISTEN on every subscribed channel (the caller holds the lock)."""
        conn = await self._connect()
        try:
            for channel in self._subscribers:
                await conn.add_listener(channel, self._dispatch)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def _supervise(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                await self._serve(conn)
                conn = await self._reconnect()
                for subscribers in list(self._subscribers.values()):
                    for subscriber in subscribers:
                        subscriber.on_reconnect()
        finally:
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None

    async def _serve(self, conn: asyncpg.Connection) -> None:
        """Return once ``conn`` is closed or stops answering."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_INTERVAL_S):
                    await lost.wait()
                    break
            try:
                async with self._lock, asyncio.timeout(PING_TIMEOUT_S):
                    await conn.execute("SELECT 1")
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("LISTEN connection not answering (%r)", exc)
                break
        logger.warning("LISTEN connection lost; reconnecting")
        self._conn = None
        conn.terminate()

    async def _reconnect(self) -> asyncpg.Connection:
        while True:
            await asyncio.sleep(RECONNECT_DELAY_S)
            try:
                async with self._lock:
                    return await self._open()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("LISTEN reconnect failed (%r); retrying", exc)

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        for subscriber in list(self._subscribers.get(channel, ())):
            subscriber.on_message(str(payload))


class QueueEvents(Waiters):
    """One queue's wake-ups and job events, fanned out to local waiters.

    ``wake`` is listened to from ``start``; ``events`` only once this process waits on a
    job, so workers that never wait don't receive every job's events.
    """

    def __init__(self, listener: Listener, queue: str) -> None:
        super().__init__()
        self.wake_channel = channel_name("wake", queue)
        self.events_channel = channel_name("events", queue)
        self._listener = listener
        self._wake: _Subscriber | None = None
        self._events: _Subscriber | None = None
        self._events_lock = asyncio.Lock()

    async def start(self) -> None:
        """Listen for wake-ups."""
        if self._wake is None:
            self._wake = await self._listener.subscribe(
                self.wake_channel, self.wake_message, self.work.set
            )

    async def stop(self) -> None:
        """Stop listening on both channels."""
        for subscriber in (self._wake, self._events):
            if subscriber is not None:
                await self._listener.unsubscribe(subscriber)
        self._wake = self._events = None

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """Yield an event that is set whenever the job changes (listening already)."""
        async with self._events_lock:
            if self._events is None:
                self._events = await self._listener.subscribe(
                    self.events_channel, self.job_changed, self.wake_watchers
                )
        with self.watching(job_id) as event:
            yield event
