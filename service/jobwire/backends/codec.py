"""Encodings shared by the stores: a job's error as JSON, and Job <-> table row for the SQL
stores (PostgreSQL and SQLite use one column set)."""

from typing import Any, Protocol

import orjson

from jobwire.job import ErrorInfo, Job, Status


def error_json(error: ErrorInfo) -> bytes:
    """Serialize an ``ErrorInfo``."""
    return orjson.dumps(
        {"type": error.type, "message": error.message, "traceback": error.traceback}
    )


class Row(Protocol):
    """A result row readable by column name (asyncpg.Record, sqlite3.Row, a dict)."""

    def __getitem__(self, column: str) -> Any: ...


def job_from_row(row: Row, queue: str) -> Job:
    """Build a ``Job`` of ``queue`` from its ``jobwire_jobs`` row (JSON columns as text)."""
    result, error = row["result"], row["error"]
    return Job(
        function=row["function"],
        kwargs=orjson.loads(row["kwargs"]),
        queue=queue,
        id=row["id"],
        key=row["key"],
        status=Status(row["status"]),
        priority=row["priority"],
        timeout=row["timeout"],
        heartbeat=row["heartbeat"],
        retries=row["retries"],
        attempts=row["attempts"],
        ttl=row["ttl"],
        scheduled=row["scheduled"],
        retry_delay=row["retry_delay"],
        retry_backoff=orjson.loads(row["retry_backoff"]),
        progress=row["progress"],
        meta=orjson.loads(row["meta"]),
        result=orjson.loads(result) if result is not None else None,
        error=ErrorInfo(**orjson.loads(error)) if error is not None else None,
        created=row["created"],
        queued=row["queued"],
        started=row["started"],
        completed=row["completed"],
        touched=row["touched"],
        worker=row["worker"],
        lease=row["lease"],
    )
