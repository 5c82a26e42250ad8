"""Scheduled jobs wait until their time, then start promptly."""

import asyncio
import time
from typing import Any

import pytest

from jobwire import Queue, Status

# The requirement is ~100 ms; this bound is generous but still catches poll-interval lag.
START_LATENESS_S = 0.25
CLOCK_SLACK_S = 0.02


@pytest.mark.slow
async def test_scheduled_job_waits_then_starts_promptly(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    starts: list[float] = []

    async def task(ctx: dict[str, Any]) -> str:
        starts.append(time.time())
        return "ran"

    # A long poll interval: the worker must wake for the due time, not stumble on it.
    async with running_worker(queue, [task], poll_interval_s=2.0):
        # Let the worker go idle so the test measures wake-up, not start-up.
        await asyncio.sleep(0.3)
        due = time.time() + 1.0  # far enough that a busy machine reads the job back before it
        job = await queue.enqueue("task", scheduled=due)
        assert job is not None
        assert job.status is Status.SCHEDULED
        stored = await queue.job(job.id)
        assert stored is not None and stored.status is Status.SCHEDULED
        assert stored.scheduled == pytest.approx(due, abs=1e-3)

        await asyncio.sleep(0.3)
        assert starts == [], "scheduled job started early"
        assert (await queue.job(job.id)).status is Status.SCHEDULED  # type: ignore[union-attr]

        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.result == "ran"
    assert starts[0] >= due - CLOCK_SLACK_S, "task ran before its scheduled time"
    assert done.started >= due - CLOCK_SLACK_S
    lateness = done.started - due
    assert lateness <= START_LATENESS_S, f"started {lateness * 1000:.0f} ms after due time"


async def test_scheduled_in_the_past_runs_at_once(queue: Queue, running_worker: Any) -> None:
    async def task(ctx: dict[str, Any]) -> str:
        return "ran"

    async with running_worker(queue, [task]):
        job = await queue.enqueue("task", scheduled=time.time() - 10)
        assert job is not None
        done = await queue.wait(job, timeout=3)
    assert done.status is Status.COMPLETE


async def test_scheduled_jobs_are_counted_and_listed(queue: Queue) -> None:
    later = await queue.enqueue("task", scheduled=time.time() + 60)
    now = await queue.enqueue("task")
    assert later is not None and now is not None
    counts = (await queue.info())["counts"]
    assert counts["scheduled"] == 1
    assert counts["queued"] == 1
    assert [j.id for j in await queue.jobs(status=Status.SCHEDULED)] == [later.id]
    assert [j.id for j in await queue.jobs(status=Status.QUEUED)] == [now.id]


async def test_lease_skips_future_jobs_and_reports_next_due(queue: Queue) -> None:
    job = await queue.enqueue("task", scheduled=time.time() + 5)
    assert job is not None
    leased, next_due_s = await queue.lease("w", 10)
    assert leased == []
    assert next_due_s is not None
    assert 3.5 <= next_due_s <= 5.5

    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.SCHEDULED


async def test_lease_with_nothing_scheduled_reports_none(queue: Queue) -> None:
    await queue.enqueue("task")
    leased, next_due_s = await queue.lease("w", 10)
    assert [j.function for j in leased] == ["task"]
    assert next_due_s is None
