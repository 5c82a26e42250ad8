"""ttl: how long a finished job stays readable."""

import asyncio
from typing import Any

import pytest

from jobwire import Queue, Status


async def test_ttl_minus_one_deletes_the_job_when_finished(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    ran: list[str] = []

    async def task(ctx: dict[str, Any]) -> str:
        ran.append(ctx["job"].id)
        return "ok"

    job = await queue.enqueue("task", ttl=-1)
    assert job is not None
    assert (await queue.job(job.id)) is not None, "a live job must be readable"
    async with running_worker(queue, [task]):
        await eventually(lambda: ran == [job.id])
        await eventually(lambda: _is_gone(queue, job.id), timeout=2)
    assert (await queue.info())["counts"]["complete"] == 0


@pytest.mark.slow
async def test_ttl_expires_finished_job_but_zero_keeps_it(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    async def task(ctx: dict[str, Any]) -> str:
        return "ok"

    short = await queue.enqueue("task", ttl=1)
    forever = await queue.enqueue("task", ttl=0)
    assert short is not None and forever is not None
    async with running_worker(queue, [task]):
        assert (await queue.wait(short, timeout=5)).status is Status.COMPLETE
        assert (await queue.wait(forever, timeout=5)).status is Status.COMPLETE
        # Readable right after finishing...
        fresh = await queue.job(short.id)
        assert fresh is not None and fresh.result == "ok"
        # ...and gone once its ttl ran out (the worker's sweeper is running).
        await eventually(lambda: _is_gone(queue, short.id), timeout=4)
    kept = await queue.job(forever.id)
    assert kept is not None
    assert kept.status is Status.COMPLETE
    assert kept.result == "ok"


@pytest.mark.slow
async def test_ttl_does_not_expire_live_jobs(queue: Queue) -> None:
    job = await queue.enqueue("task", ttl=1)
    assert job is not None
    await asyncio.sleep(1.5)
    await queue.sweep()
    stored = await queue.job(job.id)
    assert stored is not None
    assert stored.status is Status.QUEUED


async def _is_gone(queue: Queue, job_id: str) -> bool:
    """Whether ``queue.job(job_id)`` no longer finds the job."""
    return await queue.job(job_id) is None
