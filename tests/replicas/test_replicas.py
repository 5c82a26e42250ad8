"""Two `jobwire serve` replicas on one store act as one: what is done through replica A
reaches workers and waiters on replica B through the store (Redis pub/sub, sharded on a
Redis Cluster, PostgreSQL NOTIFY, SQLite's shared file), not at the next renew or poll.

Each test measures one path ``ROUNDS`` times and prints the latencies (``-s`` shows
them); the median must be under ``TARGET_S`` and the slowest under ``SLOWEST_S``:
- an abort made on A reaches a task whose worker streams from B (the worker renews only
  every 30 s here, so nothing but the push can deliver it);
- ``GET /v1/jobs/{id}?wait=`` on B returns when the job's worker on A finishes;
- a job enqueued on A starts on a worker of B, streaming (gRPC) or long-polling (REST):
  its waiting lease is woken;
and a job's events on B follow what is done through A.
"""

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from service_fixtures import (
    NO_BACKGROUND_SWEEP,
    GrpcService,
    redis_database,
    start_grpc_service,
    stop_service,
)

import jobwire.worker as worker_module
from jobwire import Queue, Status, Worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROUNDS = 15
TARGET_S = 0.050  # the median, as the issue asks
# Any one round, on a loaded 2-core machine. SQLite's bound: a commit another process
# made is noticed by inotify within milliseconds, or else by the 1 s poll (a writer
# descheduled between writing the WAL and publishing the commit outlasts the rechecks).
SLOWEST_S = 2.0
REPLICAS_REDIS_DB = 4  # apart from the databases other tests' services use
# A worker's idle lease waits (REST: a long poll on the service) 2 s at most: a job that
# starts within milliseconds was pushed, and a stop (which lets a long poll answer, so no
# job leased meanwhile is dropped) takes at most that long.
WORKER_OPTIONS = {"concurrency": 1, "handle_signals": False, "shutdown_grace_s": 1,
                  "poll_interval_s": 2}  # fmt: skip


@pytest.fixture(scope="module", params=["redis", "redis-cluster", "postgres", "sqlite"])
def replicas(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GrpcService, GrpcService]]:
    """Two services on one store (A, B)."""
    if request.param == "redis":
        url = redis_database(request.getfixturevalue("redis_url"), REPLICAS_REDIS_DB)
    elif request.param == "redis-cluster":  # sharded pub/sub on each queue's master
        url = request.getfixturevalue("redis_cluster_url")
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('replicas')}/jobs.db"
    first = start_grpc_service(url, env=NO_BACKGROUND_SWEEP)
    try:
        second = start_grpc_service(url, env=NO_BACKGROUND_SWEEP)
        try:
            yield first, second
        finally:
            stop_service(second.proc)  # type: ignore[arg-type]
    finally:
        stop_service(first.proc)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _worker(url: str, queue: str, task: Callable[..., Any]) -> AsyncIterator[None]:
    """A worker of ``task`` on the service at ``url`` (``grpc://``: streaming; ``http://``:
    long-polling leases)."""
    worker = Worker(Queue.from_url(url, name=queue), [task], **WORKER_OPTIONS)
    running = asyncio.create_task(worker.start())
    try:
        yield
    finally:
        await worker.stop()
        await running
        await worker.queue.close()


def _report(what: str, latencies: list[float]) -> None:
    ms = sorted(round(s * 1000, 1) for s in latencies)
    print(f"\n{what}: median {statistics.median(ms)} ms, slowest {ms[-1]} ms over {len(ms)}")
    assert statistics.median(latencies) < TARGET_S, ms
    assert max(latencies) < SLOWEST_S, ms


async def _enqueue(client: httpx.AsyncClient, queue: str, **body: Any) -> str:
    reply = await client.post(f"/v1/queues/{queue}/jobs", json={"function": "task", **body})
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


async def test_abort_on_a_reaches_a_worker_streaming_from_b(
    replicas: tuple[GrpcService, GrpcService], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = replicas
    monkeypatch.setattr(worker_module, "RENEW_INTERVAL_S", 30.0)
    queue = f"abort-{uuid4().hex[:8]}"
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def task(ctx: dict[str, Any]) -> None:
        job_id = ctx["job"].id
        started.put_nowait(job_id)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.put_nowait((job_id, time.monotonic()))
            raise

    latencies = []
    async with httpx.AsyncClient(base_url=a.http) as client, _worker(b.url, queue, task):
        for _ in range(ROUNDS):
            job_id = await _enqueue(client, queue, heartbeat=120)
            assert await asyncio.wait_for(started.get(), 10) == job_id
            asked = time.monotonic()
            reply = await client.post(f"/v1/jobs/{job_id}/abort", json={"error": "stop"})
            assert reply.status_code == 200, reply.text
            stopped, at = await asyncio.wait_for(cancelled.get(), 10)
            assert stopped == job_id
            latencies.append(at - asked)
            done = await client.get(f"/v1/jobs/{job_id}", params={"wait": 10})
            assert done.json()["status"] == Status.ABORTED
    _report("abort on A -> task on B's stream cancelled", latencies)


async def test_wait_on_b_returns_when_a_worker_of_a_finishes(
    replicas: tuple[GrpcService, GrpcService],
) -> None:
    a, b = replicas
    queue = f"wait-{uuid4().hex[:8]}"
    release, finished = asyncio.Event(), asyncio.Queue[float]()

    async def task(ctx: dict[str, Any]) -> str:
        await release.wait()
        release.clear()
        finished.put_nowait(time.monotonic())
        return "done"

    latencies = []
    async with (
        httpx.AsyncClient(base_url=a.http) as on_a,
        httpx.AsyncClient(base_url=b.http, timeout=30) as on_b,
        _worker(a.url, queue, task),
    ):
        for _ in range(ROUNDS):
            job_id = await _enqueue(on_a, queue)
            waiting = asyncio.create_task(on_b.get(f"/v1/jobs/{job_id}", params={"wait": 20}))
            await asyncio.sleep(0.05)  # the long poll is waiting on B
            release.set()
            reply = await waiting
            answered = time.monotonic()
            assert reply.json()["status"] == Status.COMPLETE, reply.text
            latencies.append(answered - await finished.get())
    _report("job finished on A's worker -> long poll on B answered", latencies)


@pytest.mark.parametrize("via", ["grpc", "http"])
async def test_job_enqueued_on_a_starts_on_a_worker_of_b(
    replicas: tuple[GrpcService, GrpcService], via: str
) -> None:
    """Over gRPC B pushes the job on its Work stream; over REST B answers the worker's
    long-polling lease (which would otherwise end after 2 s)."""
    a, b = replicas
    queue = f"wake-{uuid4().hex[:8]}"
    started: asyncio.Queue[float] = asyncio.Queue()

    async def task(ctx: dict[str, Any]) -> None:
        started.put_nowait(time.monotonic())

    latencies = []
    url = b.url if via == "grpc" else b.http
    async with httpx.AsyncClient(base_url=a.http) as client, _worker(url, queue, task):
        await _enqueue(client, queue)  # the worker is connected and its lease waiting
        await asyncio.wait_for(started.get(), 10)
        for _ in range(ROUNDS):
            await asyncio.sleep(0.2)  # B's lease is waiting again
            asked = time.monotonic()
            await _enqueue(client, queue)
            latencies.append(await asyncio.wait_for(started.get(), 10) - asked)
    _report(f"enqueue on A -> task started on a worker of B ({via})", latencies)


def test_the_replicas_share_one_store(replicas: tuple[GrpcService, GrpcService]) -> None:
    """What one replica stores, the other reads (the premise of the tests above)."""
    a, b = replicas
    queue = f"shared-{uuid4().hex[:8]}"
    job = httpx.post(f"{a.http}/v1/queues/{queue}/jobs", json={"function": "task"}).json()
    seen = httpx.get(f"{b.http}/v1/jobs/{job['id']}")
    assert seen.status_code == 200 and seen.json()["id"] == job["id"]
    assert Path(a.log_path).exists() and Path(b.log_path).exists()


async def test_events_on_b_follow_a_job_run_through_a(
    replicas: tuple[GrpcService, GrpcService],
) -> None:
    """The Server-Sent Events of a job on B show each change made through A: its start,
    its progress, its end (the stream then closes)."""
    a, b = replicas
    queue = f"events-{uuid4().hex[:8]}"
    release = asyncio.Event()

    async def task(ctx: dict[str, Any]) -> str:
        await ctx["job"].update(progress=0.5)
        await release.wait()
        return "done"

    seen: list[tuple[str, float]] = []
    async with (
        httpx.AsyncClient(base_url=a.http) as on_a,
        httpx.AsyncClient(base_url=b.http, timeout=30) as on_b,
    ):
        job_id = await _enqueue(on_a, queue)
        async with (
            on_b.stream("GET", f"/v1/jobs/{job_id}/events") as events,
            _worker(a.url, queue, task),
        ):
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    job = json.loads(line[5:])
                    seen.append((job["status"], job["progress"]))
                    if job["progress"] == 0.5:
                        release.set()
    assert seen[0] == ("queued", 0.0), seen
    assert ("active", 0.5) in seen, seen
    assert seen[-1] == ("complete", 1.0), seen
