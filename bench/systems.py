"""The systems under test behind one interface: SAQ, Jobwire on Redis, Jobwire over HTTP
and over gRPC."""

import asyncio
import logging
import os
import time
from typing import Any, Protocol

SERVICE_URL_ENV = "JOBWIRE_BENCH_SERVICE_URL"  # set by the parent; spawned workers inherit it
GRPC_URL_ENV = "JOBWIRE_BENCH_GRPC_URL"  # the same service's grpc:// URL


class BenchError(RuntimeError):
    """A system under test misbehaved (crashed, stalled, failed jobs)."""


# --- task functions (both systems call them with a ctx dict) -----------------


async def noop(ctx: dict[str, Any]) -> None:
    """Do nothing; the job of the drain and enqueue measurements."""
    return None


async def stamp(ctx: dict[str, Any]) -> float:
    """Return the wall-clock time the task started; the latency job."""
    return time.time()


class System(Protocol):
    """What the benchmark needs from a job queue library."""

    key: str
    label: str

    def queue(self, url: str, name: str) -> Any:
        """Create a queue object for ``name`` on the Redis at ``url``."""

    async def connect(self, queue: Any) -> None:
        """Open the queue's connection so later calls do not pay for it."""

    async def enqueue(self, queue: Any, function: str) -> str:
        """Enqueue one job; return the reference :meth:`results` takes."""

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        """Enqueue ``count`` jobs the fastest way the library offers."""

    async def finished(self, queue: Any, total: int) -> int:
        """How many of the ``total`` jobs put on this queue have finished."""

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        """Results of the jobs ``refs``, in order."""

    async def close(self, queue: Any) -> None:
        """Release the queue's connections."""

    def worker(self, queue: Any, concurrency: int) -> Any:
        """A worker (with ``start()``/``stop()``) running noop and stamp."""


class Saq:
    """SAQ 0.26.x adapter."""

    key = "saq"
    label = "SAQ"

    def queue(self, url: str, name: str) -> Any:
        from saq import Queue

        return Queue.from_url(url, name=name)

    async def connect(self, queue: Any) -> None:
        await queue.connect()
        await queue.version()

    async def enqueue(self, queue: Any, function: str) -> str:
        job = await queue.enqueue(function)
        return str(job.key)

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        # SAQ has no batch enqueue; concurrent enqueues (what its Queue.map does,
        # capped by the queue's max_concurrent_ops=20) are its fastest way.
        await asyncio.gather(*(queue.enqueue(function) for _ in range(count)))

    async def finished(self, queue: Any, total: int) -> int:
        # A job leaves the "incomplete" set only when it finishes.
        return total - int(await queue.count("incomplete"))

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        return [job.result for job in await queue.jobs(refs)]

    async def close(self, queue: Any) -> None:
        await queue.disconnect()

    def worker(self, queue: Any, concurrency: int) -> Any:
        from saq import Worker

        # stop() with the default grace period of 0 cancels the idle dequeue loops
        # and logs a warning about it every time; that is expected here.
        logging.getLogger("saq").setLevel(logging.ERROR)
        return Worker(queue, functions=[noop, stamp], concurrency=concurrency)


class Jobwire:
    """Jobwire adapter."""

    key = "jobwire"
    label = "Jobwire"

    def queue(self, url: str, name: str) -> Any:
        from jobwire import Queue

        return Queue.from_url(url, name=name)

    async def connect(self, queue: Any) -> None:
        await queue.connect()

    async def enqueue(self, queue: Any, function: str) -> str:
        job = await queue.enqueue(function)
        return str(job.id)

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        from jobwire import Job

        await queue.enqueue_many([Job(function) for _ in range(count)])

    async def finished(self, queue: Any, total: int) -> int:
        counts = (await queue.info())["counts"]
        if counts["failed"] or counts["aborted"]:
            raise BenchError(f"Jobwire: jobs did not complete: {counts}")
        return int(counts["complete"])

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        return [(await queue.job(ref)).result for ref in refs]

    async def close(self, queue: Any) -> None:
        await queue.close()

    def worker(self, queue: Any, concurrency: int) -> Any:
        from jobwire import Worker

        return Worker(queue, functions=[noop, stamp], concurrency=concurrency)


class JobwireHttp(Jobwire):
    """Jobwire through a running `jobwire serve`: producer and worker talk HTTP only."""

    key = "jobwire-http"
    label = "Jobwire over HTTP"

    def queue(self, url: str, name: str) -> Any:
        from jobwire import Queue

        return Queue.from_url(os.environ[SERVICE_URL_ENV], name=name)


class JobwireGrpc(Jobwire):
    """Jobwire through a running `jobwire serve` over gRPC: the worker takes its jobs from
    the Work stream (pushed under credits), the producer enqueues by unary calls."""

    key = "jobwire-grpc"
    label = "Jobwire over gRPC"

    def queue(self, url: str, name: str) -> Any:
        from jobwire import Queue

        return Queue.from_url(os.environ[GRPC_URL_ENV], name=name)


SYSTEMS: dict[str, System] = {s.key: s for s in (Saq(), Jobwire(), JobwireHttp(), JobwireGrpc())}
