"""Job <-> Redis hash fields, and a queue's limits <-> the fields its Lua scripts read.
Everything is stored as text; JSON for user data."""

from typing import Any

import orjson

from jobwire.flow import JobFilter, QueueSettings, Rate
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
        ("concurrency_key", job.concurrency_key),
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
    concurrency_key = get(b"concurrency_key")
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
        concurrency_key=concurrency_key.decode() if concurrency_key is not None else None,
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


def encode_limits(settings: QueueSettings) -> list[str]:
    """The settings script's arguments (lua/limits.lua reads them back): the settings as
    JSON (``''``: none), the queue's ``limits`` line (``''`` when no limit is set: leases
    take the fast path), then a field and line per function with limits."""
    if not settings.limited:
        return ["", ""]
    fields: list[str] = []
    functions = 0  # 0 no function limits, 1 rates only, 2 some max_active
    for name, limits in settings.functions.items():
        if limits.max_active is None and limits.rate is None:
            continue
        functions = max(functions, 2 if limits.max_active is not None else 1)
        fields += [f"fn:{name}", _line(limits.max_active, *_rate(limits.rate))]
    numbers = [
        settings.max_active or 0,
        settings.max_active_per_key or 0,
        *_rate(settings.rate),
        *_rate(settings.rate_per_key),
        functions,
    ]
    queue = _line(*numbers) if any(numbers) else ""  # else only functions without limits
    return [settings.to_json(), queue, *fields]


def _rate(rate: Rate | None) -> tuple[int, float]:
    return (rate.limit, float(rate.period_s)) if rate is not None else (0, 0.0)


def _line(*numbers: int | float | None) -> str:
    return " ".join("0" if n is None else repr(n) for n in numbers)


def encode_filter(where: JobFilter) -> list[str]:
    """A bulk filter as lua/bulk.lua takes it: status, function, key prefix, enqueued
    before, enqueued after (``''`` for any)."""
    times = [
        repr(float(t)) if t is not None else ""
        for t in (where.enqueued_before, where.enqueued_after)
    ]
    return [where.status or "", where.function or "", where.key_prefix or "", *times]
