"""Run the service: uvicorn (REST, uvloop + httptools) and grpc.aio (gRPC) in one event
loop, both on one ServiceCore (one store, one connection pool)."""

import asyncio
import contextlib
import math
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
import uvloop

from jobwire.server.app import create_app
from jobwire.server.core import ServiceCore
from jobwire.server.grpc.server import GrpcServer, create_grpc_server
from jobwire.server.metrics import Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.server.settings import QueueSetup, Settings


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then answer long polls at once, stop accepting, finish
    in-flight requests and let streaming workers hand back unstarted jobs (up to
    ``shutdown_grace_s``), and close the backend's connections."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    registry = QueueRegistry(settings.backend)
    metrics = Metrics(settings.run_seconds_buckets, settings.wait_seconds_buckets)
    core = ServiceCore(registry, metrics, max_wait_s=settings.max_wait_s)
    app = create_app(settings, core=core)
    grpc_server = create_grpc_server(settings, core) if settings.grpc_port else None
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )
    try:
        await set_up_queues(core, settings.queue_setups())
        if grpc_server is not None:
            await grpc_server.start()
        server = _DrainingServer(config, core.stopping, grpc_server, settings.shutdown_grace_s)
        await server.serve()
    finally:
        if grpc_server is not None:
            await grpc_server.stop(0)  # at once, if uvicorn ended without stopping it
        await registry.close()


async def set_up_queues(core: ServiceCore, setups: dict[str, QueueSetup]) -> None:
    """Apply the limits and pause states given at start (``JOBWIRE_QUEUES``), before any
    worker can lease."""
    for name, setup in setups.items():
        if setup.has_limits:
            await core.configure(name, setup.to_settings())
        if setup.paused is not None:
            await (core.pause(name) if setup.paused else core.resume(name))


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, but a stop signal first sets ``draining`` (long polls answer at
    once) and is not re-raised after a clean shutdown (so the exit code is 0); the gRPC
    server, if any, stops alongside (its workers drain within ``grace_s``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        draining: asyncio.Event,
        grpc: GrpcServer | None = None,
        grace_s: float = 0.0,
    ) -> None:
        super().__init__(config)
        self._draining = draining
        self._loop = asyncio.get_running_loop()
        self._grpc = grpc
        self._grace_s = grace_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._draining.set)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        stopping = [super().shutdown(sockets)]
        if self._grpc is not None:
            stopping.append(self._grpc.stop(self._grace_s))
        await asyncio.gather(*stopping)
