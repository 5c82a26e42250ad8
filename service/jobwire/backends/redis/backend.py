"""Redis backend: every multi-key step is one Lua script over hash-tagged keys.

Keys of queue ``q`` (all share the ``{q}`` hash tag, so one Redis Cluster slot):

- ``jobwire:{q}:job:<id>``: hash of one job's fields;
- ``queued`` (zset, score ``seq - priority * 2**40``), ``scheduled`` (zset, score = due
  time), ``active`` (zset, score = lease expiry; holds aborting jobs too), ``aborting``
  (set), ``complete``/``failed``/``aborted`` (zsets, score = ttl expiry);
- ``keys``: hash of dedup key -> job id; ``seq``: FIFO counter; ``workers`` (zset, score =
  last seen) and ``workerinfo`` (hash); ``finished_per_minute`` (hash: minute -> count);
- flow control: ``flow`` (hash: ``paused``, ``settings`` JSON, the limits the lease script
  reads, ``blocked``), ``running_fn``/``running_key`` (hashes: active jobs per limited
  function / per concurrency key), ``starts``, ``starts:f:<function>``,
  ``starts:k:<key>`` (sliding-window logs of starts, a zset entry per lease call); see
  lua/limits.lua.

Channels: ``jobwire:{q}:wake`` (new work, empty payload; or an active job was aborted,
payload: its id), ``jobwire:{q}:events`` (a job changed; payload: id);
sharded channels (SPUBLISH, SSUBSCRIBE) on a cluster, which stay on the slot's shard.
"""

import asyncio
import contextlib
import functools
import importlib.resources
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from jobwire.backends.base import Backend, LeaseState, Outcome
from jobwire.backends.codec import error_json
from jobwire.backends.redis.cluster import FailoverCluster, ShardedSubscription
from jobwire.backends.redis.codec import decode_job, encode_filter, encode_job, encode_limits
from jobwire.backends.redis.connect import ReplicaWait, open_client, replica_wait
from jobwire.backends.waiters import Waiters
from jobwire.errors import InvalidJobState
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, ErrorInfo, Job, Status

logger = logging.getLogger("jobwire.redis")

# Each script is prelude.lua then these files, in order (libraries before their users).
_SCRIPTS: dict[str, tuple[str, ...]] = {
    "enqueue": ("enqueue",),
    "lease": ("lease", "limits", "lease_queue", "lease_jobs"),  # all but lease.lua: limits only
    "renew": ("renew",),
    "update": ("update",),
    "settle": ("slots", "settle"),
    "abort": ("slots", "ops", "abort"),
    "retry": ("slots", "ops", "retry"),
    "expired": ("expired",),
    "delete": ("slots", "ops", "delete"),
    "bulk": ("slots", "ops", "bulk"),
    "settings": ("slots", "limits", "settings"),
    "pause": ("pause",),
}
_QUEUES_KEY = "jobwire:queues"  # set of queue names (outside any queue's slot)
_REGISTER_EVERY_S = 60.0  # how often an enqueuing process re-adds its queue to that set
_ENQUEUE_CHUNK = 500  # jobs per script call: bounds how long one call blocks Redis
_WORKER_SEEN_S = 60.0
_WORKER_FORGET_S = 3600.0  # workers silent this long are dropped from the registry
_FINISHED_INDEXES = (Status.COMPLETE, Status.FAILED, Status.ABORTED)


_BULK_ABORT = ErrorInfo("Aborted", "aborted")  # what a bulk abort stores, as a single one
_PUBLISH = "local PUBLISH = 'PUBLISH'"  # the prelude's one line that names the command
_SHARDED_PUBLISH = "local PUBLISH = 'SPUBLISH'"


def _load_scripts(*, sharded: bool) -> dict[str, str]:
    folder = importlib.resources.files("jobwire.backends.redis") / "lua"
    prelude = (folder / "prelude.lua").read_text()
    if sharded:
        assert prelude.count(_PUBLISH) == 1, "prelude.lua must name PUBLISH once"
        prelude = prelude.replace(_PUBLISH, _SHARDED_PUBLISH)
    return {
        name: prelude + "".join((folder / f"{part}.lua").read_text() for part in parts)
        for name, parts in _SCRIPTS.items()
    }


_SOURCES = _load_scripts(sharded=False)
_CLUSTER_SOURCES = _load_scripts(sharded=True)


class RedisBackend(Backend):
    """Queue storage on Redis (or Redis Cluster, one slot per queue).

    Args:
        url: ``redis://`` or ``rediss://`` URL, or ``redis+cluster://host:port[,...]``
            (``rediss+cluster://``) for a cluster; ``?wait_replicas=N&wait_timeout_ms=T``
            waits for N replicas after each enqueue (``jobwire.backends.redis.connect``).
        queue_name: The queue.
        lease_s: Default lease for jobs with ``heartbeat == 0``.
    """

    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        client: Redis | FailoverCluster | None = None,
    ) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self.url = url
        budget_s = self.call_timeout_s or 5.0
        self._wait: ReplicaWait | None = replica_wait(url, budget_s)
        self.redis: Redis | FailoverCluster = client or open_client(url, budget_s)
        self._owns_client = client is None
        self._registered_at = -_REGISTER_EVERY_S
        self.prefix = f"jobwire:{{{queue_name}}}:"
        subscribe: _Subscribe
        if isinstance(self.redis, FailoverCluster):  # sharded pub/sub on the queue's shard
            sources = _CLUSTER_SOURCES
            subscribe = functools.partial(ShardedSubscription, self.redis)
        else:
            sources, subscribe = _SOURCES, functools.partial(_Subscription, self.redis)
        self._sources = sources
        self._scripts: dict[str, AsyncScript] = {
            name: self.redis.register_script(source) for name, source in sources.items()
        }
        self._events = _Notifier(subscribe, self.prefix)

    async def connect(self) -> None:
        await self._events.start()

    def for_queue(self, queue_name: str) -> "RedisBackend":
        return RedisBackend(self.url, queue_name, lease_s=self.lease_s, client=self.redis)

    async def close(self) -> None:
        await self._events.stop()
        if self._owns_client:
            await self.redis.aclose()

    async def _run(self, script: str, args: Sequence[Any]) -> Any:
        try:
            return await self._scripts[script](keys=[self.prefix], args=args)
        except NoScriptError:  # SCRIPT LOAD missed the node (a cluster's new master, say):
            source = self._sources[script]  # EVAL runs it there and caches it
            return await self.redis.eval(source, 1, self.prefix, *args)

    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        if time.monotonic() - self._registered_at > _REGISTER_EVERY_S:  # survives a FLUSHALL
            await self.redis.sadd(_QUEUES_KEY, self.queue_name)
            self._registered_at = time.monotonic()
        chunks = [
            _enqueue_args(jobs[i : i + _ENQUEUE_CHUNK]) for i in range(0, len(jobs), _ENQUEUE_CHUNK)
        ]
        replies = await self._enqueue_chunks(chunks)
        pairs: list[tuple[Job, bool]] = []
        duplicates: list[tuple[int, str]] = []
        for reply in replies:
            stamp = int(reply[0]) + int(reply[1]) / 1e6
            for i in range(2, len(reply), 2):
                job = jobs[len(pairs)]
                if reply[i + 1]:
                    _mark_enqueued(job, stamp)
                else:
                    duplicates.append((len(pairs), reply[i].decode()))
                pairs.append((job, bool(reply[i + 1])))
        for index, existing_id in duplicates:
            existing = await self.get(existing_id)
            pairs[index] = (existing or jobs[index], False)
        return pairs

    async def _enqueue_chunks(self, chunks: list[list[Any]]) -> list[Any]:
        script, wait = self._scripts["enqueue"], self._wait
        if isinstance(self.redis, FailoverCluster):
            # A cluster pipeline has no NOSCRIPT fallback: one call per chunk (each WAITed).
            if wait is None:
                return [await self._run("enqueue", args) for args in chunks]
            replies = []
            for args in chunks:
                reply, acknowledged = await self.redis.run_then_wait(
                    script, self.prefix, args, wait.replicas, wait.timeout_ms
                )
                self._check_replicas(acknowledged)
                replies.append(reply)
            return replies
        if len(chunks) == 1 and wait is None:  # a pipeline would add a SCRIPT EXISTS round trip
            return [await self._run("enqueue", chunks[0])]
        async with self.redis.pipeline(transaction=False) as pipe:
            for args in chunks:
                await script(keys=[self.prefix], args=args, client=pipe)
            if wait is not None:  # on the same connection: WAIT counts its writes
                pipe.wait(wait.replicas, wait.timeout_ms)
            replies = await pipe.execute()
        if wait is not None:
            self._check_replicas(replies.pop())
        return replies

    def _check_replicas(self, acknowledged: int) -> None:
        if self._wait is not None and acknowledged < self._wait.replicas:
            logger.warning(
                "enqueue on %s: %d of %d replicas acknowledged it within %d ms",
                self.queue_name, acknowledged, self._wait.replicas, self._wait.timeout_ms,
            )  # fmt: skip

    async def get(self, job_id: str) -> Job | None:
        fields = await self.redis.hgetall(self.prefix + "job:" + job_id)
        return decode_job(job_id, self.queue_name, fields) if fields else None

    async def queues(self) -> list[str]:
        return sorted(name.decode() for name in await self.redis.smembers(_QUEUES_KEY))

    async def find_job(self, job_id: str) -> Job | None:
        names = await self.queues()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(f"jobwire:{{{name}}}:job:{job_id}")
            replies = await pipe.execute()
        for name, fields in zip(names, replies, strict=True):
            if fields:
                return decode_job(job_id, name, fields)
        return None

    async def delete(self, job_id: str) -> bool:
        return bool(await self._run("delete", [job_id]))

    async def _get_many(self, ids: Sequence[bytes | str]) -> list[Job]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.prefix + "job:" + _text(job_id))
            replies = await pipe.execute()
        return [
            decode_job(_text(job_id), self.queue_name, fields)
            for job_id, fields in zip(ids, replies, strict=True)
            if fields
        ]

    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        statuses = [status] if status else list(Status)
        jobs: list[Job] = []
        for wanted in statuses:
            ids = await self._index_ids(wanted, limit - len(jobs))
            jobs += [job for job in await self._get_many(ids) if job.status == wanted]
            if len(jobs) >= limit:
                break
        return jobs[:limit]

    async def _index_ids(self, status: Status, limit: int) -> list[bytes]:
        if limit <= 0:
            return []
        if status == Status.ABORTING:
            return sorted(await self.redis.smembers(self.prefix + "aborting"))[:limit]
        if status == Status.ACTIVE:  # the active index holds aborting jobs too: read past them
            limit += await self.redis.scard(self.prefix + "aborting")
        if status in _FINISHED_INDEXES:  # newest first, skipping entries past their ttl
            return await self.redis.zrevrangebyscore(
                self.prefix + status, "+inf", time.time(), start=0, num=limit
            )
        return await self.redis.zrange(self.prefix + status, 0, limit - 1)

    async def counts(self) -> dict[Status, int]:
        cutoff = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in ("queued", "scheduled", "active"):
                pipe.zcard(self.prefix + name)
            pipe.scard(self.prefix + "aborting")
            for status in _FINISHED_INDEXES:
                pipe.zcount(self.prefix + status, cutoff, "+inf")
            queued, scheduled, active, aborting, complete, failed, aborted = await pipe.execute()
        return {
            Status.QUEUED: queued,
            Status.SCHEDULED: scheduled,
            Status.ACTIVE: active - aborting,
            Status.ABORTING: aborting,
            Status.COMPLETE: complete,
            Status.FAILED: failed,
            Status.ABORTED: aborted,
        }

    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        fields = await self._run("abort", [job_id, error_json(error)])
        return decode_job(job_id, self.queue_name, _pairs(fields)) if fields else None

    async def retry(self, job_id: str) -> Job | None:
        code, fields = await self._run("retry", [job_id])
        if code == 0:
            return None
        job = decode_job(job_id, self.queue_name, _pairs(fields))
        if code == 2:
            raise InvalidJobState(f"job {job_id}: another live job holds its key {job.key!r}")
        if code == 3:
            raise InvalidJobState(
                f"job {job_id} is {job.status}; only a finished job can be retried"
            )
        return job

    async def lease(self, worker_id: str, max_jobs: int) -> tuple[list[Job], float | None]:
        token = secrets.token_hex(8)
        reply = await self._run("lease", [max_jobs, token, self.lease_s, worker_id])
        next_due = float(reply[0]) if reply[0] else None
        jobs = [self._decode_reply(fields) for fields in reply[1:]]
        return jobs, next_due

    async def settings(self) -> QueueSettings:
        return QueueSettings.from_json(await self.redis.hget(self.prefix + "flow", "settings"))

    async def put_settings(self, settings: QueueSettings) -> None:
        await self._run("settings", encode_limits(settings))

    async def is_paused(self) -> bool:
        return bool(await self.redis.hexists(self.prefix + "flow", "paused"))

    async def set_paused(self, paused: bool) -> None:
        await self._run("pause", ["1" if paused else "0"])

    async def bulk(
        self, action: BulkAction, where: JobFilter, cursor: str | None, limit: int
    ) -> tuple[int, str | None]:
        args = [action.value, cursor or "", limit, *encode_filter(where), error_json(_BULK_ABORT)]
        changed, next_cursor = await self._run("bulk", args)
        return int(changed), next_cursor.decode() or None

    def _decode_reply(self, flat: list[bytes]) -> Job:
        fields = _pairs(flat)
        return decode_job(fields[b"id"].decode(), self.queue_name, fields)

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        if not leases:
            return []
        args: list[Any] = [self.lease_s]
        for job_id, token in leases:
            args += [job_id, token]
        return [state.decode() for state in await self._run("renew", args)]

    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        meta_json = orjson.dumps(meta) if meta is not None else ""
        progress_text = "" if progress is None else repr(float(progress))
        return bool(await self._run("update", [job_id, lease, progress_text, meta_json]))

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        args: list[Any] = []
        for o in outcomes:
            result = orjson.dumps(o.result) if o.status == Status.COMPLETE else ""
            error = error_json(o.error) if o.error else ""
            args += [
                o.job_id,
                o.lease,
                o.status.value,
                result,
                error,
                o.delay_s,
                "1" if o.only_if_expired else "0",
            ]
        return [bool(flag) for flag in await self._run("settle", args)]

    async def expired(self, limit: int) -> list[Job]:
        return [self._decode_reply(fields) for fields in await self._run("expired", [limit])]

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

    async def throughput(self, window_s: float) -> float:
        buckets = await self.redis.hgetall(self.prefix + "finished_per_minute")
        since = int((time.time() - window_s) // 60)  # whole minutes: a slight overestimate
        return sum(int(n) for minute, n in buckets.items() if int(minute) >= since) / window_s

    async def touch_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        seen = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.prefix + "workers", {worker_id: seen})
            pipe.hset(self.prefix + "workerinfo", worker_id, orjson.dumps(info).decode())
            pipe.zrangebyscore(self.prefix + "workers", "-inf", seen - _WORKER_FORGET_S)
            pipe.zremrangebyscore(self.prefix + "workers", "-inf", seen - _WORKER_FORGET_S)
            forgotten = (await pipe.execute())[2]
        if forgotten:
            await self.redis.hdel(self.prefix + "workerinfo", *forgotten)

    async def workers(self) -> list[dict[str, Any]]:
        seen_ids = await self.redis.zrangebyscore(
            self.prefix + "workers", time.time() - _WORKER_SEEN_S, "+inf", withscores=True
        )
        if not seen_ids:
            return []
        infos = await self.redis.hmget(self.prefix + "workerinfo", [i for i, _ in seen_ids])
        return [
            {**(orjson.loads(info) if info else {}), "id": worker_id.decode(), "seen": seen}
            for (worker_id, seen), info in zip(seen_ids, infos, strict=True)
        ]


def _enqueue_args(jobs: Sequence[Job]) -> list[Any]:
    args: list[Any] = []
    for job in jobs:
        fields = encode_job(job)
        args += [job.id, job.key or "", job.scheduled, job.priority, len(fields), *fields]
    return args


def _mark_enqueued(job: Job, stamp: float) -> None:
    job.created = job.touched = stamp
    if job.scheduled > stamp:
        job.status = Status.SCHEDULED
    else:
        job.status, job.queued = Status.QUEUED, stamp


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    it = iter(flat)
    return dict(zip(it, it, strict=True))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Channel(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# (channel, on_message, on_subscribed) -> its subscription
_Subscribe = Callable[[str, Callable[[bytes], None], Callable[[], None]], _Channel]


class _Subscription:
    """One pub/sub connection on one channel, read by its own task.

    Only the reader task touches the connection (it is subscribed before the task
    starts), so a dropped connection is re-established by redis-py in one place.
    """

    def __init__(
        self,
        redis: Redis,
        channel: str,
        on_message: Callable[[bytes], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            if self._reader is None:
                self._pubsub = self._redis.pubsub()
                await self._pubsub.subscribe(self._channel)
                self._reader = asyncio.create_task(
                    self._read(self._pubsub), name=f"jobwire-sub-{self._channel}"
                )

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._on_message(message["data"])
                    elif message["type"] == "subscribe":
                        # (Re-)subscribed: whatever was published meanwhile was missed.
                        self._on_subscribed()
            except (RedisConnectionError, OSError) as exc:
                logger.warning("pub/sub on %s lost (%s); reconnecting", self._channel, exc)
                await asyncio.sleep(0.5)  # listen() reconnects and re-subscribes


class _Notifier(Waiters):
    """Fans the queue's two channels out to local waiters.

    ``wake`` (new work, empty payload; or an active job was aborted, payload its id) is
    subscribed on connect; ``events`` (a job changed; the payload is its id) only once
    this process waits on a job, so workers that never wait don't receive every job's
    events.
    """

    def __init__(self, subscribe: _Subscribe, prefix: str) -> None:
        super().__init__()
        self._wake = subscribe(prefix + "wake", self._on_wake, self.work.set)
        self._events = subscribe(prefix + "events", self._on_event, self.wake_watchers)

    async def start(self) -> None:
        await self._wake.start()

    async def stop(self) -> None:
        await self._wake.stop()
        await self._events.stop()

    def _on_wake(self, payload: bytes) -> None:
        self.wake_message(payload.decode())

    def _on_event(self, job_id: bytes) -> None:
        self.job_changed(job_id.decode())

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """Yield an event that is set whenever the job changes (listening already)."""
        await self._events.start()
        with self.watching(job_id) as event:
            yield event
