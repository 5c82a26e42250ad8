"""``job.update``: progress and meta written by a running task, visible to readers."""

import asyncio
from typing import Any

import pytest

from jobwire import Queue, Status


async def test_progress_and_meta_are_visible_while_running(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    step = asyncio.Event()
    finish = asyncio.Event()

    async def work(ctx: dict[str, Any]) -> str:
        job = ctx["job"]
        await job.update(progress=0.25, meta={"stage": "download"})
        await step.wait()
        await job.update(progress=0.75, meta={"files": 3})
        await finish.wait()
        return "done"

    async with running_worker(queue, [work]):
        job = await queue.enqueue("work")
        assert job is not None

        first = await eventually(lambda: _with_progress(queue, job.id, 0.25))
        assert first.status is Status.ACTIVE
        assert first.meta == {"stage": "download"}

        step.set()
        second = await eventually(lambda: _with_progress(queue, job.id, 0.75))
        assert second.meta == {"stage": "download", "files": 3}, "meta keys must merge"

        finish.set()
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.progress == 0.75
    assert done.meta == {"stage": "download", "files": 3}


async def test_meta_alone_leaves_progress_alone(queue: Queue, running_worker: Any) -> None:
    async def work(ctx: dict[str, Any]) -> None:
        await ctx["job"].update(progress=0.5)
        await ctx["job"].update(meta={"note": "hi"})

    async with running_worker(queue, [work]):
        job = await queue.enqueue("work")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert done.progress == 0.5
    assert done.meta == {"note": "hi"}


async def test_out_of_range_progress_is_rejected(queue: Queue, running_worker: Any) -> None:
    errors: list[type[BaseException]] = []

    async def work(ctx: dict[str, Any]) -> None:
        for bad in (1.5, -0.1):
            try:
                await ctx["job"].update(progress=bad)
            except ValueError as exc:
                errors.append(type(exc))

    async with running_worker(queue, [work]):
        job = await queue.enqueue("work")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert errors == [ValueError, ValueError]
    assert done.status is Status.COMPLETE
    assert done.progress == pytest.approx(0)


async def _with_progress(queue: Queue, job_id: str, progress: float) -> Any:
    """The job if its stored progress equals ``progress``, else ``None``."""
    job = await queue.job(job_id)
    return job if job is not None and job.progress == progress else None
