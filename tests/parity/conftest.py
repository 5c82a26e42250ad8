"""Fixtures of the transport parity suite: `jobwire serve` processes with both ports (one
shared by nearly every test, one with tokens, one whose store is down), and each test run
once through REST and once through gRPC with the same assertions."""

import concurrent.futures
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import redis

# The gRPC suite's helpers start the service with both ports; reuse them, not copies.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "grpc"))

from grpc_helpers import GrpcService, start_grpc_service, unique_name
from parity_transport import PARITY_DB, TOKENS, TRANSPORTS, Connect, Grpc, Rest, Transport
from service_fixtures import free_port, redis_database, stop_service

QUIET = {"JOBWIRE_SWEEP_INTERVAL_S": "3600"}  # no background sweep: the tests sweep
_TLS = ssl.create_default_context()  # built once: httpx would load the CA bundle per client


def start_with_store_down() -> GrpcService:
    """A service whose private redis-server is stopped once the service is ready."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        store = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(port=port, socket_connect_timeout=0.5).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            return start_grpc_service(f"redis://127.0.0.1:{port}/0", env=QUIET)
        finally:
            store.kill()
            store.wait()


@pytest.fixture(scope="session")
def starts(redis_url: str) -> Iterator[dict[str, concurrent.futures.Future[GrpcService]]]:
    """The suite's services, each with REST and gRPC (loopback, no background sweep),
    starting two at a time in the background: ``plain`` and ``guarded`` (a token for
    each role) on the test Redis, then ``store_down`` (its redis-server stopped). Each
    fixture below waits for its own, so one that fails to start fails only its tests."""
    backend = redis_database(redis_url, PARITY_DB)
    tokens = ",".join(f"{token}:{role}" for role, token in TOKENS.items())
    pool = concurrent.futures.ThreadPoolExecutor(2)
    futures = {
        "plain": pool.submit(start_grpc_service, backend, env=QUIET),
        "guarded": pool.submit(
            start_grpc_service, backend, env={**QUIET, "JOBWIRE_TOKENS": tokens}
        ),
        "store_down": pool.submit(start_with_store_down),
    }
    try:
        yield futures
    finally:
        concurrent.futures.wait(futures.values())
        procs = [f.result().proc for f in futures.values() if f.exception() is None]
        list(pool.map(stop_service, procs))
        pool.shutdown()


@pytest.fixture(scope="session")
def parity_service(starts: dict[str, concurrent.futures.Future[GrpcService]]) -> GrpcService:
    """The service without tokens."""
    return starts["plain"].result()


@pytest.fixture(scope="session")
def guarded_service(starts: dict[str, concurrent.futures.Future[GrpcService]]) -> GrpcService:
    """The service with tokens for each role (``TOKENS``), on the same store."""
    return starts["guarded"].result()


@pytest.fixture(scope="session")
def store_down(starts: dict[str, concurrent.futures.Future[GrpcService]]) -> GrpcService:
    """The service whose store is unreachable."""
    return starts["store_down"].result()


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
