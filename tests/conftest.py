"""Session-wide fixtures: a throwaway Redis server for the whole test run."""

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

REDIS_URL_ENV = "JOBWIRE_TEST_REDIS_URL"
REDIS_START_DEADLINE_S = 10.0


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_ping(proc: subprocess.Popen[bytes], port: int, log_path: str) -> None:
    """Block until the server on ``port`` answers PING.

    Raises:
        RuntimeError: The server exited, or did not answer within the deadline.
    """
    deadline = time.monotonic() + REDIS_START_DEADLINE_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                output = log.read()
            raise RuntimeError(
                f"redis-server exited with code {proc.returncode} before answering PING "
                f"on port {port}:\n{output}"
            )
        client = redis.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            if client.ping():
                return
        except redis.RedisError as exc:
            last_error = exc
        finally:
            client.close()
        time.sleep(0.05)
    raise RuntimeError(
        f"redis-server on 127.0.0.1:{port} did not answer PING within "
        f"{REDIS_START_DEADLINE_S:.0f} s (last error: {last_error!r})"
    )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server for the tests.

    Uses ``$JOBWIRE_TEST_REDIS_URL`` when set; otherwise starts a private, non-persistent
    ``redis-server`` on a free port and stops it when the session ends.
    """
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(f"redis-server is not on PATH; install it or set ${REDIS_URL_ENV}")

    with tempfile.TemporaryDirectory(prefix="jobwire-redis-") as tmp:
        port = _free_port()
        log_path = os.path.join(tmp, "redis.log")
        with open(log_path, "wb") as log:
            options = {
                "--save": "",
                "--appendonly": "no",
                "--bind": "127.0.0.1",
                "--port": str(port),
                "--dir": tmp,
            }
            proc = subprocess.Popen(
                [binary, *itertools.chain.from_iterable(options.items())],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_ping(proc, port, log_path)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
