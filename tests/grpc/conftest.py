"""Fixtures of the gRPC tests: a shared service with both ports, stubs on it."""

from collections.abc import AsyncIterator, Iterator

import pytest
from grpc_helpers import GrpcService, Stubs, start_grpc_service, stubs, unique_name
from service_fixtures import stop_service


@pytest.fixture(scope="session")
def grpc_service(redis_url: str) -> Iterator[GrpcService]:
    """A service (no tokens, loopback, no background sweep) shared by these tests."""
    service = start_grpc_service(redis_url, env={"JOBWIRE_SWEEP_INTERVAL_S": "3600"})
    try:
        yield service
    finally:
        stop_service(service.proc)


@pytest.fixture
async def api(grpc_service: GrpcService) -> AsyncIterator[Stubs]:
    """Raw stubs on the shared service."""
    async with stubs(grpc_service.target) as both:
        yield both


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return unique_name()
