"""Operator routes: pause and resume a queue, read and replace its limits, and retry,
delete or abort every job a filter matches.

Each route translates its request into one ``ServiceCore`` call and the answer into JSON.
"""

from typing import Any

from fastapi import APIRouter, Depends, Request

from jobwire.flow import BulkAction, QueueSettings
from jobwire.server.auth import BULK_PERMISSIONS, Permission, require
from jobwire.server.rest import contract as c
from jobwire.server.rest.contract import responses
from jobwire.server.rest.jobs import QueueName, core_of
from jobwire.server.rest.responses import JsonResponse
from jobwire.server.rest.routes import GuardedRoute
from jobwire.server.schemas import JobFilterBody, QueueSettingsBody

router = APIRouter(route_class=GuardedRoute, tags=["queues"])


def settings_body(queue: str, settings: QueueSettings, paused: bool) -> dict[str, Any]:
    """A queue's limits and pause state as a response body."""
    return {"queue": queue, "paused": paused, "settings": settings.to_dict()}


@router.post(
    "/v1/queues/{queue}/pause",
    operation_id="pauseQueue",
    responses=responses({200: (c.QueueState, "Paused (it was or it is now).")}),
    dependencies=[Depends(require(Permission.CONFIGURE))],
)
async def pause_queue(queue: QueueName, request: Request) -> JsonResponse:
    """Stop leasing the queue's jobs, for every worker of every replica (admin). Running
    jobs finish; enqueue still works; the state is stored with the queue."""
    await core_of(request).pause(queue)
    return JsonResponse({"queue": queue, "paused": True})


@router.post(
    "/v1/queues/{queue}/resume",
    operation_id="resumeQueue",
    responses=responses({200: (c.QueueState, "Leasing again.")}),
    dependencies=[Depends(require(Permission.CONFIGURE))],
)
async def resume_queue(queue: QueueName, request: Request) -> JsonResponse:
    """Lease the queue's jobs again; waiting workers wake at once (admin)."""
    await core_of(request).resume(queue)
    return JsonResponse({"queue": queue, "paused": False})


@router.get(
    "/v1/queues/{queue}/settings",
    operation_id="getQueueSettings",
    responses=responses({200: (c.QueueSettingsResult, "The limits (none: `{}`).")}),
    dependencies=[Depends(require(Permission.READ))],
)
async def get_queue_settings(queue: QueueName, request: Request) -> JsonResponse:
    """The queue's limits and whether it is paused."""
    settings, paused = await core_of(request).settings(queue)
    return JsonResponse(settings_body(queue, settings, paused))


@router.put(
    "/v1/queues/{queue}/settings",
    operation_id="putQueueSettings",
    responses=responses({200: (c.QueueSettingsResult, "Stored.")}, body=True),
    dependencies=[Depends(require(Permission.CONFIGURE))],
)
async def put_queue_settings(
    queue: QueueName, body: QueueSettingsBody, request: Request
) -> JsonResponse:
    """Replace every limit of the queue (admin; `{}` removes them all). Every worker
    leasing afterwards keeps them; relaxed limits wake waiting workers."""
    settings, paused = await core_of(request).configure(queue, body.to_settings())
    return JsonResponse(settings_body(queue, settings, paused))


BULK_DOCS = {
    BulkAction.RETRY: "Queue again every finished job the filter matches (live ones are skipped).",
    BulkAction.DELETE: "Delete every job the filter matches, whatever its status (admin).",
    BulkAction.ABORT: "Abort every live job the filter matches: queued and scheduled ones at "
    "once, active ones turn `aborting` and their workers hear at their next heartbeat.",
}


def _add_bulk_route(action: BulkAction) -> None:
    """``POST /v1/queues/{queue}/jobs/<action>``, with the permission its single-job form
    needs."""

    async def bulk(
        queue: QueueName, request: Request, body: JobFilterBody | None = None
    ) -> JsonResponse:
        where = (body or JobFilterBody()).to_filter()
        return JsonResponse({"count": await core_of(request).bulk(queue, action, where)})

    bulk.__doc__ = (
        f"{BULK_DOCS[action]} No body, or `{{}}`, takes every job of the queue. The "
        "service works in short chunks, so the store is never held for long."
    )
    router.add_api_route(
        f"/v1/queues/{{queue}}/jobs/{action.value}",
        bulk,
        methods=["POST"],
        operation_id=f"{action.value}Jobs",
        name=f"{action.value}_jobs",
        responses=responses({200: (c.BulkResult, "How many jobs changed.")}, body=True),
        dependencies=[Depends(require(BULK_PERMISSIONS[action]))],
    )


for _action in BulkAction:
    _add_bulk_route(_action)
