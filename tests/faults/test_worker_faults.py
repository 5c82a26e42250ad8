"""Workers when the store fails them: stop() never hangs."""

import asyncio
import time
from uuid import uuid4

import pytest
from stores import OwnRedis

from jobwire import Queue, Worker


async def _noop(ctx: dict[str, object]) -> None:
    return None


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0"])
async def test_stop_returns_when_start_failed_to_connect(url: str) -> None:
    queue = Queue.from_url(url, name="refused")
    worker = Worker(queue, functions=[_noop])
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await worker.start()
    await asyncio.wait_for(worker.stop(), timeout=5)  # hung forever before the fix
    await queue.close()


@pytest.mark.slow
async def test_a_worker_backing_off_takes_new_work_as_soon_as_the_store_wakes_it() -> None:
    """A lease that failed (the store is down) makes the worker pause, up to 10 s; the store
    answering again (its wake-up channel back) ends the pause, and new work starts at once."""
    server = OwnRedis()
    started = asyncio.Event()

    async def task(ctx: dict[str, object]) -> None:
        started.set()

    name = f"backoff-{uuid4().hex[:8]}"
    queue, producer = Queue.from_url(server.url, name=name), Queue.from_url(server.url, name=name)
    worker = Worker(queue, [task], poll_interval_s=30, handle_signals=False)  # pauses: 10 s
    running = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(0.5)  # its lease waits for work
        server.stop()
        queue.wake_local()  # it leases now, and fails: it pauses
        await asyncio.sleep(0.5)
        server.start()  # empty, on the same port
        await asyncio.sleep(1.5)  # the wake-up channel is back
        asked = time.monotonic()
        await producer.enqueue("task")
        await asyncio.wait_for(started.wait(), 12)
        assert time.monotonic() - asked < 3.0, "the pause ran its course"
    finally:
        await worker.stop()
        await running
        await queue.close()
        await producer.close()
        server.close()
