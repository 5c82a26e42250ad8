"""Fixtures of the REST service tests: an HTTP client on the session's service, queue names."""

from collections.abc import AsyncIterator

import httpx
import pytest
from service_helpers import http_client, unique_name


@pytest.fixture
async def client(service_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the session's service (no tokens, loopback, no background sweep)."""
    async with http_client(service_url) as http:
        yield http


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return unique_name()
