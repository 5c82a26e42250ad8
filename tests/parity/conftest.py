"""Fixtures of the transport parity suite: one `jobwire serve` with both ports, and each
test run once through REST and once through gRPC with the same assertions."""

import concurrent.futures
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

# The gRPC suite's helpers start the service with both ports; reuse them, not copies.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grpc"))

from grpc_helpers import GrpcService, start_grpc_service, unique_name
from parity_transport import PARITY_DB, TOKENS, TRANSPORTS, Connect, Grpc, Rest, Transport
from service_fixtures import redis_database, stop_service

_TLS = ssl.create_default_context()  # built once: httpx would load the CA bundle per client


@pytest.fixture(scope="session")
def services(redis_url: str) -> Iterator[tuple[GrpcService, GrpcService]]:
    """Two services with REST and gRPC on the same store (loopback, no background sweep),
    started side by side: one without tokens, one with a token for each role."""
    backend = redis_database(redis_url, PARITY_DB)
    tokens = ",".join(f"{token}:{role}" for role, token in TOKENS.items())
    envs = [{"JOBWIRE_SWEEP_INTERVAL_S": "3600"}]
    envs.append({**envs[0], "JOBWIRE_TOKENS": tokens})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start_grpc_service, backend, env=env) for env in envs]
        concurrent.futures.wait(starting)
    started = [future.result() for future in starting if future.exception() is None]
    failed = [future.exception() for future in starting if future.exception() is not None]
    if failed:
        for service in started:
            stop_service(service.proc)
        raise failed[0]  # type: ignore[misc]
    try:
        yield started[0], started[1]
    finally:
        for service in started:
            stop_service(service.proc)


@pytest.fixture(scope="session")
def parity_service(services: tuple[GrpcService, GrpcService]) -> GrpcService:
    """The service without tokens."""
    return services[0]


@pytest.fixture(scope="session")
def guarded_service(services: tuple[GrpcService, GrpcService]) -> GrpcService:
    """The service with tokens for each role (``TOKENS``), on the same store."""
    return services[1]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``connect(name, service, token=None)``: a Transport, closed after the test."""
    clients: list[httpx.AsyncClient] = []
    channels: list[grpc.aio.Channel] = []

    def make(name: str, service: GrpcService, token: str | None = None) -> Transport:
        if name == "rest":
            headers = {"authorization": f"Bearer {token}"} if token else {}
            client = httpx.AsyncClient(
                base_url=service.http, headers=headers, timeout=30, verify=_TLS
            )
            clients.append(client)
            return Rest(client)
        channel = grpc.aio.insecure_channel(service.target)
        channels.append(channel)
        return Grpc(channel, token)

    yield make
    for client in clients:
        await client.aclose()
    for channel in channels:
        await channel.close()


@pytest.fixture(params=TRANSPORTS)
def transport(
    request: pytest.FixtureRequest, parity_service: GrpcService, connect: Connect
) -> Transport:
    """The transport under test, on the shared service."""
    return connect(request.param, parity_service)


@pytest.fixture
def other(transport: Transport, parity_service: GrpcService, connect: Connect) -> Transport:
    """The other transport, on the same service."""
    return connect("grpc" if transport.name == "rest" else "rest", parity_service)


@pytest.fixture
def queue_name() -> str:
    """A queue name no other test uses."""
    return str(unique_name("par"))
