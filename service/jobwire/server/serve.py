"""Run the service: uvicorn (uvloop + httptools) serving the REST app in one event loop."""

import asyncio
import math

import uvicorn
import uvloop

from jobwire.server.app import create_app
from jobwire.server.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, finish in-flight requests
    (up to ``shutdown_grace_s``) and close the backend's connections."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
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
    await uvicorn.Server(config).serve()
