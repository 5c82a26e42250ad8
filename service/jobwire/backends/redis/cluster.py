"""Redis Cluster: a client that rides out a failover, sharded pub/sub, and WAIT on a slot.

redis-py's cluster client follows MOVED and ASK and refreshes its map of slots after a
connection error, but it retries a failed command a few times at once, while a replica
takes a second or more to replace a dead master: ``FailoverCluster`` retries with a
backoff until the store deadline instead. Its asyncio client has no pub/sub, so
``ShardedSubscription`` holds a connection of its own to the master of the channel's slot
(SSUBSCRIBE), and moves to the new master after a failover. An enqueue that must wait for
replicas (WAIT) runs on a connection of the slot's master with its WAIT right behind.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.cluster import PRIMARY, REPLICA
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

logger = logging.getLogger("jobwire.redis")

T = TypeVar("T")

# What a failover (or a slot moving) looks like to a client: the dead master refuses
# connections, the cluster is down or a slot uncovered until a replica takes over, and a
# stale map of slots sends commands to a node that answers MOVED.
FAILOVER_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,  # BusyLoadingError too
    TimeoutError,
    ClusterDownError,
    ClusterError,
    TryAgainError,
    AskError,  # MovedError too
    RedisClusterException,  # SlotNotCoveredError, and "cannot be connected" at (re)start
)
_CAUGHT: tuple[type[Exception], ...] = (*FAILOVER_ERRORS, RuntimeError)  # see _failover_error
FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 0.25  # a failover ends unannounced: look again soon
QUIET_CHECK_S = 5.0  # a subscription this quiet checks that its node still serves the slot
PIPELINE_PAUSE_S = 0.25  # redis-py's own pause between two tries of a cluster pipeline


async def riding_failover(
    call: Callable[[], Awaitable[T]],
    budget_s: float,
    after_failure: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``call()``, tried again after a failover error until ``budget_s`` seconds are spent.

    Args:
        call: Makes one attempt.
        budget_s: Time for all attempts and the pauses between them.
        after_failure: Awaited after each failed attempt (to refresh the map of slots).

    Raises:
        Exception: The last attempt's error, when the budget is spent, or any error that
            is not a failover's.
    """
    give_up = time.monotonic() + budget_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            return await call()
        except _CAUGHT as exc:
            if not _failover_error(exc) or time.monotonic() + pause >= give_up:
                raise
            logger.debug("cluster call failed (%r); trying again in %.2f s", exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)
        if after_failure is not None:
            with contextlib.suppress(*FAILOVER_ERRORS):
                await after_failure()


def _failover_error(exc: Exception) -> bool:
    # uvloop answers a write on a connection the dead node closed with a RuntimeError
    # ("the handler is closed"), which redis-py passes on as it is (the command was not sent).
    return isinstance(exc, FAILOVER_ERRORS) or "handler is closed" in str(exc)


class FailoverCluster(RedisCluster):
    """A cluster client whose commands ride out a failover (see ``riding_failover``).

    Args:
        budget_s: Time one command may spend on retries (the store deadline).
        **options: ``RedisCluster``'s.
    """

    def __init__(self, *, budget_s: float, **options: Any) -> None:
        # A cluster pipeline retries as a whole, PIPELINE_PAUSE_S apart, this many times.
        retries = max(int(budget_s / PIPELINE_PAUSE_S), 1)
        super().__init__(retry=Retry(NoBackoff(), retries), **options)
        self.budget_s = budget_s

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        """A command, tried again through a failover (within ``budget_s``)."""
        return await riding_failover(
            lambda: super(FailoverCluster, self).execute_command(*args, **kwargs), self.budget_s
        )

    async def initialize(self) -> "FailoverCluster":
        """Learn the cluster's nodes and slots, when not known or no longer trusted."""
        stale = self._initialize  # what redis-py's initialize() checks too
        await super().initialize()
        if stale:
            self._route_to_known_nodes()
        return self

    async def refresh_slots(self, suspect: str | None = None) -> None:
        """Ask the cluster again which node serves which slot.

        Args:
            suspect: A node (``host:port``) that failed us: asked last, as it may hang.
        """
        if suspect is not None:
            self.nodes_manager.move_node_to_end_of_cached_nodes(suspect)
        async with asyncio.timeout(self.budget_s):
            await self.nodes_manager.initialize()
        self._route_to_known_nodes()

    def _route_to_known_nodes(self) -> None:
        """Work around redis-py 7.4: a refresh keeps the nodes it knew (with their old
        roles) but routes slots to fresh copies of them, so SCRIPT LOAD misses a promoted
        replica (NOSCRIPT for good) and the next refresh drops the copies with their
        connections open. Route every slot to the known node, its role updated."""
        manager = self.nodes_manager
        known = manager.nodes_cache
        masters: set[str] = set()
        seen: set[int] = set()
        for nodes in manager.slots_cache.values():  # one list per range of slots
            if id(nodes) in seen:
                continue
            seen.add(id(nodes))
            nodes[:] = [known.setdefault(node.name, node) for node in nodes]
            masters.add(nodes[0].name)
        for name, node in known.items():
            node.server_type = PRIMARY if name in masters else REPLICA
        default = manager.default_node
        if masters and (default is None or default.name not in masters):
            manager.default_node = known[min(masters)]

    async def master_for(self, key: str) -> ClusterNode:
        """The master that serves ``key``'s slot (as far as this client knows).

        Raises:
            SlotNotCoveredError: No node serves it.
        """
        await self.initialize()
        node = self.get_node_from_key(key)
        if node is None:
            raise SlotNotCoveredError(f"no node serves the slot of {key!r}")  # type: ignore[no-untyped-call]
        return node

    def own_connection(self, node: ClusterNode) -> Connection:
        """A new connection to ``node`` (with the client's credentials and TLS), outside
        its pool: reads never time out, and nothing reconnects it behind our back."""
        options = {**node.connection_kwargs, "socket_timeout": None, "retry": Retry(NoBackoff(), 0)}
        connection: Connection = node.connection_class(**options)
        return connection

    async def run_then_wait(
        self, script: AsyncScript, key: str, args: list[Any], replicas: int, timeout_ms: int
    ) -> tuple[Any, int]:
        """Run ``script`` on ``key``'s master, then WAIT on the same connection (WAIT counts
        the replicas that have this connection's writes), through a failover.

        Returns:
            The script's reply and the number of replicas that acknowledged it.
        """

        async def attempt(send_body: bool = False) -> tuple[Any, int]:
            node = await self.master_for(key)
            run = ("EVAL", script.script) if send_body else ("EVALSHA", script.sha)
            commands = [
                PipelineCommand(0, *run, 1, key, *args),
                PipelineCommand(1, "WAIT", replicas, timeout_ms),
            ]
            await node.execute_pipeline(commands)
            reply, acknowledged = commands[0].result, commands[1].result
            if isinstance(reply, NoScriptError) and not send_body:  # a new master: no scripts
                return await attempt(send_body=True)  # EVAL caches it there
            if isinstance(reply, Exception):
                raise reply
            if isinstance(acknowledged, Exception):
                raise acknowledged
            return reply, int(acknowledged)

        async def after_failure() -> None:
            await self.refresh_slots()

        return await riding_failover(attempt, self.budget_s, after_failure)


class ShardedSubscription:
    """One sharded pub/sub channel (SSUBSCRIBE), read from the master of its slot by a
    task of its own.

    When that master dies, hangs (a quiet channel PINGs it every ``QUIET_CHECK_S``) or
    loses the slot (it says ``sunsubscribe``), the subscription asks the other nodes who
    serves the slot now, which refreshes the whole client's map of slots, and subscribes
    there; whatever was published meanwhile was missed, so ``on_subscribed`` runs after
    each subscribe.

    Args:
        cluster: The client whose nodes and credentials to use.
        channel: The channel (its hash tag decides the slot).
        on_message: Called with each message's payload.
        on_subscribed: Called after each (re)subscription.
    """

    def __init__(
        self,
        cluster: FailoverCluster,
        channel: str,
        on_message: Callable[[bytes], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._cluster = cluster
        self._channel = channel
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Subscribe (listening when this returns) and start the reader."""
        async with self._lock:
            if self._reader is None:
                connection = await riding_failover(self._subscribe, self._cluster.budget_s)
                self._on_subscribed()
                self._reader = asyncio.create_task(
                    self._read(connection), name=f"jobwire-ssub-{self._channel}"
                )

    async def stop(self) -> None:
        """Stop reading and close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _subscribe(self) -> Connection:
        node = await self._cluster.master_for(self._channel)
        connection = self._cluster.own_connection(node)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            await connection.send_command("SSUBSCRIBE", self._channel)
            await connection.read_response()  # the confirmation, or MOVED
        except BaseException:
            await connection.disconnect()
            raise
        return connection

    async def _read(self, connection: Connection) -> None:
        while True:
            suspect = None
            try:
                await self._listen(connection)
                logger.warning("sharded pub/sub on %s: the slot moved; following", self._channel)
            except Exception as exc:  # whatever it was, wake-ups must not stop for good
                logger.warning("sharded pub/sub on %s lost (%r); reconnecting", self._channel, exc)
                suspect = f"{connection.host}:{connection.port}"
            finally:
                await connection.disconnect()
            connection = await self._resubscribe(suspect)
            self._on_subscribed()

    async def _listen(self, connection: Connection) -> None:
        """Hand on messages until the node unsubscribes us (the slot left it) or, on a
        quiet channel, no longer serves the slot or leaves a PING unanswered (it hangs)."""
        pinged = False
        while True:
            message = await connection.read_response(timeout=QUIET_CHECK_S)
            if message is None:
                if pinged:
                    raise ConnectionError(f"no answer to PING within {QUIET_CHECK_S:g} s")
                if not self._served_by(connection):
                    return
                await connection.send_command("PING")
                pinged = True
                continue
            pinged = False
            kind = message[0] if isinstance(message, list) else None
            if kind == b"smessage":
                self._on_message(message[2])
            elif kind == b"sunsubscribe":
                return

    def _served_by(self, connection: Connection) -> bool:
        """Whether, as far as the client knows, ``connection``'s node serves the slot."""
        try:
            node = self._cluster.get_node_from_key(self._channel)
        except RedisClusterException:  # no map right now: no news either
            return True
        return node is None or node.name == f"{connection.host}:{connection.port}"

    async def _resubscribe(self, suspect: str | None) -> Connection:
        pause = FIRST_PAUSE_S
        while True:
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_S)
            try:
                await self._cluster.refresh_slots(suspect)
                return await self._subscribe()
            except Exception as exc:
                logger.debug("sharded pub/sub on %s: not yet (%r)", self._channel, exc)
