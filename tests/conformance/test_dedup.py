"""Deduplication keys: one live job per key; the key frees up once the job finishes."""

import asyncio
import time
from typing import Any

from jobwire import Job, Queue, Status


async def test_same_key_while_queued_returns_none(queue: Queue) -> None:
    first = await queue.enqueue("fn", key="report", x=1)
    second = await queue.enqueue("fn", key="report", x=2)
    assert first is not None
    assert second is None
    assert (await queue.info())["counts"]["queued"] == 1
    stored = await queue.job(first.id)
    assert stored is not None and stored.kwargs == {"x": 1}


async def test_different_keys_are_independent(queue: Queue) -> None:
    a = await queue.enqueue("fn", key="a")
    b = await queue.enqueue("fn", key="b")
    c = await queue.enqueue("fn")
    d = await queue.enqueue("fn")
    assert None not in (a, b, c, d)
    assert (await queue.info())["counts"]["queued"] == 4


async def test_same_key_while_scheduled_returns_none(queue: Queue) -> None:
    first = await queue.enqueue("fn", key="later", scheduled=time.time() + 60)
    assert first is not None and first.status is Status.SCHEDULED
    assert await queue.enqueue("fn", key="later") is None
    assert await queue.enqueue(Job("fn", key="later")) is None
    counts = (await queue.info())["counts"]
    assert (counts["scheduled"], counts["queued"]) == (1, 0)


async def test_same_key_while_active_returns_none(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    release = asyncio.Event()

    async def hold(ctx: dict[str, Any]) -> str:
        await release.wait()
        return "done"

    async with running_worker(queue, [hold]):
        first = await queue.enqueue("hold", key="busy")
        assert first is not None
        await wait_status(queue, first, Status.ACTIVE)
        assert await queue.enqueue("hold", key="busy") is None
        release.set()
        done = await queue.wait(first, timeout=5)
        assert done.status is Status.COMPLETE

        again = await queue.enqueue("hold", key="busy")
        assert again is not None, "key was not freed when the job finished"
        assert again.id != first.id
        assert (await queue.wait(again, timeout=5)).result == "done"


async def test_key_is_freed_by_failure_and_abort(queue: Queue, running_worker: Any) -> None:
    async def boom(ctx: dict[str, Any]) -> None:
        raise RuntimeError("nope")

    async with running_worker(queue, [boom]):
        failed = await queue.enqueue("boom", key="k")
        assert failed is not None
        assert (await queue.wait(failed, timeout=5)).status is Status.FAILED
        assert await queue.enqueue("boom", key="k2", scheduled=time.time() + 60) is not None

    aborted = await queue.abort((await queue.jobs(status=Status.SCHEDULED))[0])
    assert aborted.status is Status.ABORTED
    assert await queue.enqueue("boom", key="k2", scheduled=time.time() + 60) is not None
    assert await queue.enqueue("boom", key="k", scheduled=time.time() + 60) is not None


async def test_enqueue_many_dedups_against_stored_and_within_the_batch(queue: Queue) -> None:
    existing = await queue.enqueue("fn", key="taken")
    assert existing is not None
    results = await queue.enqueue_many(
        [
            Job("fn", key="taken"),
            Job("fn", key="fresh", kwargs={"n": 1}),
            Job("fn", key="fresh", kwargs={"n": 2}),
            Job("fn"),
        ]
    )
    assert len(results) == 4
    assert results[0] is None
    assert results[1] is not None and results[1].kwargs == {"n": 1}
    assert results[2] is None
    assert results[3] is not None
    assert (await queue.info())["counts"]["queued"] == 3
