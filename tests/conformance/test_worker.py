"""Worker behaviour: ctx contents, hooks, function registry, concurrency and burst mode."""

import asyncio
import time
from typing import Any

import pytest
from timing import seconds

from jobwire import Queue, Status, Worker


async def test_ctx_holds_queue_job_worker_and_startup_state(
    queue: Queue, running_worker: Any
) -> None:
    seen: dict[str, Any] = {}

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["db"] = "connection"

    async def inspect_ctx(ctx: dict[str, Any], *, tag: str) -> str:
        seen.update(ctx)
        seen["tag"] = tag
        seen["status_while_running"] = ctx["job"].status
        return "inspected"

    async with running_worker(queue, [inspect_ctx], startup=startup) as worker:
        job = await queue.enqueue("inspect_ctx", tag="t1")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    assert seen["queue"] is queue
    assert seen["worker"] is worker
    assert seen["job"].id == job.id
    assert seen["job"].function == "inspect_ctx"
    assert seen["job"].attempts == 1
    assert seen["status_while_running"] is Status.ACTIVE
    assert seen["db"] == "connection"
    assert seen["tag"] == "t1"


async def test_hooks_run_in_order(queue: Queue, running_worker: Any) -> None:
    events: list[str] = []

    async def startup(ctx: dict[str, Any]) -> None:
        events.append("startup")

    async def shutdown(ctx: dict[str, Any]) -> None:
        events.append("shutdown")

    async def before_process(ctx: dict[str, Any]) -> None:
        events.append(f"before:{ctx['job'].kwargs['n']}")

    async def after_process(ctx: dict[str, Any]) -> None:
        events.append(f"after:{ctx['job'].kwargs['n']}")

    async def task(ctx: dict[str, Any], *, n: int) -> None:
        events.append(f"task:{n}")

    async with running_worker(
        queue,
        [task],
        startup=startup,
        shutdown=shutdown,
        before_process=before_process,
        after_process=after_process,
    ):
        job = await queue.enqueue("task", n=1)
        assert job is not None
        assert (await queue.wait(job, timeout=5)).status is Status.COMPLETE
        await asyncio.sleep(0.1)  # after_process may run just after settling
        assert "shutdown" not in events
    assert events == ["startup", "before:1", "task:1", "after:1", "shutdown"]


async def test_alias_registers_function_under_another_name(
    queue: Queue, running_worker: Any
) -> None:
    async def implementation(ctx: dict[str, Any], *, x: int) -> int:
        return x + 1

    async with running_worker(queue, [("public_name", implementation)]):
        aliased = await queue.enqueue("public_name", x=1)
        raw = await queue.enqueue("implementation", x=1)
        assert aliased is not None and raw is not None
        assert (await queue.wait(aliased, timeout=5)).result == 2
        done_raw = await queue.wait(raw, timeout=5)
    assert done_raw.status is Status.FAILED
    assert done_raw.error is not None and done_raw.error.type == "UnknownFunction"


async def test_unknown_function_fails_without_retries(queue: Queue, running_worker: Any) -> None:
    async def known(ctx: dict[str, Any]) -> None:
        pass

    async with running_worker(queue, [known]):
        job = await queue.enqueue("not_registered", retries=3)
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.error is not None
    assert done.error.type == "UnknownFunction"
    assert "not_registered" in done.error.message
    assert done.attempts == 1


@pytest.mark.slow
async def test_concurrency_limits_parallel_tasks(queue: Queue, running_worker: Any) -> None:
    running = 0
    peak = 0

    async def task(ctx: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3)
        running -= 1

    jobs = [await queue.enqueue("task") for _ in range(6)]
    t0 = time.monotonic()
    async with running_worker(queue, [task], concurrency=2):
        for job in jobs:
            assert job is not None
            assert (await queue.wait(job, timeout=5)).status is Status.COMPLETE
    elapsed = time.monotonic() - t0
    assert peak == 2
    assert elapsed >= 0.85, "six 0.3 s jobs two at a time take at least 0.9 s"


async def test_concurrency_runs_jobs_in_parallel(queue: Queue, running_worker: Any) -> None:
    async def task(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(0.5)

    jobs = [await queue.enqueue("task") for _ in range(5)]
    async with running_worker(queue, [task], concurrency=5):
        t0 = time.monotonic()
        for job in jobs:
            assert job is not None
            await queue.wait(job, timeout=5)
        elapsed = time.monotonic() - t0
    assert elapsed < 1.2, f"five 0.5 s jobs with concurrency 5 took {elapsed:.2f} s"


async def test_burst_worker_drains_the_queue_and_exits(queue: Queue) -> None:
    done_names: list[str] = []

    async def task(ctx: dict[str, Any], *, name: str) -> str:
        await asyncio.sleep(0.05)
        done_names.append(name)
        return name

    jobs = [await queue.enqueue("task", name=f"j{i}") for i in range(4)]
    worker = Worker(
        queue, functions=[task], burst=True, poll_interval_s=seconds(0.1), handle_signals=False
    )
    await asyncio.wait_for(worker.start(), timeout=10)
    assert sorted(done_names) == ["j0", "j1", "j2", "j3"]
    for job in jobs:
        assert job is not None
        stored = await queue.job(job.id)
        assert stored is not None and stored.status is Status.COMPLETE
    assert (await queue.info())["counts"]["queued"] == 0


async def test_burst_worker_on_an_empty_queue_exits_at_once(queue: Queue) -> None:
    async def task(ctx: dict[str, Any]) -> None:
        pass

    worker = Worker(
        queue, functions=[task], burst=True, poll_interval_s=seconds(0.1), handle_signals=False
    )
    t0 = time.monotonic()
    await asyncio.wait_for(worker.start(), timeout=10)
    assert time.monotonic() - t0 < 2.0


async def test_task_result_must_be_json_serializable(queue: Queue, running_worker: Any) -> None:
    async def returns_set(ctx: dict[str, Any]) -> set[int]:
        return {1, 2}

    async with running_worker(queue, [returns_set]):
        job = await queue.enqueue("returns_set")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    # Unspecified beyond this: the job must end failed, not stay active or kill the worker.
    assert done.status is Status.FAILED
    assert done.error is not None


async def test_task_result_beyond_the_json_limit_fails_the_job(
    queue: Queue, running_worker: Any
) -> None:
    async def returns_too_much(ctx: dict[str, Any]) -> str:
        return "x" * 600_000  # over the 512 KiB every result, kwargs and meta keep

    async with running_worker(queue, [returns_too_much]):
        job = await queue.enqueue("returns_too_much")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.FAILED
    assert done.error is not None and "result" in done.error.message
    assert done.result is None


async def test_meta_beyond_the_json_limit_is_refused(queue: Queue) -> None:
    await queue.enqueue("f")
    [job], _ = await queue.lease("w", 1)
    with pytest.raises(ValueError, match="meta"):
        await job.update(meta={"a": "x" * 600_000})
    assert (await queue.job(job.id)).meta == {}  # type: ignore[union-attr]
