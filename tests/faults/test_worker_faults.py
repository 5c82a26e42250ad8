"""Workers when the store fails them: stop() never hangs."""

import asyncio

import pytest

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
