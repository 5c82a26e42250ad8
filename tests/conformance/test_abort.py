"""Aborting queued, scheduled, active, finished and orphaned jobs."""

import asyncio
import time
from typing import Any

import pytest
from timing import seconds

import jobwire.worker as worker_module
from jobwire import JobNotFound, Queue, Status


async def test_abort_queued_job_is_immediate_and_it_never_runs(
    queue: Queue, running_worker: Any
) -> None:
    ran: list[str] = []

    async def task(ctx: dict[str, Any], *, name: str) -> str:
        ran.append(name)
        return name

    victim = await queue.enqueue("task", name="victim")
    assert victim is not None
    aborted = await queue.abort(victim, error="changed my mind")
    assert aborted.status is Status.ABORTED
    stored = await queue.job(victim.id)
    assert stored is not None
    assert stored.status is Status.ABORTED
    assert stored.error is not None
    assert stored.error.type == "Aborted"
    assert stored.error.message == "changed my mind"
    counts = (await queue.info())["counts"]
    assert (counts["queued"], counts["aborted"]) == (0, 1)

    async with running_worker(queue, [task]):
        other = await queue.enqueue("task", name="other")
        assert other is not None
        assert (await queue.wait(other, timeout=5)).status is Status.COMPLETE
    assert ran == ["other"]


async def test_abort_by_id_of_scheduled_job(queue: Queue) -> None:
    job = await queue.enqueue("task", scheduled=time.time() + 60)
    assert job is not None
    aborted = await queue.abort(job.id)
    assert aborted.status is Status.ABORTED
    assert aborted.error is not None and aborted.error.message == "aborted"
    counts = (await queue.info())["counts"]
    assert (counts["scheduled"], counts["aborted"]) == (0, 1)


async def test_abort_active_job_cancels_the_task(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def long_task(ctx: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with running_worker(queue, [long_task]):
        job = await queue.enqueue("long_task", retries=3)
        assert job is not None
        await asyncio.wait_for(started.wait(), timeout=5)
        t0 = time.monotonic()
        aborting = await queue.abort(job, error="user cancelled")
        assert aborting.status in (Status.ABORTING, Status.ABORTED)
        done = await queue.wait(job, timeout=5)
        elapsed = time.monotonic() - t0
    assert done.status is Status.ABORTED
    assert done.error is not None
    assert done.error.type == "Aborted"
    assert done.error.message == "user cancelled"
    assert done.attempts == 1, "an aborted job must not be retried"
    assert cancelled == [True]
    assert elapsed < 1.5, f"abort took {elapsed:.2f} s to take effect"


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
async def test_abort_reaches_the_worker_at_once_not_at_its_next_renew(
    queue: Queue,
    queue_url: str,
    make_queue: Any,
    running_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    bulk: bool,
) -> None:
    """The worker (its own handle: another process, as far as it knows) renews every
    20 s; the abort made through another handle, of the job or by a filter, reaches it
    through the store's push."""
    if queue_url.startswith("http"):
        pytest.skip("a worker over REST hears of an abort at its next renew")
    monkeypatch.setattr(worker_module, "RENEW_INTERVAL_S", 30.0)
    started, cancelled_at = asyncio.Event(), []

    async def long_task(ctx: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled_at.append(time.monotonic())
            raise

    async with running_worker(make_queue(queue.name), [long_task]):
        job = await queue.enqueue("long_task", heartbeat=60)
        assert job is not None
        await asyncio.wait_for(started.wait(), timeout=5)
        asked_at = time.monotonic()
        if bulk:
            assert await queue.abort_jobs(status=Status.ACTIVE, function="long_task") == 1
        else:
            await queue.abort(job, error="stop now")
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.ABORTED
    assert cancelled_at and cancelled_at[0] - asked_at < seconds(1.0), "heard at a renew"


async def test_abort_active_job_is_aborting_until_worker_hears(queue: Queue) -> None:
    job = await queue.enqueue("task", heartbeat=5)
    assert job is not None
    [leased], _ = await queue.lease("w", 1)
    aborting = await queue.abort(job, error="stop")
    assert aborting.status is Status.ABORTING
    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.ABORTING
    assert (await queue.info())["counts"]["aborting"] == 1
    assert await queue.renew([(leased.id, leased.lease)]) == ["aborting"]


async def test_abort_finished_job_leaves_it_unchanged(queue: Queue, running_worker: Any) -> None:
    async def task(ctx: dict[str, Any]) -> str:
        return "result"

    async with running_worker(queue, [task]):
        job = await queue.enqueue("task")
        assert job is not None
        done = await queue.wait(job, timeout=5)
    assert done.status is Status.COMPLETE
    after = await queue.abort(job, error="too late")
    assert after.status is Status.COMPLETE
    assert after.result == "result"
    assert after.error is None
    stored = await queue.job(job.id)
    assert stored is not None and stored.status is Status.COMPLETE


async def test_abort_unknown_job_raises(queue: Queue) -> None:
    with pytest.raises(JobNotFound):
        await queue.abort("does-not-exist", error="x")


async def test_aborting_job_of_dead_worker_ends_aborted(queue: Queue) -> None:
    job = await queue.enqueue("task", heartbeat=seconds(1), retries=2)
    assert job is not None
    await queue.lease("dead-worker", 1)
    assert (await queue.abort(job, error="bye")).status is Status.ABORTING
    await asyncio.sleep(seconds(1.2))
    assert await queue.sweep() == 1
    done = await queue.job(job.id)
    assert done is not None
    assert done.status is Status.ABORTED, "an aborting job must not be retried"
    assert done.attempts == 1


async def test_abort_frees_the_key(queue: Queue) -> None:
    job = await queue.enqueue("task", key="only-one")
    assert job is not None
    assert await queue.enqueue("task", key="only-one") is None
    await queue.abort(job)
    assert await queue.enqueue("task", key="only-one") is not None


async def test_abort_callbacks_hear_active_jobs_until_removed(
    queue: Queue, queue_url: str, make_queue: Any
) -> None:
    """``on_abort`` callbacks hear of aborted active jobs (not of queued ones), from any
    handle on the queue, until ``off_abort``."""
    if not queue_url.startswith(("http", "grpc")):
        heard, dropped = asyncio.Queue[str](), []
        other = make_queue(queue.name)
        await other.on_abort(heard.put_nowait)
        await other.on_abort(dropped.append)
        other.off_abort(dropped.append)
        running = await queue.enqueue("task", heartbeat=60)
        waiting = await queue.enqueue("task")
        assert running is not None and waiting is not None
        assert [job.id for job in (await queue.lease("w", 1))[0]] == [running.id]
        await queue.abort(waiting)  # queued: ends at once, no worker to tell
        await queue.abort(running)  # active: its worker must hear
        assert await asyncio.wait_for(heard.get(), 5) == running.id
        await asyncio.sleep(0.1)
        assert heard.empty() and dropped == []
    else:
        pytest.skip("the service's streams hear only of jobs they hold (test_replicas)")
