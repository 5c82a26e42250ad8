"""Real `jobwire serve` processes for the tests, on free ports: the helpers that start and
stop them, and the session's shared services, one per store (each serves REST and gRPC)."""

import concurrent.futures
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

START_DEADLINE_S = 60.0  # a bound for a loaded machine; a service starts in seconds
START_ATTEMPTS = 3  # a port taken between free_port() and the bind: start again, elsewhere
PORT_TAKEN = ("address already in use", "Failed to bind to address")


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
    side do not race for the default port 50051. Test processes run side by side
    (pytest-xdist), so a free port may be taken before the service binds it: then the
    service starts again on another HTTP port (a given ``grpc_port`` is kept; the caller
    chose it).

    Returns:
        The process, its base URL and the path of its log file.

    Raises:
        RuntimeError: It exited or was not ready in time (the log is in the message).
    """
    for attempt in range(START_ATTEMPTS):
        try:
            return _start_service_once(backend_url, args, env, grpc_port)
        except _PortTaken:
            if attempt == START_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    """The service exited because its HTTP port was taken."""


def _start_service_once(
    backend_url: str, args: tuple[str, ...], env: dict[str, str] | None, grpc_port: int
) -> tuple[subprocess.Popen[bytes], str, str]:
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
        output = log.read()
    if f"'127.0.0.1', {port})" in output and any(text in output for text in PORT_TAKEN):
        raise _PortTaken(f"port {port} was taken:\n{output}")
    raise RuntimeError(f"jobwire serve did not become ready:\n{output}")


def stop_service(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM the service and wait for it; returns its exit code."""
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


@dataclasses.dataclass
class GrpcService:
    """A running `jobwire serve` with both ports.

    Attributes:
        proc: The process; ``None`` in a pytest-xdist worker when the controller runs it.
        http: Base URL of its REST API.
        target: ``host:port`` of its gRPC API.
        log_path: Its log file.
    """

    proc: subprocess.Popen[bytes] | None
    http: str
    target: str
    log_path: str

    @property
    def url(self) -> str:
        """The SDK's ``grpc://`` URL of it."""
        return f"grpc://{self.target}"


def start_grpc_service(
    backend_url: str, *args: str, env: dict[str, str] | None = None
) -> GrpcService:
    """Start `jobwire serve` with a gRPC port too; ready when it returns (a gRPC port taken
    before the service bound it is chosen again, as ``start_service`` does for HTTP)."""
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        try:
            proc, http, log_path = start_service(backend_url, *args, env=env, grpc_port=port)
        except RuntimeError as exc:
            if attempt == START_ATTEMPTS - 1 or f"gRPC on 127.0.0.1:{port}: " not in str(exc):
                raise
            continue
        return GrpcService(proc, http, f"127.0.0.1:{port}", log_path)
    raise AssertionError("unreachable")


# Logical Redis databases. Services that other tests start sweep every queue of database 0
# in the background; a job a test leaves to expire on purpose (and then sweeps itself,
# counting what comes back) must not be reclaimed behind its back, so the conformance
# suite's direct Redis and the shared services keep to databases of their own (the one of
# the conformance suite's service apart from the one of the REST and gRPC tests, so that
# what lists or scrapes every queue of a service sees only the queues of its own tests).
REDIS_DB, SERVICE_DB, SESSION_DB = 1, 2, 3

# The shared services never sweep in the background: their tests call sweep() themselves
# and count what it reclaims.
NO_BACKGROUND_SWEEP = {"JOBWIRE_SWEEP_INTERVAL_S": "3600"}


def redis_database(url: str, db: int) -> str:
    """``url`` pointing at logical database ``db`` of the same Redis server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def conformance_redis_url(redis_url: str) -> str:
    """The test Redis, in a database of the conformance suite's own."""
    return redis_database(redis_url, REDIS_DB)


def _shared_service(
    config: pytest.Config, store: str, backend_url: Callable[[], str]
) -> Iterator[GrpcService]:
    shared = getattr(config, "workerinput", {}).get("jobwire_shared", {}).get("services", {})
    if store in shared:  # the pytest-xdist controller runs it (tests/conftest.py)
        yield GrpcService(proc=None, **shared[store])
        return
    service = start_grpc_service(backend_url(), env=NO_BACKGROUND_SWEEP)
    try:
        yield service
    finally:
        stop_service(service.proc)  # type: ignore[arg-type]


@contextlib.contextmanager
def shared_services(
    redis_url: str, postgres_url: str, sqlite_dir: str
) -> Iterator[dict[str, GrpcService]]:
    """The session's services, one per store, started side by side (for the pytest-xdist
    controller to share with its workers); stopped on exit.

    Returns:
        Store name (``redis``, ``postgres``, ``sqlite``) -> its service, and ``session``: the
        REST and gRPC tests' service on Redis.
    """
    backends = {
        "redis": redis_database(redis_url, SERVICE_DB),
        "postgres": postgres_url,
        "sqlite": f"sqlite:///{sqlite_dir}/jobs.db",
        "session": redis_database(redis_url, SESSION_DB),
    }
    with concurrent.futures.ThreadPoolExecutor(len(backends)) as pool:
        futures = {
            store: pool.submit(start_grpc_service, url, env=NO_BACKGROUND_SWEEP)
            for store, url in backends.items()
        }
        concurrent.futures.wait(futures.values())
    started = {store: f.result() for store, f in futures.items() if f.exception() is None}
    try:
        for future in futures.values():
            future.result()  # the first failure, if any
        yield started
    finally:
        for service in started.values():
            stop_service(service.proc)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def redis_service(pytestconfig: pytest.Config, redis_url: str) -> Iterator[GrpcService]:
    """The conformance suite's service over the test Redis (REST and gRPC; no tokens,
    loopback, no background sweep), shared by the whole session, in a Redis database no
    other service uses."""
    yield from _shared_service(pytestconfig, "redis", lambda: redis_database(redis_url, SERVICE_DB))


@pytest.fixture(scope="session")
def postgres_service(pytestconfig: pytest.Config, postgres_url: str) -> Iterator[GrpcService]:
    """A service over the test PostgreSQL, as ``redis_service`` (no service started by a
    test sweeps PostgreSQL in the background)."""
    yield from _shared_service(pytestconfig, "postgres", lambda: postgres_url)


@pytest.fixture(scope="session")
def sqlite_service(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GrpcService]:
    """A service over a SQLite database file of its own, as ``redis_service``."""
    yield from _shared_service(
        pytestconfig, "sqlite", lambda: f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/jobs.db"
    )


@pytest.fixture(scope="session")
def session_service(pytestconfig: pytest.Config, redis_url: str) -> Iterator[GrpcService]:
    """The REST and gRPC tests' service on Redis (no tokens, loopback, no background sweep),
    shared by the whole session, in a Redis database no other service uses."""
    yield from _shared_service(
        pytestconfig, "session", lambda: redis_database(redis_url, SESSION_DB)
    )


@pytest.fixture(scope="session")
def service_url(session_service: GrpcService) -> str:
    """Base URL of the session's service (``session_service``)."""
    return session_service.http
