"""A real `jobwire serve` process for the tests, on a free port, backed by the test Redis."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

START_DEADLINE_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(
    backend_url: str, *args: str, env: dict[str, str] | None = None, grpc_port: int = 0
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start `jobwire serve` and wait until /readyz answers 200.

    ``grpc_port`` 0 (the default here) serves no gRPC, so that services started side by
    side do not race for the default port 50051.

    Returns:
        The process, its base URL and the path of its log file.

    Raises:
        RuntimeError: It exited or was not ready in time (the log is in the message).
    """
    port = free_port()
    while port == grpc_port:  # two free ports, not one twice
        port = free_port()
    log_path = tempfile.mktemp(prefix="jobwire-serve-", suffix=".log")
    command = [sys.executable, "-m", "jobwire.cli", "serve", "--http-port", str(port)]
    command += ["--grpc-port", str(grpc_port), *args]
    full_env = {**os.environ, "JOBWIRE_BACKEND": backend_url, **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_service(proc)
    with open(log_path, encoding="utf-8", errors="replace") as log:
        raise RuntimeError(f"jobwire serve did not become ready:\n{log.read()}")


def stop_service(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM the service and wait for it; returns its exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


# Logical Redis databases of the conformance suite's implementations. Services that other
# tests start sweep every queue of database 0 in the background; a job the suite leaves to
# expire on purpose must not be reclaimed behind its back.
REDIS_DB, HTTP_DB, GRPC_DB = 1, 2, 3


def redis_database(url: str, db: int) -> str:
    """``url`` pointing at logical database ``db`` of the same Redis server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def conformance_redis_url(redis_url: str) -> str:
    """The test Redis, in a database of the conformance suite's own."""
    return redis_database(redis_url, REDIS_DB)


@pytest.fixture(scope="session")
def service_url(redis_url: str) -> Iterator[str]:
    """Base URL of a service (no tokens, loopback) shared by the whole session."""
    # The suite calls sweep() itself and counts what it reclaims: no background sweeps, and
    # a Redis database of its own, which the services other tests start never sweep.
    backend = redis_database(redis_url, HTTP_DB)
    proc, url, _ = start_service(backend, env={"JOBWIRE_SWEEP_INTERVAL_S": "3600"})
    try:
        yield url
    finally:
        stop_service(proc)


@pytest.fixture(scope="session")
def grpc_url(redis_url: str) -> Iterator[str]:
    """``grpc://`` URL of a service with both ports (no tokens, loopback), shared by the
    whole session."""
    port = free_port()
    backend = redis_database(redis_url, GRPC_DB)  # isolated, as for service_url
    proc, _, _ = start_service(backend, env={"JOBWIRE_SWEEP_INTERVAL_S": "3600"}, grpc_port=port)
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        stop_service(proc)
