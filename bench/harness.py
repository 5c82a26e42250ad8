"""Running things for the benchmark: worker processes, a Redis server, a Jobwire service."""

import asyncio
import contextlib
import multiprocessing
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
from systems import GRPC_URL_ENV, SERVICE_URL_ENV, SYSTEMS, BenchError, System

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def worker_main(
    system_key: str,
    url: str,
    queue_name: str,
    concurrency: int,
    conn: Connection,
    profile_to: str | None,
) -> None:
    """Entry point of a spawned worker process.

    Connects, sends ``"ready"``, waits for ``"go"`` before starting the worker,
    and stops it on ``"stop"``.

    Args:
        system_key: Key into :data:`SYSTEMS`.
        url: Redis URL.
        queue_name: Queue to work on.
        concurrency: Worker concurrency.
        conn: Pipe end to the parent.
        profile_to: Path stem for pyinstrument ``.html``/``.txt`` output, or None.
    """
    asyncio.run(_serve(SYSTEMS[system_key], url, queue_name, concurrency, conn, profile_to))


async def _serve(
    system: System,
    url: str,
    queue_name: str,
    concurrency: int,
    conn: Connection,
    profile_to: str | None,
) -> None:
    queue = system.queue(url, queue_name)
    await system.connect(queue)
    worker = system.worker(queue, concurrency)
    commands = _command_queue(conn)
    conn.send("ready")
    await _expect(commands, "go")
    profiler = _start_profiler() if profile_to else None
    running = asyncio.create_task(worker.start())
    stopping = asyncio.create_task(_expect(commands, "stop"))
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()
        raise BenchError(f"{system.label}: worker.start() returned before stop()")
    await worker.stop()
    await running
    if profiler is not None and profile_to is not None:
        _write_profile(profiler, profile_to)
    await system.close(queue)


def _command_queue(conn: Connection) -> "asyncio.Queue[str]":
    commands: asyncio.Queue[str] = asyncio.Queue()
    asyncio.get_running_loop().add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    return commands


async def _expect(commands: "asyncio.Queue[str]", expected: str) -> None:
    got = await commands.get()
    if got != expected:
        raise BenchError(f"worker expected {expected!r} from the parent, got {got!r}")


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    # async_mode="disabled": sample whatever the event loop thread runs, across all tasks.
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    return profiler


def _write_profile(profiler: Any, stem: str) -> None:
    profiler.stop()
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.html").write_text(profiler.output_html())
    Path(f"{stem}.txt").write_text(profiler.output_text(unicode=True, color=False))


@dataclass
class WorkerProcess:
    """Parent-side handle on a spawned worker process.

    Attributes:
        system: The system the worker runs.
        url: Redis URL.
        queue_name: Queue the worker works on.
        concurrency: Worker concurrency.
        profile_to: Path stem for a pyinstrument profile, or None.
    """

    system: System
    url: str
    queue_name: str
    concurrency: int
    profile_to: str | None = None
    _conn: Connection | None = field(default=None, init=False)
    _process: Any = field(default=None, init=False)

    async def start(self) -> None:
        """Spawn the process and wait until it is connected and ready."""
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        args = (
            self.system.key,
            self.url,
            self.queue_name,
            self.concurrency,
            child_conn,
            self.profile_to,
        )
        self._process = context.Process(target=worker_main, args=args, daemon=True)
        self._process.start()
        child_conn.close()
        if not await asyncio.to_thread(self._conn.poll, READY_TIMEOUT_S):
            self.check_alive()
            raise BenchError(f"{self.system.label}: worker not ready after {READY_TIMEOUT_S}s")
        ready = self._conn.recv()
        if ready != "ready":
            raise BenchError(f"{self.system.label}: worker sent {ready!r} instead of 'ready'")

    def go(self) -> None:
        """Tell the worker to start its Worker."""
        self._send("go")

    def check_alive(self) -> None:
        """Raise if the worker process has exited."""
        if not self._process.is_alive():
            raise BenchError(
                f"{self.system.label}: worker process exited with code {self._process.exitcode}"
            )

    async def stop(self) -> None:
        """Ask the worker to stop gracefully and wait for the process to exit."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._send("stop")
            await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            raise BenchError(f"{self.system.label}: worker did not stop within {STOP_TIMEOUT_S}s")
        if self._process.exitcode != 0:
            raise BenchError(
                f"{self.system.label}: worker process exited with code {self._process.exitcode}"
            )

    def _send(self, command: str) -> None:
        assert self._conn is not None
        self._conn.send(command)


@contextlib.asynccontextmanager
async def running_worker(worker: WorkerProcess) -> AsyncIterator[WorkerProcess]:
    """Start ``worker`` (up to ready, not go) and stop it on exit."""
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """Run a non-persisting redis-server on a free port; yield its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            _wait_for_redis(port, server)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_redis(port: int, server: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()


async def describe_environment(admin: aioredis.Redis, systems: list[System]) -> str:
    """Machine, versions and the exact command, as markdown lines."""
    server = await admin.info("server")
    packages = dict.fromkeys(s.key.split("-")[0] for s in systems)  # jobwire-http: jobwire
    versions = ", ".join(f"{name} {package_version(name)}" for name in packages)
    return "\n".join(
        [
            f"- machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}",
            f"- python {platform.python_version()}, redis-server {server['redis_version']}, "
            f"{versions}",
            f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        ]
    )


def package_version(package: str) -> str:
    """The installed version of ``package`` (or says it is not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


@contextlib.contextmanager
def jobwire_service(redis_url: str) -> Iterator[str]:
    """Run `jobwire serve` on free REST and gRPC ports against ``redis_url``; yield its
    REST URL.

    Both URLs (``http://``, ``grpc://``) are also put in the environment, where spawned
    workers find them.
    """
    port, grpc_port = free_port(), free_port()
    while grpc_port == port:
        grpc_port = free_port()
    env = {**os.environ, "JOBWIRE_BACKEND": redis_url, "JOBWIRE_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "jobwire.cli", "serve", "--http-port", str(port),
               "--grpc-port", str(grpc_port)]  # fmt: skip
    server = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server)
        os.environ[SERVICE_URL_ENV] = url
        os.environ[GRPC_URL_ENV] = f"grpc://127.0.0.1:{grpc_port}"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"jobwire serve at {url} did not become ready")
