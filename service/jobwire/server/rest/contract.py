"""The REST API's contract in the OpenAPI document: response models and declared statuses.

The models here describe what the routes answer, for the document only: the routes keep
returning their orjson ``JsonResponse`` (nothing re-validates a response on the way out),
and ``tests/clients`` checks the document against real answers through generated clients.
``finish_document`` drops FastAPI's 422/``HTTPValidationError`` entries: bad input is
``400`` with the one error shape.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobwire.job import Status
from jobwire.server.schemas import QueueSettingsBody

LeaseStateName = Literal["active", "aborting", "lost"]

JOB_EXAMPLE: dict[str, Any] = {
    "id": "8c1f6f0e5a7b4c2d9e3f1a2b3c4d5e6f", "function": "send_welcome_email",
    "kwargs": {"user_id": 1}, "queue": "emails", "key": "welcome-1", "concurrency_key": None,
    "status": "queued",
    "priority": 0, "timeout": None, "heartbeat": 0, "retries": 2, "attempts": 0, "ttl": 600,
    "scheduled": 0, "retry_delay": 0.0, "retry_backoff": False, "progress": 0.0, "meta": {},
    "result": None, "error": None, "created": 1764400000.0, "queued": 1764400000.0,
    "started": 0, "completed": 0, "touched": 1764400000.0, "worker": None,
}  # fmt: skip


class ErrorInfo(BaseModel):
    """Why a job failed or was aborted."""

    type: str = Field(description="Exception class name (``Aborted`` for an abort).")
    message: str
    traceback: str


class Job(BaseModel):  # type: ignore[no-redef]  # (pydantic plugin: a field "kwargs")
    """A job, as every route that answers with one shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str = Field(description="Unique within its queue (generated ids are UUIDs).")
    function: str
    kwargs: dict[str, Any]
    queue: str
    key: str | None = Field(description="Deduplication key while the job is live.")
    concurrency_key: str | None = Field(description="Groups jobs for the per-key limits.")
    status: Status
    priority: int
    timeout: float | None = Field(description="Seconds before the worker cancels the task.")
    heartbeat: float = Field(description="Lease length in seconds (0: the queue's default).")
    retries: int = Field(description="Retries allowed after the first attempt.")
    attempts: int = Field(description="Attempts started so far.")
    ttl: int = Field(description="Seconds a finished job stays readable (0 forever).")
    scheduled: float = Field(description="Unix time before which it does not start (0: now).")
    retry_delay: float
    retry_backoff: bool | float
    progress: float = Field(description="0 to 1, as the task reports it.")
    meta: dict[str, Any]
    result: Any = Field(description="The function's return value once complete.")
    error: ErrorInfo | None
    created: float = Field(description="Unix time of the first enqueue.")
    queued: float
    started: float
    completed: float
    touched: float
    worker: str | None = Field(description="Id of the worker that holds (or last held) it.")


class EnqueuedJob(Job):  # type: ignore[no-redef]
    """A job as enqueue answers it."""

    duplicate: bool = Field(
        description="True when a live job with this id or key already existed (it is that job)."
    )


class LeasedJob(Job):  # type: ignore[no-redef]
    """A job handed to a worker, with its attempt's lease token."""

    lease: str = Field(description="Send it with every heartbeat, complete and fail.")


class BatchResult(BaseModel):
    """Enqueued jobs, in the order asked."""

    jobs: list[EnqueuedJob]


class JobPage(BaseModel):
    """A page of jobs; pass ``next_cursor`` back as ``cursor`` for the next one."""

    jobs: list[Job]
    next_cursor: str | None = Field(description="Null on the last page.")


class QueueSummary(BaseModel):
    """A queue and its counts per status."""

    name: str
    counts: dict[str, int]


class QueueList(BaseModel):
    """Every queue the store holds jobs for."""

    queues: list[QueueSummary]


class WorkerSeen(BaseModel):
    """A worker seen in the last minute: one shape whatever the transport or store."""

    id: str
    seen: float = Field(description="Unix time it was last seen.")
    functions: list[str]
    concurrency: int = Field(description="Jobs it runs at once.")
    running: int = Field(description="Jobs it ran when last seen.")
    host: str
    pid: int
    transport: str = Field(
        description="``http``, ``grpc``, ``grpc-stream``, or empty for a worker on the store."
    )


class QueueInfo(BaseModel):
    """A queue's counts, workers and throughput."""

    name: str
    counts: dict[str, int] = Field(description="Jobs per status.")
    scheduled: int
    workers: list[WorkerSeen]
    finished_per_s: float = Field(description="Jobs finished per second, last five minutes.")
    paused: bool = Field(description="No job of it is leased while paused.")
    settings: QueueSettingsBody = Field(description="Its limits (unset: no limit).")


class QueueState(BaseModel):
    """Whether a queue is paused."""

    queue: str
    paused: bool


class QueueSettingsResult(BaseModel):
    """A queue's limits and whether it is paused."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queue": "emails",
                    "paused": False,
                    "settings": {
                        "max_active": 5,
                        "rate": {"limit": 100, "period_s": 1.0},
                        "functions": {"send": {"max_active": 2}},
                    },
                }
            ]
        }
    )

    queue: str
    paused: bool
    settings: QueueSettingsBody = Field(description="Its limits as stored (unset: no limit).")


class BulkResult(BaseModel):
    """What a bulk operation changed."""

    count: int = Field(description="Jobs retried, deleted or aborted.")


class LeaseResult(BaseModel):
    """Jobs leased to a worker."""

    jobs: list[LeasedJob]
    next_due_s: float | None = Field(
        description="Seconds until the next scheduled job is due, when none was handed out."
    )


class HeartbeatResult(BaseModel):
    """What a heartbeat learned."""

    status: LeaseStateName = Field(description="``aborting``: stop the task, report it.")
    aborted: bool


class RenewResult(BaseModel):
    """Each lease's state, in the order asked."""

    states: list[LeaseStateName]


class SettleResult(BaseModel):
    """Per outcome: false where the lease was stale (nothing changed)."""

    settled: list[bool]


class SweepResult(BaseModel):
    """Jobs whose expired lease was reclaimed."""

    reclaimed: int


class Health(BaseModel):
    """A probe's answer."""

    status: Literal["ok", "ready"]


class FieldError(BaseModel):
    """One invalid field."""

    field: str
    message: str


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(
        description="Stable: invalid_request, unauthenticated, forbidden, not_found, "
        "invalid_state, stale_lease, payload_too_large, unavailable, not_ready, internal."
    )
    message: str
    details: list[FieldError] | None = Field(None, description="On invalid_request.")


class Error(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "not_found", "message": "no job 'x' in any queue"}}]
        }
    )

    error: ErrorDetail


ERRORS = {
    400: "Invalid input (`invalid_request`, with `details` per field).",
    401: "No token or an unknown one (`unauthenticated`).",
    403: "The token's role may not do this (`forbidden`).",
    404: "No such job (`not_found`).",
    409: "Conflict: `invalid_state` (retry of a live job) or `stale_lease` (the lease no "
    "longer owns the job: stop, do not report again).",
    413: "Body over the service's limit (`payload_too_large`).",
    500: "Internal error (`internal`); the service log has the details.",
    503: "The store is unreachable (`unavailable`); retry after `Retry-After` seconds.",
}
COMMON = (400, 401, 403, 500, 503)


def responses(
    ok: dict[int, tuple[type[BaseModel] | None, str]], *errors: int, body: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: its successes and every error it answers.

    Args:
        ok: Status to (model, description) of each success.
        errors: Error statuses beyond the common ones (400, 401, 403, 500, 503).
        body: The route takes a body (so 413 is possible).
    """
    declared: dict[int | str, dict[str, Any]] = {}
    for status, (model, description) in ok.items():
        declared[status] = {"description": description}
        if model is not None:
            declared[status]["model"] = model
    for status in sorted({*COMMON, *errors, *((413,) if body else ())}):
        declared[status] = {"model": Error, "description": ERRORS[status]}
    return declared


SSE_RESPONSE: dict[str, Any] = {
    "description": "Server-Sent Events: `event: job` with the job as JSON `data` now and at "
    "each change of status or progress, until it is finished; `event: deleted` with "
    '`{"id": ...}` if it is deleted meanwhile. A comment line every 15 s keeps the '
    "connection open.",
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            "example": 'event: job\ndata: {"id": "8c1f...", "status": "active", ...}\n\n',
        }
    },
}


OPEN_PATHS = ("/healthz", "/readyz", "/metrics")  # no token needed (metrics: by default)


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """Drop FastAPI's 422 responses and their schemas (the service answers 400), and
    declare the bearer token. Idempotent: it edits the app's cached document in place."""
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
                if path in OPEN_PATHS:
                    operation["security"] = []
    metrics = document.get("paths", {}).get("/metrics", {}).get("get", {})
    metrics.get("responses", {}).get("200", {}).get("content", {}).pop("application/json", None)
    components = document.setdefault("components", {})
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from JOBWIRE_TOKENS; none when the service runs without.",
        }
    }
    document["security"] = [{"bearer": []}, {}]  # {}: a service without tokens
    return document
