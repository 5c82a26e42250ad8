"""``job.update``: progress and meta written by a running task, visible to readers."""

import asyncio
from typing import Any

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
    assert done.meta == {"stage": "download", "files": 3}


async def test_meta_alone_leaves_progress_alone(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    finish = asyncio.Event()

    async def work(ctx: dict[str, Any]) -> None:
        await ctx["job"].update(progress=0.5)
        await ctx["job"].update(meta={"note": "hi"})
        await finish.wait()

    async with running_worker(queue, [work]):
        job = await queue.enqueue("work")
        assert job is not None
        running = await eventually(lambda: _with_meta(queue, job.id))
        assert running.progress == 0.5
        assert running.meta == {"note": "hi"}
        finish.set()
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
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


async def _with_progress(queue: Queue, job_id: str, progress: float) -> Any:
    """The job if its stored progress equals ``progress``, else ``None``."""
    job = await queue.job(job_id)
    return job if job is not None and job.progress == progress else None


async def _with_meta(queue: Queue, job_id: str) -> Any:
    """The job once its stored meta is non-empty, else ``None``."""
    job = await queue.job(job_id)
    return job if job is not None and job.meta else None
