"""Health, readiness and metrics."""

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from jobwire.server.auth import Permission
from jobwire.server.rest.errors import error_response
from jobwire.server.rest.jobs import core_of
from jobwire.server.rest.responses import JsonResponse

router = APIRouter(tags=["system"])
READY_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> JsonResponse:
    """The process is alive."""
    return JsonResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JsonResponse:
    """The backend answers (503 if not)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await core_of(request).ping()
    except Exception as exc:
        return error_response(503, "not_ready", f"backend unreachable: {type(exc).__name__}: {exc}")
    return JsonResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition; queue depths are read from the backend (cached briefly)."""
    state = request.app.state
    if not state.settings.metrics_public:
        state.auth.check(request.headers.get("authorization"), Permission.READ)
    core = core_of(request)
    await core.refresh_metrics()
    return Response(core.metrics.render(), media_type=CONTENT_TYPE_LATEST)
