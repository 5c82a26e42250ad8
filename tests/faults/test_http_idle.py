"""The SDK's http:// client after idling as long as the service keeps connections."""

import asyncio

import pytest
from fault_helpers import Service, unique_name

from jobwire import Queue
from jobwire.backends.remote.http import IDLE_KEEPALIVE_S

pytestmark = pytest.mark.slow
SERVICE_KEEPALIVE_S = 5.0  # uvicorn's timeout_keep_alive, which jobwire serve keeps


def test_client_drops_idle_connections_before_the_service_does() -> None:
    assert IDLE_KEEPALIVE_S < SERVICE_KEEPALIVE_S


async def test_calls_after_idling_at_the_service_keepalive_succeed(store_service: Service) -> None:
    if not store_service.backend.startswith("redis"):
        pytest.skip("one store is enough")
    queue = Queue.from_url(store_service.http, name=unique_name())
    async with queue:
        job = await queue.enqueue("f")
        assert job is not None
        for idle_s in (SERVICE_KEEPALIVE_S - 0.02, SERVICE_KEEPALIVE_S + 0.01):
            await asyncio.sleep(idle_s)
            assert (await queue.job(job.id)) is not None  # ServerDisconnectedError before
            await asyncio.sleep(idle_s)
            assert await queue.enqueue("f") is not None
