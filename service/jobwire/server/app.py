"""``create_app``: the FastAPI application, its resources living in a lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from jobwire import __version__
from jobwire.server import api, system, work
from jobwire.server.auth import Authenticator
from jobwire.server.errors import backend_unreachable, install_error_handlers
from jobwire.server.limits import BodyLimitMiddleware
from jobwire.server.metrics import HttpMetricsMiddleware, Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.server.responses import JsonResponse
from jobwire.server.settings import Settings

logger = logging.getLogger("jobwire.server")


def create_app(
    settings: Settings, *, registry: QueueRegistry | None = None, metrics: Metrics | None = None
) -> FastAPI:
    """Build the REST app; nothing connects until the lifespan starts.

    Args:
        settings: The service's settings.
        registry: Serve these queues (shared with the gRPC server; the caller closes
            it); by default the lifespan opens its own on ``settings.backend``.
        metrics: Record into these metrics (shared with the gRPC server).
    """
    metrics = metrics or Metrics(settings.run_seconds_buckets, settings.wait_seconds_buckets)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = queues = registry or QueueRegistry(settings.backend)
        sweeper = asyncio.create_task(_sweep_forever(queues, settings.sweep_interval_s))
        drainer = asyncio.create_task(_interrupt_on_drain(app.state.draining, queues))
        logger.info("serving backend %s", _redact(settings.backend))
        try:
            yield
        finally:
            sweeper.cancel()
            drainer.cancel()
            await asyncio.gather(sweeper, drainer, return_exceptions=True)
            if registry is None:
                await queues.close()

    app = FastAPI(
        title="Jobwire",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JsonResponse,
    )
    app.state.settings = settings
    app.state.auth = Authenticator(settings.token_roles())
    app.state.metrics = metrics
    app.state.workers_seen = {}
    app.state.draining = asyncio.Event()  # set when a stop signal arrives
    install_error_handlers(app)
    for router in (api.router, work.router, system.router):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app


async def _interrupt_on_drain(draining: asyncio.Event, registry: QueueRegistry) -> None:
    """When shutdown starts, end waiting leases so their requests answer at once."""
    await draining.wait()
    registry.interrupt_waits()


async def _sweep_forever(registry: QueueRegistry, interval_s: float) -> None:
    """Reclaim expired leases of every queue, so jobs of dead workers come back."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            for name in await registry.names():
                await registry.get(name).sweep()
        except backend_unreachable() as exc:
            logger.warning("sweep: backend unreachable (%s); retrying in %g s", exc, interval_s)
        except Exception:
            logger.exception("sweep failed; retrying in %g s", interval_s)


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
