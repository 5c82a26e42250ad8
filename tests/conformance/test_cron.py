"""Cron jobs: enqueued by workers on schedule, each tick exactly once fleet-wide."""

import asyncio
import collections
import re
import time
from typing import Any

import pytest

from jobwire import CronJob, Queue, Status

# Queue name -> [(job id, kwargs, start time)], filled by the cron tasks below.
RECORDED: dict[str, list[tuple[str, dict[str, Any], float]]] = collections.defaultdict(list)

TICK_ID = re.compile(r"^cron:cron_tick:(\d+)$")


async def cron_tick(ctx: dict[str, Any], **kwargs: Any) -> str:
    """Record which tick ran, on which queue."""
    RECORDED[ctx["queue"].name].append((ctx["job"].id, kwargs, time.time()))
    return ctx["job"].id


@pytest.mark.slow
async def test_two_workers_run_each_tick_exactly_once(
    queue: Queue, make_queue: Any, running_worker: Any
) -> None:
    cron = CronJob(cron_tick, cron="* * * * * */1")
    other_handle = make_queue(name=queue.name)  # as a second process would have
    async with (
        running_worker(queue, cron_jobs=[cron], id="worker-a"),
        running_worker(
            other_handle, cron_jobs=[CronJob(cron_tick, cron="* * * * * */1")], id="worker-b"
        ),
    ):
        await asyncio.sleep(3.5)
    ids = [job_id for job_id, _, _ in RECORDED.pop(queue.name, [])]
    assert len(ids) >= 2, ids
    assert len(ids) == len(set(ids)), f"a tick ran twice: {ids}"
    ticks = []
    for job_id in ids:
        match = TICK_ID.match(job_id)
        assert match, job_id
        ticks.append(int(match.group(1)))
    # One tick per second, no gaps: consecutive epoch seconds.
    assert sorted(ticks) == list(range(min(ticks), min(ticks) + len(ticks))), ticks
    for job_id in ids:
        job = await queue.job(job_id)
        assert job is not None
        assert job.status is Status.COMPLETE
        assert job.result == job_id
        assert job.attempts == 1


@pytest.mark.slow
async def test_cron_job_passes_kwargs_and_runs_on_its_tick(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    cron = CronJob(cron_tick, cron="* * * * * */1", kwargs={"word": "hi"})
    async with running_worker(queue, cron_jobs=[cron]):
        await eventually(lambda: RECORDED.get(queue.name), timeout=3)
    job_id, kwargs, started = RECORDED.pop(queue.name)[0]
    assert kwargs == {"word": "hi"}
    match = TICK_ID.match(job_id)
    assert match, job_id
    tick = int(match.group(1))
    assert tick - 0.05 <= started <= tick + 0.5, (tick, started)
