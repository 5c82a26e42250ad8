"""Retries, retry delays with backoff, and manual ``queue.retry``."""

import asyncio
import itertools
import time
from typing import Any

import pytest

from jobwire import InvalidJobState, Queue, Status

# Time a worker may take between a failure and the retry's start, beyond the delay.
SCHEDULING_SLACK_S = 0.3


async def test_failing_job_is_retried_then_fails(queue: Queue, running_worker: Any) -> None:
    calls: list[int] = []

    async def flaky(ctx: dict[str, Any]) -> None:
        calls.append(ctx["job"].attempts)
        raise ValueError(f"attempt {len(calls)} broke")

    async with running_worker(queue, [flaky]):
        job = await queue.enqueue("flaky", retries=2)
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.attempts == 3
    assert calls == [1, 2, 3]
    assert done.error is not None
    assert done.error.type == "ValueError"
    assert done.error.message == "attempt 3 broke"
    assert "flaky" in done.error.traceback


async def test_no_retries_means_one_attempt(queue: Queue, running_worker: Any) -> None:
    calls: list[int] = []

    async def once(ctx: dict[str, Any]) -> None:
        calls.append(1)
        raise KeyError("x")

    async with running_worker(queue, [once]):
        job = await queue.enqueue("once")
        assert job is not None
        done = await queue.wait(job, timeout=5)
        await asyncio.sleep(0.3)  # a wrongful retry would show up here
    assert done.status is Status.FAILED
    assert done.attempts == 1
    assert calls == [1]
    assert done.error is not None and done.error.type == "KeyError"


async def test_retry_succeeds_after_failures(queue: Queue, running_worker: Any) -> None:
    calls: list[int] = []

    async def third_time_lucky(ctx: dict[str, Any], *, value: int) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return value * 2

    async with running_worker(queue, [third_time_lucky]):
        job = await queue.enqueue("third_time_lucky", retries=5, value=21)
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.result == 42
    assert done.attempts == 3
    assert len(calls) == 3


async def test_queue_default_retries_apply(make_queue: Any, running_worker: Any) -> None:
    q = make_queue(retries=1)
    calls: list[int] = []

    async def fails(ctx: dict[str, Any]) -> None:
        calls.append(1)
        raise ValueError("no")

    async with running_worker(q, [fails]):
        job = await q.enqueue("fails")
        assert job is not None
        done = await q.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.attempts == 2
    assert len(calls) == 2


async def test_retry_delay_schedules_the_retry(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    starts: list[float] = []

    async def flaky(ctx: dict[str, Any]) -> str:
        starts.append(time.time())
        if len(starts) == 1:
            raise ValueError("first")
        return "ok"

    async with running_worker(queue, [flaky]):
        job = await queue.enqueue("flaky", retries=1, retry_delay=0.6)
        assert job is not None
        waiting = await wait_status(queue, job, Status.SCHEDULED, timeout=3)
        assert waiting.attempts == 1
        assert waiting.error is not None and waiting.error.type == "ValueError"
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.attempts == 2
    gap = starts[1] - starts[0]
    assert 0.6 <= gap <= 0.6 + SCHEDULING_SLACK_S, gap


async def _attempt_gaps(
    queue: Queue, running_worker: Any, attempts: int, **options: Any
) -> list[float]:
    """Run a job that always fails; return the gaps between its attempts' starts."""
    starts: list[float] = []

    async def always_fails(ctx: dict[str, Any]) -> None:
        starts.append(time.time())
        raise ValueError("again")

    async with running_worker(queue, [always_fails]):
        job = await queue.enqueue("always_fails", retries=attempts - 1, **options)
        assert job is not None
        done = await queue.wait(job, timeout=10)
    assert done.status is Status.FAILED
    assert done.attempts == attempts
    assert len(starts) == attempts
    return [b - a for a, b in itertools.pairwise(starts)]


@pytest.mark.slow
async def test_retry_backoff_doubles_with_jitter(queue: Queue, running_worker: Any) -> None:
    # delay_n = 0.3 * 2**(n-1), jittered into [delay_n / 2, delay_n].
    gaps = await _attempt_gaps(queue, running_worker, 4, retry_delay=0.3, retry_backoff=True)
    assert 0.15 <= gaps[0] <= 0.3 + SCHEDULING_SLACK_S, gaps
    assert 0.3 <= gaps[1] <= 0.6 + SCHEDULING_SLACK_S, gaps
    assert 0.6 <= gaps[2] <= 1.2 + SCHEDULING_SLACK_S, gaps


@pytest.mark.slow
async def test_numeric_retry_backoff_caps_the_delay(queue: Queue, running_worker: Any) -> None:
    # Uncapped, the third gap would be in [0.8, 1.6]; the cap keeps every gap <= 0.4.
    gaps = await _attempt_gaps(queue, running_worker, 4, retry_delay=0.4, retry_backoff=0.4)
    assert all(0.2 <= g <= 0.4 + SCHEDULING_SLACK_S for g in gaps), gaps


async def test_manual_retry_requeues_a_finished_job(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    calls: list[int] = []

    async def sometimes(ctx: dict[str, Any]) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first run fails")
        return "second run works"

    async with running_worker(queue, [sometimes]):
        job = await queue.enqueue("sometimes")
        assert job is not None
        failed = await queue.wait(job, timeout=5)
        assert failed.status is Status.FAILED

        again = await queue.retry(job)
        assert again.id == job.id
        assert again.status in (Status.QUEUED, Status.ACTIVE, Status.COMPLETE)
        await eventually(lambda: len(calls) == 2)
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.result == "second run works"


async def test_manual_retry_of_a_live_job_is_invalid(queue: Queue) -> None:
    job = await queue.enqueue("fn")
    assert job is not None
    with pytest.raises(InvalidJobState):
        await queue.retry(job)
    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.QUEUED
