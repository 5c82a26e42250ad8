"""``queue.info()`` counts and workers, and ``queue.jobs()`` listings."""

import time
from typing import Any

import pytest

from jobwire import Queue, Status

ALL_COUNTS = {"queued", "scheduled", "active", "aborting", "complete", "failed", "aborted"}


async def test_info_of_an_empty_queue(queue: Queue) -> None:
    info = await queue.info()
    assert info["name"] == queue.name
    assert set(info["counts"]) == ALL_COUNTS
    assert all(n == 0 for n in info["counts"].values())
    assert info["workers"] == []


async def test_info_counts_every_status(queue: Queue, running_worker: Any) -> None:
    async def ok(ctx: dict[str, Any]) -> None:
        pass

    async def bad(ctx: dict[str, Any]) -> None:
        raise ValueError("bad")

    async with running_worker(queue, [ok, bad]):
        for function in ("ok", "ok", "bad"):
            job = await queue.enqueue(function)
            assert job is not None
            await queue.wait(job, timeout=5)

    await queue.enqueue("ok")
    await queue.enqueue("ok")
    await queue.enqueue("ok")
    await queue.enqueue("ok", scheduled=time.time() + 60)
    to_abort = await queue.enqueue("ok")
    assert to_abort is not None
    await queue.abort(to_abort)
    active_one = await queue.enqueue("ok", priority=5, heartbeat=10)
    aborting_one = await queue.enqueue("ok", priority=5, heartbeat=10)
    assert active_one is not None and aborting_one is not None
    leased, _ = await queue.lease("w", 2)
    assert {j.id for j in leased} == {active_one.id, aborting_one.id}
    await queue.abort(aborting_one)

    assert (await queue.info())["counts"] == {
        "queued": 3,
        "scheduled": 1,
        "active": 1,
        "aborting": 1,
        "complete": 2,
        "failed": 1,
        "aborted": 1,
    }


async def test_info_lists_running_workers(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    async with running_worker(queue, [], id="worker-under-test") as worker:
        assert worker.id == "worker-under-test"
        workers = await eventually(lambda: _worker_entries(queue))
        ids = [w["id"] for w in workers]
        assert ids == ["worker-under-test"]
        assert abs(workers[0]["seen"] - time.time()) < 5


async def test_worker_id_is_generated_and_unique(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    async with running_worker(queue, []) as a, running_worker(queue, []) as b:
        assert isinstance(a.id, str) and a.id
        assert a.id != b.id
        await eventually(lambda: _has_workers(queue, {a.id, b.id}))


async def test_jobs_filters_by_status_and_limits(queue: Queue) -> None:
    queued = [await queue.enqueue("fn", i=i) for i in range(5)]
    scheduled = await queue.enqueue("fn", scheduled=time.time() + 60)
    aborted = await queue.enqueue("fn")
    assert None not in queued and scheduled is not None and aborted is not None
    await queue.abort(aborted)

    listed = await queue.jobs(status=Status.QUEUED)
    assert {j.id for j in listed} == {j.id for j in queued if j is not None}
    assert all(j.status is Status.QUEUED for j in listed)
    assert [j.id for j in await queue.jobs(status=Status.SCHEDULED)] == [scheduled.id]
    assert [j.id for j in await queue.jobs(status=Status.ABORTED)] == [aborted.id]
    assert await queue.jobs(status=Status.COMPLETE) == []

    everything = await queue.jobs(status=None)
    assert len(everything) == 7
    assert {j.status for j in everything} == {Status.QUEUED, Status.SCHEDULED, Status.ABORTED}

    limited = await queue.jobs(status=Status.QUEUED, limit=2)
    assert len(limited) == 2
    assert all(j.status is Status.QUEUED for j in limited)
    assert len(await queue.jobs(limit=3)) == 3


async def test_queues_are_isolated_by_name(queue: Queue, make_queue: Any) -> None:
    other = make_queue()
    job = await queue.enqueue("fn")
    assert job is not None
    await other.enqueue("fn")
    await other.enqueue("fn")
    assert (await queue.info())["counts"]["queued"] == 1
    assert (await other.info())["counts"]["queued"] == 2
    assert [j.id for j in await queue.jobs()] == [job.id]
    leased, _ = await other.lease("w", 10)
    assert job.id not in {j.id for j in leased}
    assert len(leased) == 2


async def _worker_entries(queue: Queue) -> list[dict[str, Any]]:
    """The workers ``queue.info()`` reports."""
    return list((await queue.info())["workers"])


async def _has_workers(queue: Queue, ids: set[str]) -> bool:
    """Whether ``queue.info()`` reports exactly the workers ``ids``."""
    return {w["id"] for w in await _worker_entries(queue)} == ids


async def test_info_reports_recent_throughput(queue: Queue, running_worker: Any) -> None:
    """``finished_per_s`` counts jobs finished in the last five minutes, failures too."""

    async def ok(ctx: dict[str, Any]) -> None:
        return None

    async def bad(ctx: dict[str, Any]) -> None:
        raise RuntimeError("no")

    assert (await queue.info())["finished_per_s"] == 0
    async with running_worker(queue, [ok, bad]):
        jobs = [await queue.enqueue("ok") for _ in range(4)] + [await queue.enqueue("bad")]
        for job in jobs:
            assert job is not None
            await queue.wait(job, timeout=5)
    assert (await queue.info())["finished_per_s"] == pytest.approx(5 / 300)


async def test_active_listing_is_full_even_with_aborting_jobs(queue: Queue) -> None:
    """``jobs(ACTIVE, limit=n)`` returns n active jobs, skipping aborting ones."""
    jobs = [await queue.enqueue("task", n=n) for n in range(4)]
    leased, _ = await queue.lease("busy-worker", 4)
    assert len(leased) == 4
    for job in jobs[:2]:
        assert job is not None
        assert (await queue.abort(job)).status is Status.ABORTING
    active = await queue.jobs(Status.ACTIVE, limit=2)
    assert len(active) == 2
    assert {job.status for job in active} == {Status.ACTIVE}
    assert {job.id for job in active} == {job.id for job in jobs[2:] if job is not None}
