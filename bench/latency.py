"""Enqueue-to-start latency of an idle SDK worker, and the bare round trips to compare with.

* :func:`enqueue_to_start`: one SDK Worker process (concurrency 10) idles, then the producer
  enqueues 200 ``stamp`` jobs one at a time ~10 ms apart and reads each result back; a
  job's latency is the task's ``time.time()`` minus the ``time.time()`` read just before
  its enqueue (the method of bench_redis.py).
* :func:`rest_round_trip` / :func:`grpc_round_trip`: 200 sequential calls to the bare REST
  app's ``GET /ping`` (aiohttp, the SDK's HTTP client) or the bare gRPC echo (grpc.aio,
  the SDK's gRPC client), after a few unmeasured ones.
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
from bench_redis import IDLE_SETTLE_S, LATENCY_GAP_S, LATENCY_SAMPLES, percentile, wait_finished
from harness import WorkerProcess, running_worker
from load_grpc import REQUEST
from systems import System

from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

WORKER_CONCURRENCY = 10
ROUND_TRIPS = 200
ROUND_TRIP_WARMUP = 20


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """``{"p50": ms, "p99": ms}`` of the samples."""
    ordered = sorted(latencies_ms)
    return {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99)}


async def enqueue_to_start(system: System, url: str) -> dict[str, float]:
    """p50/p99 enqueue-to-start (ms) of ``system`` at ``url`` with an idle worker process."""
    queue = system.queue(url, f"latency-{uuid.uuid4().hex[:8]}")
    await system.connect(queue)
    try:
        worker = WorkerProcess(system, url, queue.name, WORKER_CONCURRENCY)
        async with running_worker(worker):
            worker.go()
            await asyncio.sleep(IDLE_SETTLE_S)
            sent = []
            for _ in range(LATENCY_SAMPLES):
                at = time.time()
                sent.append((await system.enqueue(queue, "stamp"), at))
                await asyncio.sleep(LATENCY_GAP_S)
            await wait_finished(system, queue, len(sent), worker)
        starts = await system.results(queue, [ref for ref, _ in sent])
    finally:
        await system.close(queue)
    return summary([(start - at) * 1000 for (_, at), start in zip(sent, starts, strict=True)])


async def _timed_calls(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(ROUND_TRIP_WARMUP):
        await call()
    samples = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


async def rest_round_trip(base_url: str) -> dict[str, float]:
    """p50/p99 (ms) of sequential ``GET /ping`` calls to the bare REST app."""
    async with aiohttp.ClientSession(base_url) as session:

        async def call() -> None:
            async with session.get("/ping") as response:
                response.raise_for_status()
                await response.read()

        return await _timed_calls(call)


async def grpc_round_trip(target: str) -> dict[str, float]:
    """p50/p99 (ms) of sequential ``Enqueue`` calls to the bare gRPC echo."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        return await _timed_calls(lambda: stub.Enqueue(REQUEST, timeout=10))
