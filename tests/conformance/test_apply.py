"""``queue.apply`` and ``queue.wait``: results, errors, aborts and timeouts."""

import asyncio
import time
from typing import Any

import pytest

from jobwire import Job, JobAborted, JobFailed, JobNotFound, Queue, Status


async def add(ctx: dict[str, Any], *, a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


async def divide(ctx: dict[str, Any], *, a: int, b: int) -> float:
    """Return ``a / b``."""
    return a / b


async def echo(ctx: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Return the keyword arguments."""
    return kwargs


async def nap(ctx: dict[str, Any], *, seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return "rested"


FUNCTIONS = [add, divide, echo, nap]


async def test_apply_returns_the_result(queue: Queue, running_worker: Any) -> None:
    async with running_worker(queue, FUNCTIONS):
        assert await queue.apply("add", a=2, b=3, wait_timeout=5) == 5
        payload = {"s": "x", "n": [1, 2.5, None], "d": {"k": True}}
        assert await queue.apply("echo", wait_timeout=5, **payload) == payload


async def test_apply_accepts_a_job_instance(queue: Queue, running_worker: Any) -> None:
    async with running_worker(queue, FUNCTIONS):
        assert await queue.apply(Job("add", kwargs={"a": 40, "b": 2}), wait_timeout=5) == 42


async def test_apply_raises_job_failed_with_the_remote_error(
    queue: Queue, running_worker: Any
) -> None:
    async with running_worker(queue, FUNCTIONS):
        with pytest.raises(JobFailed) as caught:
            await queue.apply("divide", a=1, b=0, wait_timeout=5)
    job = caught.value.job
    assert job.status is Status.FAILED
    assert job.error is not None
    assert job.error.type == "ZeroDivisionError"
    assert "division by zero" in job.error.message
    assert "divide" in job.error.traceback
    assert "ZeroDivisionError" in str(caught.value)


async def test_apply_raises_job_aborted(queue: Queue, running_worker: Any, eventually: Any) -> None:
    async with running_worker(queue, FUNCTIONS):
        applying = asyncio.create_task(queue.apply("nap", seconds=30, wait_timeout=10))
        [active] = await eventually(lambda: queue.jobs(status=Status.ACTIVE))
        await queue.abort(active, error="enough")
        with pytest.raises(JobAborted) as caught:
            await applying
    assert caught.value.job.id == active.id
    assert caught.value.job.status is Status.ABORTED
    assert caught.value.job.error is not None
    assert caught.value.job.error.message == "enough"


async def test_apply_wait_timeout_raises_timeout_error(queue: Queue, running_worker: Any) -> None:
    async with running_worker(queue, FUNCTIONS, shutdown_grace_s=0.1):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await queue.apply("nap", seconds=5, wait_timeout=0.3)
        elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 1.5, elapsed


async def test_wait_times_out_on_an_unfinished_job(queue: Queue) -> None:
    job = await queue.enqueue("add", a=1, b=1)
    assert job is not None
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await queue.wait(job, timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 1.5
    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.QUEUED


async def test_wait_by_id_returns_the_finished_job(queue: Queue, running_worker: Any) -> None:
    job = await queue.enqueue("add", a=20, b=22)
    assert job is not None
    async with running_worker(queue, FUNCTIONS):
        done = await queue.wait(job.id, timeout=5)
    assert done.id == job.id
    assert done.status is Status.COMPLETE
    assert done.result == 42
    assert done.attempts == 1
    assert done.started > 0
    assert done.completed >= done.started


async def test_wait_returns_promptly_after_completion(queue: Queue, running_worker: Any) -> None:
    async with running_worker(queue, FUNCTIONS):
        job = await queue.enqueue("nap", seconds=0.5)
        assert job is not None
        done = await queue.wait(job, timeout=5)
        returned_at = time.time()
    assert done.status is Status.COMPLETE
    lag = returned_at - done.completed
    assert lag < 0.2, f"wait() returned {lag * 1000:.0f} ms after the job completed"


async def test_wait_on_an_already_finished_job(queue: Queue, running_worker: Any) -> None:
    async with running_worker(queue, FUNCTIONS):
        job = await queue.enqueue("add", a=1, b=2)
        assert job is not None
        await queue.wait(job, timeout=5)
    again = await queue.wait(job, timeout=1)
    assert again.result == 3


async def test_wait_on_a_missing_job_raises_not_found(queue: Queue) -> None:
    with pytest.raises(JobNotFound):
        await queue.wait("no-such-job", timeout=1)
