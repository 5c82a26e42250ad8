"""Job <-> Redis hash fields. Everything is stored as text; JSON for user data."""

from typing import Any

import orjson

from jobwire.job import DEFAULT_TTL_S as _DEFAULT_TTL
from jobwire.job import ErrorInfo, Job, Status


def encode_job(job: Job) -> list[Any]:
    """The hash fields set when a job is first stored (status and times come from Redis).

    Fields equal to their default are left out (fewer arguments to pack and send on the
    enqueue hot path); ``decode_job`` and the Lua scripts fill the defaults back in.
    """
    fields: list[Any] = ["id", job.id, "function", job.function, "kwargs", orjson.dumps(job.kwargs)]
    for name, value in (
        ("key", job.key),
        ("timeout", job.timeout),
        ("priority", job.priority),
        ("heartbeat", job.heartbeat),
        ("retries", job.retries),
        ("attempts", job.attempts),
        ("scheduled", job.scheduled),
        ("retry_delay", job.retry_delay),
        ("progress", job.progress),
    ):
        if value:
            fields += [name, value]
    if job.ttl != _DEFAULT_TTL:
        fields += ["ttl", job.ttl]
    if job.retry_backoff is not False:
        fields += ["retry_backoff", orjson.dumps(job.retry_backoff)]
    if job.meta:
        fields += ["meta", orjson.dumps(job.meta)]
    return fields


def decode_job(job_id: str, queue: str, fields: dict[bytes, bytes]) -> Job:
    """Build a ``Job`` from its hash fields (absent fields take their defaults).

    A job whose fields cannot be decoded (stored by an older, laxer version, or damaged)
    comes back as a ``failed`` job of function ``<undecodable>`` whose error says why, so
    that one bad job never breaks reads of the others.
    """
    try:
        return _decode(job_id, queue, fields)
    except (KeyError, ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        return Job(
            function="<undecodable>",
            queue=queue,
            id=job_id,
            status=Status.FAILED,
            error=ErrorInfo("Undecodable", f"stored job cannot be decoded: {exc!r}"[:1000]),
        )


def _decode(job_id: str, queue: str, fields: dict[bytes, bytes]) -> Job:
    get = fields.get
    timeout, key, result, error = get(b"timeout"), get(b"key"), get(b"result"), get(b"error")
    worker, lease, backoff, meta = (
        get(b"worker"),
        get(b"lease"),
        get(b"retry_backoff"),
        get(b"meta"),
    )
    return Job(
        function=fields[b"function"].decode(),
        kwargs=orjson.loads(fields[b"kwargs"]),
        queue=queue,
        id=job_id,
        key=key.decode() if key is not None else None,
        status=Status(fields[b"status"].decode()),
        priority=int(get(b"priority", 0)),
        timeout=float(timeout) if timeout is not None else None,
        heartbeat=float(get(b"heartbeat", 0)),
        retries=int(get(b"retries", 0)),
        attempts=int(get(b"attempts", 0)),
        ttl=int(get(b"ttl", _DEFAULT_TTL)),
        scheduled=float(get(b"scheduled", 0)),
        retry_delay=float(get(b"retry_delay", 0)),
        retry_backoff=orjson.loads(backoff) if backoff is not None else False,
        progress=float(get(b"progress", 0)),
        meta=orjson.loads(meta) if meta is not None else {},
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
