"""Health, readiness and metrics."""

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from jobwire.server.auth import GRANTS, Permission
from jobwire.server.rest import contract as c
from jobwire.server.rest.errors import error_response
from jobwire.server.rest.jobs import core_of
from jobwire.server.rest.responses import JsonResponse

router = APIRouter(tags=["system"])
READY_TIMEOUT_S = 2.0


@router.get(
    "/healthz",
    operation_id="healthz",
    responses={200: {"model": c.Health, "description": "Alive."}},
)
async def healthz() -> JsonResponse:
    """The process is alive."""
    return JsonResponse({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={
        200: {"model": c.Health, "description": "The store answers."},
        503: {"model": c.Error, "description": "The store does not answer (`not_ready`)."},
    },
)
async def readyz(request: Request) -> JsonResponse:
    """The backend answers (503 if not)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await core_of(request).ping()
    except Exception as exc:
        return error_response(503, "not_ready", f"backend unreachable: {type(exc).__name__}: {exc}")
    return JsonResponse({"status": "ready"})


@router.get(
    "/metrics",
    operation_id="metrics",
    responses={
        200: {
            "description": "Prometheus text.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        401: {"model": c.Error, "description": c.ERRORS[401] + " Only when metrics are private."},
        403: {"model": c.Error, "description": c.ERRORS[403]},
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition; queue depths are read from the backend (cached briefly)."""
    state = request.app.state
    if not state.settings.metrics_public:
        state.auth.check(request.headers.get("authorization"), Permission.READ)
    core = core_of(request)
    await core.refresh_metrics()
    return Response(core.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/whoami", include_in_schema=False)  # the dashboard's; not yet in OpenAPI
async def whoami(request: Request) -> JsonResponse:
    """The role of the request's token and what it may do (401 like any route without a
    valid token; everyone is admin when no tokens are configured)."""
    auth = request.app.state.auth
    role = auth.role_of(request.headers.get("authorization"))
    permissions = sorted(permission.value for permission in GRANTS[role])
    return JsonResponse({"role": role.value, "permissions": permissions, "auth": auth.enabled})
