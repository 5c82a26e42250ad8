"""The SDK's http:// client after idling as long as the service keeps connections."""

import asyncio

import pytest
from fault_helpers import unique_name

from jobwire import Queue
from jobwire.backends.remote.http import IDLE_KEEPALIVE_S

pytestmark = pytest.mark.slow
SERVICE_KEEPALIVE_S = 5.0  # uvicorn's timeout_keep_alive, which jobwire serve keeps


def test_client_drops_idle_connections_before_the_service_does() -> None:
    assert IDLE_KEEPALIVE_S < SERVICE_KEEPALIVE_S


async def test_calls_after_idling_at_the_service_keepalive_succeed(service_url: str) -> None:
    queue = Queue.from_url(service_url, name=unique_name())
    async with queue:
        job = await queue.enqueue("f")
        assert job is not None
        await asyncio.sleep(SERVICE_KEEPALIVE_S - 0.02)
        assert (await queue.job(job.id)) is not None  # ServerDisconnectedError before
        await asyncio.sleep(SERVICE_KEEPALIVE_S + 0.01)
        assert await queue.enqueue("f") is not None
