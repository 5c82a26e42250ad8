"""Job timeouts: the worker cancels a task that runs too long."""

import asyncio
import time
from typing import Any

from jobwire import Queue, Status


async def test_timeout_cancels_the_task_and_fails_the_job(
    queue: Queue, running_worker: Any
) -> None:
    cancelled: list[bool] = []

    async def slow(ctx: dict[str, Any]) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    async with running_worker(queue, [slow]):
        job = await queue.enqueue("slow", timeout=0.3)
        assert job is not None
        t0 = time.monotonic()
        done = await queue.wait(job, timeout=5)
        elapsed = time.monotonic() - t0
    assert done.status is Status.FAILED
    assert done.error is not None
    assert done.error.type == "TimeoutError"
    assert done.attempts == 1
    assert done.result is None
    assert cancelled == [True]
    assert elapsed < 2.0
    assert 0.25 <= done.completed - done.started <= 1.5


async def test_timeout_is_retried_when_retries_are_left(queue: Queue, running_worker: Any) -> None:
    calls: list[int] = []

    async def slow(ctx: dict[str, Any]) -> None:
        calls.append(1)
        await asyncio.sleep(30)

    async with running_worker(queue, [slow]):
        job = await queue.enqueue("slow", timeout=0.2, retries=1)
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.error is not None and done.error.type == "TimeoutError"
    assert done.attempts == 2
    assert len(calls) == 2


async def test_task_within_its_timeout_completes(queue: Queue, running_worker: Any) -> None:
    async def quick(ctx: dict[str, Any]) -> str:
        await asyncio.sleep(0.1)
        return "in time"

    async with running_worker(queue, [quick]):
        job = await queue.enqueue("quick", timeout=2)
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.result == "in time"
    assert done.error is None


async def test_queue_default_timeout_applies(make_queue: Any, running_worker: Any) -> None:
    q = make_queue(timeout=0.2)

    async def slow(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(30)

    async with running_worker(q, [slow]):
        job = await q.enqueue("slow")
        assert job is not None
        done = await q.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.error is not None and done.error.type == "TimeoutError"
