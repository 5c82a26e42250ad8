"""Starting the servers of the service-cost benchmark, one process each, on loopback:
`jobwire serve` (over any store), the bare REST app and the bare gRPC echo."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from harness import READY_TIMEOUT_S, free_port
from systems import GRPC_URL_ENV, SERVICE_URL_ENV, BenchError

BENCH_DIR = Path(__file__).resolve().parent
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Server:
    """A running server process.

    Attributes:
        label: What it is, for logs.
        pid: Its process id (what py-spy attaches to).
        http_url: Its REST base URL, or None.
        grpc_target: Its gRPC ``host:port``, or None.
    """

    label: str
    pid: int
    http_url: str | None = None
    grpc_target: str | None = None


@contextlib.contextmanager
def jobwire_serve(backend_url: str, label: str) -> Iterator[Server]:
    """Run `jobwire serve` on free REST and gRPC ports over ``backend_url``."""
    http_port, grpc_port = _two_ports()
    env = {**os.environ, "JOBWIRE_BACKEND": backend_url, "JOBWIRE_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "jobwire.cli", "serve", "--http-port", str(http_port),
               "--grpc-port", str(grpc_port)]  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    with _process(command, env) as process:
        _wait_http(f"{url}/readyz", process, label)
        yield Server(label, process.pid, url, f"127.0.0.1:{grpc_port}")


def point_sdk_at(server: Server) -> None:
    """Put the service's ``http://`` and ``grpc://`` URLs in the environment, where the
    systems.JobwireHttp / JobwireGrpc adapters (and spawned SDK workers) find them."""
    os.environ[SERVICE_URL_ENV] = server.http_url or ""
    os.environ[GRPC_URL_ENV] = f"grpc://{server.grpc_target}"


@contextlib.contextmanager
def bare_rest(redis_url: str) -> Iterator[Server]:
    """Run the bare REST app (bench/bare_rest.py) over ``redis_url``."""
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / "bare_rest.py"), "--port", str(port),
               "--redis-url", redis_url]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with _process(command, dict(os.environ)) as process:
        _wait_http(f"{url}/ping", process, "bare REST")
        yield Server("bare REST", process.pid, http_url=url)


@contextlib.contextmanager
def bare_grpc() -> Iterator[Server]:
    """Run the bare gRPC echo (bench/bare_grpc.py)."""
    port = free_port()
    command = [sys.executable, str(BENCH_DIR / "bare_grpc.py"), "--port", str(port)]
    target = f"127.0.0.1:{port}"
    with _process(command, dict(os.environ)) as process:
        _wait_grpc(target, process)
        yield Server("bare gRPC", process.pid, grpc_target=target)


def _two_ports() -> tuple[int, int]:
    first, second = free_port(), free_port()
    while second == first:
        second = free_port()
    return first, second


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str]) -> Iterator["subprocess.Popen[bytes]"]:
    process = subprocess.Popen(command, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_http(url: str, process: "subprocess.Popen[bytes]", label: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{label} at {url} did not become ready (exit code {process.poll()})")


def _wait_grpc(target: str, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                pass
        time.sleep(0.1)
    raise BenchError(f"bare gRPC at {target} did not become ready (exit code {process.poll()})")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
