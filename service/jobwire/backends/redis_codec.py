"""Job <-> Redis hash fields. Everything is stored as text; JSON for user data."""

from typing import Any

import orjson

from jobwire.job import ErrorInfo, Job, Status


def encode_job(job: Job) -> list[Any]:
    """The hash fields set when a job is first stored (status and times come from Redis)."""
    fields: list[Any] = [
        "id", job.id,
        "function", job.function,
        "kwargs", orjson.dumps(job.kwargs),
        "priority", job.priority,
        "heartbeat", job.heartbeat,
        "retries", job.retries,
        "attempts", job.attempts,
        "ttl", job.ttl,
        "scheduled", job.scheduled,
        "retry_delay", job.retry_delay,
        "retry_backoff", orjson.dumps(job.retry_backoff),
        "progress", job.progress,
        "meta", orjson.dumps(job.meta),
    ]  # fmt: skip
    if job.key is not None:
        fields += ["key", job.key]
    if job.timeout is not None:
        fields += ["timeout", job.timeout]
    return fields


def error_json(error: ErrorInfo) -> bytes:
    """Serialize an ``ErrorInfo``."""
    return orjson.dumps(
        {"type": error.type, "message": error.message, "traceback": error.traceback}
    )


def decode_job(job_id: str, queue: str, fields: dict[bytes, bytes]) -> Job:
    """Build a ``Job`` from its hash fields."""
    get = fields.get
    timeout, key, result, error = get(b"timeout"), get(b"key"), get(b"result"), get(b"error")
    worker, lease = get(b"worker"), get(b"lease")
    return Job(
        function=fields[b"function"].decode(),
        kwargs=orjson.loads(fields[b"kwargs"]),
        queue=queue,
        id=job_id,
        key=key.decode() if key is not None else None,
        status=Status(fields[b"status"].decode()),
        priority=int(fields[b"priority"]),
        timeout=float(timeout) if timeout is not None else None,
        heartbeat=float(fields[b"heartbeat"]),
        retries=int(fields[b"retries"]),
        attempts=int(fields[b"attempts"]),
        ttl=int(fields[b"ttl"]),
        scheduled=float(fields[b"scheduled"]),
        retry_delay=float(fields[b"retry_delay"]),
        retry_backoff=orjson.loads(fields[b"retry_backoff"]),
        progress=float(fields[b"progress"]),
        meta=orjson.loads(fields[b"meta"]),
        result=orjson.loads(result) if result is not None else None,
        error=ErrorInfo(**orjson.loads(error)) if error is not None else None,
        created=float(get(b"created", 0)),
        queued=float(get(b"queued", 0)),
        started=float(get(b"started", 0)),
        completed=float(get(b"completed", 0)),
        touched=float(get(b"touched", 0)),
        worker=worker.decode() if worker is not None else None,
        lease=lease.decode() if lease is not None else None,
    )
