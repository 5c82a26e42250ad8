"""``create_app``: the FastAPI application, its resources living in a lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from jobwire import __version__
from jobwire.backends import redact_url
from jobwire.server.auth import Authenticator
from jobwire.server.core import ServiceCore
from jobwire.server.metrics import Metrics
from jobwire.server.registry import QueueRegistry
from jobwire.server.rest import jobs, queues, system, work
from jobwire.server.rest.contract import finish_document
from jobwire.server.rest.docs import install_docs
from jobwire.server.rest.errors import install_error_handlers
from jobwire.server.rest.middleware import BodyLimitMiddleware, HttpMetricsMiddleware
from jobwire.server.rest.responses import JsonResponse
from jobwire.server.settings import Settings
from jobwire.server.ui import router as ui_router

logger = logging.getLogger("jobwire.server")
API_DESCRIPTION = (
    "Jobwire's REST API: enqueue, read, wait for, watch and abort jobs; workers lease jobs, "
    "renew their leases and report outcomes (docs/worker-protocol.md). Errors are always "
    '`{"error": {"code", "message"}}`. With tokens, send `Authorization: Bearer <token>`; '
    "roles: `client` (enqueue, read, abort, retry, also in bulk), `worker` (lease, heartbeat, "
    "complete, fail, read, enqueue), `admin` (everything, plus delete, pausing queues and "
    "their settings)."
)


def create_app(settings: Settings, *, core: ServiceCore | None = None) -> FastAPI:
    """Build the REST app; nothing connects until the lifespan starts.

    Args:
        settings: The service's settings.
        core: Serve through this core (shared with the gRPC server; the caller closes
            its queues); by default the app makes its own on ``settings.backend`` and
            closes it with the lifespan. The lifespan sweeps expired leases either way.
    """
    own = core is None
    service = core or ServiceCore(
        QueueRegistry(settings.backend),
        Metrics(settings.run_seconds_buckets, settings.wait_seconds_buckets),
        max_wait_s=settings.max_wait_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(service.sweep_forever(settings.sweep_interval_s))
        logger.info("serving backend %s", redact_url(settings.backend))
        try:
            yield
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            if own:
                await service.registry.close()

    app = FastAPI(
        title="Jobwire",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JsonResponse,
        docs_url=None,  # served from local assets by install_docs
        redoc_url=None,
        description=API_DESCRIPTION,
    )
    build_document = app.openapi
    app.openapi = lambda: finish_document(build_document())  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.auth = Authenticator(settings.token_roles())
    app.state.core = service
    install_error_handlers(app)
    for router in (jobs.router, queues.router, work.router, system.router):
        app.include_router(router)
    install_docs(app, "Jobwire")
    app.include_router(ui_router)  # the dashboard: /ui (and / redirecting there)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, metrics=service.metrics)
    return app
