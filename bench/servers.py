"""Starting the servers of the service-cost benchmark, one process each, on loopback:
`jobwire serve` (over any store), the bare REST app and the bare gRPC echo.

Free ports are picked just before the start (another process could take one meanwhile:
the server then fails to start and the benchmark says so)."""

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


@dataclass(frozen=True)
class Spec:
    """How to start one server and tell that it is ready.

    Attributes:
        label: What it is, for logs.
        command: Its command line.
        env: Its environment.
        http_url: Its REST base URL, or None.
        grpc_target: Its gRPC ``host:port``, or None.
        ready_url: A URL that answers 200 once it serves (REST servers), or None (then
            readiness is a gRPC channel to ``grpc_target``).
    """

    label: str
    command: list[str]
    env: dict[str, str]
    http_url: str | None = None
    grpc_target: str | None = None
    ready_url: str | None = None


def jobwire_spec(backend_url: str, label: str) -> Spec:
    """`jobwire serve` on free REST and gRPC ports over ``backend_url``."""
    http_port, grpc_port = _port(), _port()
    env = {**os.environ, "JOBWIRE_BACKEND": backend_url, "JOBWIRE_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "jobwire.cli", "serve", "--http-port", str(http_port),
               "--grpc-port", str(grpc_port)]  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    return Spec(label, command, env, url, f"127.0.0.1:{grpc_port}", f"{url}/readyz")


def bare_rest_spec(redis_url: str) -> Spec:
    """The bare REST app (bench/bare_rest.py) over ``redis_url``."""
    port = _port()
    command = [sys.executable, str(BENCH_DIR / "bare_rest.py"), "--port", str(port),
               "--redis-url", redis_url]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Spec("bare REST", command, dict(os.environ), http_url=url, ready_url=f"{url}/ping")


def bare_grpc_spec() -> Spec:
    """The bare gRPC echo (bench/bare_grpc.py)."""
    port = _port()
    command = [sys.executable, str(BENCH_DIR / "bare_grpc.py"), "--port", str(port)]
    return Spec("bare gRPC", command, dict(os.environ), grpc_target=f"127.0.0.1:{port}")


@contextlib.contextmanager
def running(*specs: Spec) -> Iterator[list[Server]]:
    """Start every server at once, wait until each is ready, stop them all on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            processes.append(subprocess.Popen(spec.command, env=spec.env))
        for spec, process in zip(specs, processes, strict=True):
            if spec.ready_url is not None:
                _wait_http(spec.ready_url, process, spec.label)
            else:
                _wait_grpc(spec.grpc_target or "", process)
        yield [Server(s.label, p.pid, s.http_url, s.grpc_target)
               for s, p in zip(specs, processes, strict=True)]  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            _reap(process)


def point_sdk_at(server: Server) -> None:
    """Put the service's ``http://`` and ``grpc://`` URLs in the environment, where the
    systems.JobwireHttp / JobwireGrpc adapters (and spawned SDK workers) find them."""
    os.environ[SERVICE_URL_ENV] = server.http_url or ""
    os.environ[GRPC_URL_ENV] = f"grpc://{server.grpc_target}"


_HANDED_OUT: set[int] = set()


def _port() -> int:
    """A free port not handed out before by this process (servers start together)."""
    port = free_port()
    while port in _HANDED_OUT:
        port = free_port()
    _HANDED_OUT.add(port)
    return port


def _reap(process: "subprocess.Popen[bytes]") -> None:
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
