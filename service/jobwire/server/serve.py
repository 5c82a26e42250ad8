"""Run the service: uvicorn (uvloop + httptools) serving the REST app in one event loop."""

import asyncio
import contextlib
import math
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
import uvloop

from jobwire.server.app import create_app
from jobwire.server.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then answer long polls at once, stop accepting, finish
    in-flight requests (up to ``shutdown_grace_s``) and close the backend's connections."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
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
    await _DrainingServer(config, app.state.draining).serve()


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, but a stop signal first sets ``draining`` (long polls answer at
    once) and is not re-raised after a clean shutdown (so the exit code is 0)."""

    def __init__(self, config: uvicorn.Config, draining: asyncio.Event) -> None:
        super().__init__(config)
        self._draining = draining
        self._loop = asyncio.get_running_loop()

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
