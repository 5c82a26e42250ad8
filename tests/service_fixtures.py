"""A real `jobwire serve` process for the tests, on a free port, backed by the test Redis."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

START_DEADLINE_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(
    backend_url: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start `jobwire serve` and wait until /readyz answers 200.

    Returns:
        The process, its base URL and the path of its log file.

    Raises:
        RuntimeError: It exited or was not ready in time (the log is in the message).
    """
    port = free_port()
    log_path = tempfile.mktemp(prefix="jobwire-serve-", suffix=".log")
    command = [sys.executable, "-m", "jobwire.cli", "serve", "--http-port", str(port), *args]
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


@pytest.fixture(scope="session")
def service_url(redis_url: str) -> Iterator[str]:
    """Base URL of a service (no tokens, loopback) shared by the whole session."""
    # The suite calls sweep() itself and counts what it reclaims: no background sweeps.
    proc, url, _ = start_service(redis_url, env={"JOBWIRE_SWEEP_INTERVAL_S": "3600"})
    try:
        yield url
    finally:
        stop_service(proc)
