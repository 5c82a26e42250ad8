"""Fixtures of the Redis store's own tests."""

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis
from service_fixtures import free_port

CLUSTER_READY_S = 15.0


@pytest.fixture(scope="module")
def cluster_redis_url() -> Iterator[str]:
    """A one-node Redis Cluster (cluster mode on, every slot on this node), for tests that
    need Redis to enforce hash slots; its URL. Skips without a redis-server binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs a redis-server binary of its own")
    port, bus_port = free_port(), free_port()  # the bus port's default, port + 10000, may not exist
    with tempfile.TemporaryDirectory(prefix="jobwire-cluster-") as tmp:
        options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp,
                   "--appendonly", "no", "--cluster-enabled", "yes",
                   "--cluster-port", str(bus_port)]  # fmt: skip
        with open(f"{tmp}/redis.log", "wb") as log:
            server = subprocess.Popen([binary, *options], stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_cluster(port, server, f"{tmp}/redis.log")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_cluster(port: int, server: subprocess.Popen[bytes], log_path: str) -> None:
    """Give the node every slot and wait until it says the cluster is up.

    Raises:
        RuntimeError: The server exited, or the cluster was not up in time.
    """
    deadline = time.monotonic() + CLUSTER_READY_S
    client = redis.Redis(port=port, socket_timeout=1)
    state, slots_added = "not answering", False
    try:
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if not slots_added:
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
                    slots_added = True
                state = client.execute_command("CLUSTER", "INFO").decode().splitlines()[0]
                if state.strip() == "cluster_state:ok":
                    return
            time.sleep(0.1)
    finally:
        client.close()
    with open(log_path, errors="replace") as log:
        raise RuntimeError(f"one-node cluster on port {port}: {state}; log:\n{log.read()}")
