"""Jobs, outcomes, statuses, queue settings and filters to and from the gRPC messages of
``jobwire.v1``.

Both ends use it: the service (``jobwire.server.grpc``) and the SDK's ``grpc://``
backend. Keyword arguments, results and metadata travel as JSON text.
"""

from typing import Any

import orjson

from jobwire.backends.base import LeaseState, Outcome
from jobwire.flow import BulkAction
from jobwire.job import ErrorInfo, Job, Status
from jobwire.v1 import jobwire_pb2 as pb

ERROR_CODE_KEY = "jobwire-error"  # trailing metadata: Jobwire's own error code

STATUS_TO_PB: dict[Status, "pb.Status"] = {
    Status.QUEUED: pb.STATUS_QUEUED,
    Status.SCHEDULED: pb.STATUS_SCHEDULED,
    Status.ACTIVE: pb.STATUS_ACTIVE,
    Status.ABORTING: pb.STATUS_ABORTING,
    Status.ABORTED: pb.STATUS_ABORTED,
    Status.FAILED: pb.STATUS_FAILED,
    Status.COMPLETE: pb.STATUS_COMPLETE,
}
STATUS_FROM_PB: dict[int, Status] = {number: status for status, number in STATUS_TO_PB.items()}
LEASE_STATE_TO_PB: dict[LeaseState, "pb.LeaseState"] = {
    "active": pb.LEASE_STATE_ACTIVE,
    "aborting": pb.LEASE_STATE_ABORTING,
    "lost": pb.LEASE_STATE_LOST,
}
LEASE_STATE_FROM_PB: dict[int, LeaseState] = {n: s for s, n in LEASE_STATE_TO_PB.items()}
BULK_ACTION_TO_PB: dict[BulkAction, "pb.BulkAction"] = {
    BulkAction.RETRY: pb.BULK_ACTION_RETRY,
    BulkAction.DELETE: pb.BULK_ACTION_DELETE,
    BulkAction.ABORT: pb.BULK_ACTION_ABORT,
}
BULK_ACTION_FROM_PB: dict[int, BulkAction] = {n: a for a, n in BULK_ACTION_TO_PB.items()}


def dumps(value: Any) -> str:
    """JSON text of ``value``."""
    return orjson.dumps(value).decode()


def loads(text: str, empty: Any = None) -> Any:
    """The value of JSON ``text`` (``empty`` for an empty string).

    Raises:
        ValueError: Not JSON.
    """
    return orjson.loads(text) if text else empty


def error_to_pb(error: ErrorInfo) -> pb.JobError:
    """An ``ErrorInfo`` as a message."""
    return pb.JobError(type=error.type, message=error.message, traceback=error.traceback)


def error_from_pb(error: pb.JobError) -> ErrorInfo:
    """A ``JobError`` message as an ``ErrorInfo``."""
    return ErrorInfo(error.type, error.message, error.traceback)


def job_to_pb(job: Job, *, with_lease: bool = False) -> pb.Job:
    """A job as a message (its lease token only when asked for)."""
    message = pb.Job(
        id=job.id, queue=job.queue, function=job.function, kwargs_json=dumps(job.kwargs),
        status=STATUS_TO_PB[job.status], key=job.key,
        concurrency_key=job.concurrency_key, priority=job.priority,
        timeout=job.timeout, heartbeat=job.heartbeat, retries=job.retries,
        attempts=job.attempts, ttl=job.ttl, scheduled=job.scheduled,
        retry_delay=job.retry_delay, retry_backoff=bool(job.retry_backoff),
        retry_backoff_cap=_backoff_cap(job.retry_backoff), progress=job.progress,
        meta_json=dumps(job.meta), result_json=dumps(job.result), created=job.created,
        queued=job.queued, started=job.started, completed=job.completed, touched=job.touched,
        worker=job.worker, lease=job.lease if with_lease and job.lease else "",
    )  # fmt: skip
    if job.error is not None:
        message.error.CopyFrom(error_to_pb(job.error))
    return message


def job_from_pb(message: pb.Job) -> Job:
    """A ``Job`` message as a Job (with its lease token, if it carries one)."""
    return Job(
        function=message.function,
        kwargs=loads(message.kwargs_json, {}),
        queue=message.queue,
        id=message.id,
        key=message.key if message.HasField("key") else None,
        concurrency_key=(message.concurrency_key if message.HasField("concurrency_key") else None),
        status=STATUS_FROM_PB[message.status],
        priority=message.priority,
        timeout=message.timeout if message.HasField("timeout") else None,
        heartbeat=message.heartbeat,
        retries=message.retries,
        attempts=message.attempts,
        ttl=message.ttl,
        scheduled=message.scheduled,
        retry_delay=message.retry_delay,
        retry_backoff=_backoff(message.retry_backoff, message.retry_backoff_cap),
        progress=message.progress,
        meta=loads(message.meta_json, {}),
        result=loads(message.result_json),
        error=error_from_pb(message.error) if message.HasField("error") else None,
        created=message.created,
        queued=message.queued,
        started=message.started,
        completed=message.completed,
        touched=message.touched,
        worker=message.worker if message.HasField("worker") else None,
        lease=message.lease or None,
    )


def spec_from_job(job: Job) -> pb.JobSpec:
    """What to send to enqueue ``job`` (every option explicit)."""
    return pb.JobSpec(
        function=job.function, kwargs_json=dumps(job.kwargs), id=job.id, key=job.key,
        concurrency_key=job.concurrency_key, timeout=job.timeout, retries=job.retries,
        ttl=job.ttl, heartbeat=job.heartbeat, scheduled=job.scheduled,
        retry_delay=job.retry_delay,
        retry_backoff=bool(job.retry_backoff), retry_backoff_cap=_backoff_cap(job.retry_backoff),
        priority=job.priority,
    )  # fmt: skip


def spec_fields(spec: pb.JobSpec) -> dict[str, Any]:
    """A ``JobSpec`` as the fields of an enqueue request (unset options left out).

    Raises:
        ValueError: ``kwargs_json`` is not JSON.
    """
    fields: dict[str, Any] = {
        "function": spec.function, "kwargs": loads(spec.kwargs_json, {}),
        "retries": spec.retries, "heartbeat": spec.heartbeat, "scheduled": spec.scheduled,
        "retry_delay": spec.retry_delay, "priority": spec.priority,
        "retry_backoff": _backoff(spec.retry_backoff, spec.retry_backoff_cap),
    }  # fmt: skip
    if spec.id:
        fields["id"] = spec.id
    for name in ("key", "concurrency_key", "timeout", "ttl"):
        if spec.HasField(name):
            fields[name] = getattr(spec, name)
    return fields


def outcome_to_pb(outcome: Outcome) -> pb.Outcome:
    """An outcome as a message."""
    message = pb.Outcome(
        job_id=outcome.job_id,
        lease=outcome.lease,
        status=STATUS_TO_PB[outcome.status],
        delay_s=outcome.delay_s,
        run_s=outcome.run_s,
        function=outcome.function,
    )
    if outcome.status == Status.COMPLETE:
        message.result_json = dumps(outcome.result)
    if outcome.error is not None:
        message.error.CopyFrom(error_to_pb(outcome.error))
    return message


def outcome_fields(message: pb.Outcome) -> dict[str, Any]:
    """An ``Outcome`` message as the fields of an outcome (for validation).

    Raises:
        ValueError: Its result is not JSON.
    """
    fields: dict[str, Any] = {
        "job_id": message.job_id,
        "lease": message.lease,
        "status": STATUS_FROM_PB.get(message.status, pb.Status.Name(message.status)),
        "result": loads(message.result_json),
        "delay_s": message.delay_s,
        "function": message.function or "unknown",
    }
    if message.HasField("error"):
        error = message.error
        fields["error"] = {"type": error.type, "message": error.message,
                           "traceback": error.traceback}  # fmt: skip
    if message.HasField("run_s"):
        fields["run_s"] = message.run_s
    return fields


def settings_to_pb(data: dict[str, Any]) -> pb.QueueSettings:
    """Queue settings in ``QueueSettings.to_dict``'s shape as a message."""
    message = pb.QueueSettings(
        max_active=data.get("max_active"), max_active_per_key=data.get("max_active_per_key")
    )
    for name in ("rate", "rate_per_key"):
        if data.get(name) is not None:
            getattr(message, name).CopyFrom(_rate_to_pb(data[name]))
    for function, limits in (data.get("functions") or {}).items():
        entry = message.functions[function]  # created empty: no limits
        if limits.get("max_active") is not None:
            entry.max_active = limits["max_active"]
        if limits.get("rate") is not None:
            entry.rate.CopyFrom(_rate_to_pb(limits["rate"]))
    return message


def settings_fields(message: pb.QueueSettings) -> dict[str, Any]:
    """A ``QueueSettings`` message in ``QueueSettings.to_dict``'s shape (unset limits left
    out), for validation."""
    data: dict[str, Any] = {}
    for name in ("max_active", "max_active_per_key"):
        if message.HasField(name):
            data[name] = getattr(message, name)
    for name in ("rate", "rate_per_key"):
        if message.HasField(name):
            data[name] = _rate_fields(getattr(message, name))
    functions: dict[str, Any] = {}
    for function, limits in message.functions.items():
        functions[function] = {}
        if limits.HasField("max_active"):
            functions[function]["max_active"] = limits.max_active
        if limits.HasField("rate"):
            functions[function]["rate"] = _rate_fields(limits.rate)
    if functions:
        data["functions"] = functions
    return data


def filter_to_pb(data: dict[str, Any]) -> pb.JobFilter:
    """A job filter in ``JobFilter.to_dict``'s shape as a message."""
    status = data.get("status")
    fields = {k: v for k, v in data.items() if k != "status"}
    return pb.JobFilter(
        status=STATUS_TO_PB[Status(status)] if status else pb.STATUS_UNSPECIFIED, **fields
    )


def filter_fields(message: pb.JobFilter) -> dict[str, Any]:
    """A ``JobFilter`` message in ``JobFilter.to_dict``'s shape, for validation.

    Raises:
        ValueError: An unknown status number.
    """
    data: dict[str, Any] = {}
    if message.status:
        data["status"] = STATUS_FROM_PB.get(message.status) or pb.Status.Name(message.status)
    for name in ("function", "key_prefix", "enqueued_before", "enqueued_after"):
        if message.HasField(name):
            data[name] = getattr(message, name)
    return data


def _rate_to_pb(data: dict[str, Any]) -> pb.Rate:
    return pb.Rate(limit=data["limit"], period_s=data.get("period_s"))


def _rate_fields(message: pb.Rate) -> dict[str, Any]:
    data: dict[str, Any] = {"limit": message.limit}
    if message.HasField("period_s"):
        data["period_s"] = message.period_s
    return data


def _backoff_cap(backoff: bool | float) -> float:
    return 0.0 if isinstance(backoff, bool) else float(backoff)


def _backoff(enabled: bool, cap: float) -> bool | float:
    return cap if cap > 0 else enabled
