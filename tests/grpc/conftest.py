"""Fixtures of the gRPC tests: the session's service, stubs on it."""

from collections.abc import AsyncIterator

import pytest
from grpc_helpers import GrpcService, Stubs, stubs, unique_name


@pytest.fixture(scope="session")
def grpc_service(session_service: GrpcService) -> GrpcService:
    """The session's service on Redis (no tokens, loopback, no background sweep).

    Its Redis database is one no other service sweeps: a test that leaves a lease to
    expire and then sweeps it itself counts what comes back, which a background sweep of
    another service would otherwise take first.
    """
    return session_service


@pytest.fixture
async def api(grpc_service: GrpcService) -> AsyncIterator[Stubs]:
    """Raw stubs on the shared service."""
    async with stubs(grpc_service.target) as both:
        yield both


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return unique_name()
