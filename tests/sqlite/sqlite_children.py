"""Code the SQLite tests run in child processes (spawned: importable by module name)."""

import asyncio
import multiprocessing.synchronize
import os
import sqlite3
import time
from multiprocessing.queues import Queue as ProcessQueue
from typing import Any

from jobwire import Job, Queue, Status, Worker
from jobwire.backends.base import Outcome

JOB_S = 0.02  # how long each job of the worker test takes
# Between leases, as a worker pauses to run its jobs. Without any pause the process that
# holds the write lock retakes it at once, while the other sleeps in SQLite's busy
# handler (SQLite's lock is not fair): one process would take every job.
LEASE_PAUSE_S = 0.002


def run_worker(
    url: str, queue_name: str, runs_path: str, stop: multiprocessing.synchronize.Event
) -> None:
    """Work the queue until ``stop`` is set, recording every run in ``runs_path``."""
    asyncio.run(_work(url, queue_name, runs_path, stop))


async def _work(
    url: str, queue_name: str, runs_path: str, stop: multiprocessing.synchronize.Event
) -> None:
    runs = sqlite3.connect(runs_path, timeout=30, isolation_level=None)

    async def record(ctx: dict[str, Any], *, n: int) -> int:
        runs.execute("INSERT INTO runs (job_id, pid) VALUES (?, ?)", (ctx["job"].id, os.getpid()))
        await asyncio.sleep(JOB_S)
        return n

    queue = Queue.from_url(url, name=queue_name, lease_s=10)
    worker = Worker(queue, [record], concurrency=8, handle_signals=False, shutdown_grace_s=5)
    running = asyncio.create_task(worker.start())
    await asyncio.to_thread(stop.wait)
    await worker.stop()
    await running
    await queue.close()
    runs.close()


def lease_until_empty(
    url: str,
    queue_name: str,
    start: multiprocessing.synchronize.Barrier,
    results: "ProcessQueue[list[str]]",
) -> None:
    """Lease (and complete) jobs a few at a time until none is left; report their ids."""
    results.put(asyncio.run(_lease_until_empty(url, queue_name, start)))


async def _lease_until_empty(
    url: str, queue_name: str, start: multiprocessing.synchronize.Barrier
) -> list[str]:
    queue = Queue.from_url(url, name=queue_name, lease_s=30)
    await queue.connect()
    start.wait()
    taken: list[str] = []
    try:
        while True:
            jobs, _ = await queue.lease(f"leaser-{os.getpid()}", 3)
            if not jobs:
                return taken
            taken += [job.id for job in jobs]
            await queue.settle([_completed(job, os.getpid()) for job in jobs])
            await asyncio.sleep(LEASE_PAUSE_S)
    finally:
        await queue.close()


def enqueue_later(
    url: str, queue_name: str, delay_s: float, results: "ProcessQueue[float]"
) -> None:
    """After ``delay_s``, enqueue one job; report when it was created."""
    results.put(asyncio.run(_enqueue_later(url, queue_name, delay_s)))


async def _enqueue_later(url: str, queue_name: str, delay_s: float) -> float:
    async with Queue.from_url(url, name=queue_name) as queue:
        await asyncio.sleep(delay_s)
        job = await queue.enqueue("anything")
        assert job is not None
        return job.created


def complete_one(url: str, queue_name: str) -> None:
    """Lease one job (waiting for it) and complete it."""
    asyncio.run(_complete_one(url, queue_name))


async def _complete_one(url: str, queue_name: str) -> None:
    async with Queue.from_url(url, name=queue_name) as queue:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            jobs, _ = await queue.lease("child", 1, wait_s=0.5)
            if jobs:
                await asyncio.sleep(0.2)
                await queue.settle([_completed(jobs[0], "done")])
                return


def _completed(job: Job, result: Any) -> Outcome:
    return Outcome(job.id, job.lease or "", Status.COMPLETE, result=result)


def run_timed_worker(
    url: str, queue_name: str, runs_path: str, stop: multiprocessing.synchronize.Event
) -> None:
    """Work the queue until ``stop`` is set, recording when each run starts and ends."""
    asyncio.run(_work_timed(url, queue_name, runs_path, stop))


async def _work_timed(
    url: str, queue_name: str, runs_path: str, stop: multiprocessing.synchronize.Event
) -> None:
    runs = sqlite3.connect(runs_path, timeout=30, isolation_level=None)

    async def timed(ctx: dict[str, Any]) -> None:
        started = time.time()
        await asyncio.sleep(JOB_S * 2)
        runs.execute(
            "INSERT INTO runs (job_id, started, ended) VALUES (?, ?, ?)",
            (ctx["job"].id, started, time.time()),
        )

    queue = Queue.from_url(url, name=queue_name, lease_s=10)
    worker = Worker(queue, [timed], concurrency=8, handle_signals=False, shutdown_grace_s=5)
    running = asyncio.create_task(worker.start())
    await asyncio.to_thread(stop.wait)
    await worker.stop()
    await running
    await queue.close()
    runs.close()


def resume_later(url: str, queue_name: str, delay_s: float, results: "ProcessQueue[float]") -> None:
    """After ``delay_s``, resume the queue; report when."""
    results.put(asyncio.run(_resume_later(url, queue_name, delay_s)))


async def _resume_later(url: str, queue_name: str, delay_s: float) -> float:
    async with Queue.from_url(url, name=queue_name) as queue:
        await queue.connect()
        await asyncio.sleep(delay_s)
        await queue.resume()
        return time.time()
