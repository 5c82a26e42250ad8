"""Graceful shutdown: finish within the grace period, else cancel and requeue."""

import asyncio
import time
from typing import Any

from timing import seconds

from jobwire import Queue, Status, Worker


async def test_stop_requeues_a_job_that_outlives_the_grace_period(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    cancelled: list[bool] = []
    running = asyncio.Event()

    async def sleepy(ctx: dict[str, Any]) -> str:
        running.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "slept"

    async def quick(ctx: dict[str, Any]) -> str:
        return "finished by the second worker"

    async with running_worker(queue, [("sleepy", sleepy)], shutdown_grace_s=0.3) as worker:
        job = await queue.enqueue("sleepy", retries=0)
        assert job is not None
        # The task itself must be running (over a network the store says ACTIVE a moment
        # before the worker has the job; a stop then hands it back unstarted, also fine).
        await asyncio.wait_for(running.wait(), timeout=5)
        t0 = time.monotonic()
        await worker.stop()
        stop_took = time.monotonic() - t0

    assert stop_took < 2.0, f"stop() took {stop_took:.2f} s with a 0.3 s grace period"
    assert cancelled == [True]
    requeued = await queue.job(job.id)
    assert requeued is not None
    assert requeued.status is Status.QUEUED, "interrupted job must be requeued, not left active"
    assert requeued.result is None

    async with running_worker(queue, [("sleepy", quick)]):
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.result == "finished by the second worker"


async def test_stop_lets_a_short_job_finish_within_the_grace_period(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    running = asyncio.Event()

    async def short(ctx: dict[str, Any]) -> str:
        running.set()
        await asyncio.sleep(0.4)
        return "done in time"

    async with running_worker(queue, [short], shutdown_grace_s=3) as worker:
        job = await queue.enqueue("short")
        assert job is not None
        await asyncio.wait_for(running.wait(), timeout=5)  # the task runs (see above)
        await worker.stop()
        # Right after stop() returns, the job is already settled.
        stored = await queue.job(job.id)
    assert stored is not None
    assert stored.status is Status.COMPLETE
    assert stored.result == "done in time"
    assert stored.attempts == 1


async def test_stopped_worker_takes_no_new_jobs(queue: Queue, running_worker: Any) -> None:
    ran: list[int] = []

    async def task(ctx: dict[str, Any]) -> None:
        ran.append(1)

    async with running_worker(queue, [task]) as worker:
        await worker.stop()
        await worker.stop()  # safe to call twice
        job = await queue.enqueue("task")
        assert job is not None
        await asyncio.sleep(0.4)
    assert ran == []
    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.QUEUED


async def test_start_returns_after_stop(queue: Queue) -> None:
    async def task(ctx: dict[str, Any]) -> None:
        pass

    worker = Worker(queue, functions=[task], poll_interval_s=seconds(0.1), handle_signals=False)
    runner = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(0.2)
        assert not runner.done(), "start() returned although stop() was not called"
    finally:
        await worker.stop()
        await asyncio.wait_for(runner, timeout=3)
    assert runner.done() and runner.exception() is None
