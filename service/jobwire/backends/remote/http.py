"""The backend contract over a running Jobwire service's REST API.

``Queue.from_url("http://:TOKEN@host:8080", name=...)`` enqueues, waits, aborts and works
through the service; the worker never sees the store. Expired leases are reclaimed on the
service (periodically, and when a client calls ``sweep``). The token comes from the URL's
password or ``$JOBWIRE_TOKEN``.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from jobwire import errors
from jobwire.backends.base import LeaseState, Outcome
from jobwire.backends.remote.base import (
    BATCH,
    BULK_TIMEOUT_S,
    RemoteBackend,
    bearer_token,
    bracketed_host,
    error_for,
)
from jobwire.flow import BulkAction, JobFilter, QueueSettings
from jobwire.job import DEFAULT_LEASE_S, ErrorInfo, Job, Status


class HttpBackend(RemoteBackend):
    """A queue served by a Jobwire service.

    Args:
        url: ``http(s)://[:token@]host:port``.
        queue_name: The queue.
        lease_s: Lease length the service gives this worker's jobs without a heartbeat.
        session: Share another backend's HTTP connection pool.
    """

    def __init__(
        self,
        url: str,
        queue_name: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        session: "_Session | None" = None,
    ) -> None:
        super().__init__(queue_name, lease_s=lease_s)
        self.url = url
        self._owns_session = session is None
        self._session = session or _Session(url)

    def for_queue(self, queue_name: str) -> "HttpBackend":
        return HttpBackend(self.url, queue_name, lease_s=self.lease_s, session=self._session)

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        timeout_s: float | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One request; the service's error body becomes the matching JobwireError."""
        session = await self._session.get()
        body = orjson.dumps(json) if json is not None else None  # orjson: fast, exact floats
        timeout = aiohttp.ClientTimeout(total=timeout_s + 10 if timeout_s is not None else 30.0)
        for attempt in (1, 2):
            try:
                async with session.request(
                    method,
                    self._session.base + path,
                    data=body,
                    params=params,
                    timeout=timeout,
                    headers=_JSON if body else None,
                ) as response:
                    content = await response.read()
                    break
            except aiohttp.ServerDisconnectedError:
                # The service closed an idle connection as the request went out on it:
                # a read is retried once, on a fresh connection.
                if attempt == 2 or method not in _SAFE_METHODS:
                    raise
        if response.status < 300:
            return orjson.loads(content) if content else None
        raise _error_from(response.status, content)

    def _job_path(self, job_id: str, action: str = "") -> str:
        return f"/v1/jobs/{job_id}{action}"

    @property
    def _hint(self) -> dict[str, str]:
        return {"queue": self.queue_name}

    async def enqueue(self, jobs: Sequence[Job]) -> list[tuple[Job, bool]]:
        pairs: list[tuple[Job, bool]] = []
        for start in range(0, len(jobs), BATCH):
            body = {"jobs": [_request_for(job) for job in jobs[start : start + BATCH]]}
            reply = await self._call("POST", f"/v1/queues/{self.queue_name}/jobs/batch", json=body)
            pairs += [(Job.from_dict(data), not data["duplicate"]) for data in reply["jobs"]]
        return pairs

    async def get(self, job_id: str) -> Job | None:
        with contextlib.suppress(errors.JobNotFound):
            return Job.from_dict(await self._call("GET", self._job_path(job_id), params=self._hint))
        return None

    async def find_job(self, job_id: str) -> Job | None:
        with contextlib.suppress(errors.JobNotFound):
            return Job.from_dict(await self._call("GET", self._job_path(job_id)))
        return None

    async def list_jobs(self, status: Status | None, limit: int) -> list[Job]:
        params: dict[str, Any] = {"limit": min(limit, BATCH)}
        if status is not None:
            params["status"] = status.value
        reply = await self._call("GET", f"/v1/queues/{self.queue_name}/jobs", params=params)
        return [Job.from_dict(data) for data in reply["jobs"]]

    async def counts(self) -> dict[Status, int]:
        info = await self._call("GET", f"/v1/queues/{self.queue_name}")
        return {Status(name): count for name, count in info["counts"].items()}

    async def workers(self) -> list[dict[str, Any]]:
        info = await self._call("GET", f"/v1/queues/{self.queue_name}")
        return list(info["workers"])

    async def throughput(self, window_s: float) -> float:
        info = await self._call("GET", f"/v1/queues/{self.queue_name}")
        return float(info["finished_per_s"])  # over the service's window (five minutes)

    async def queues(self) -> list[str]:
        reply = await self._call("GET", "/v1/queues")
        return [queue["name"] for queue in reply["queues"]]

    async def abort(self, job_id: str, error: ErrorInfo) -> Job | None:
        with contextlib.suppress(errors.JobNotFound):
            data = await self._call(
                "POST",
                self._job_path(job_id, "/abort"),
                params=self._hint,
                json={"error": error.message},
            )
            return Job.from_dict(data)
        return None

    async def retry(self, job_id: str) -> Job | None:
        with contextlib.suppress(errors.JobNotFound):
            data = await self._call("POST", self._job_path(job_id, "/retry"), params=self._hint)
            return Job.from_dict(data)
        return None

    async def delete(self, job_id: str) -> bool:
        with contextlib.suppress(errors.JobNotFound):
            await self._call("DELETE", self._job_path(job_id), params=self._hint)
            return True
        return False

    @property
    def _queue_path(self) -> str:
        return f"/v1/queues/{self.queue_name}"

    async def queue_settings(self) -> tuple[QueueSettings, bool]:
        reply = await self._call("GET", f"{self._queue_path}/settings")
        return QueueSettings.from_dict(reply["settings"]), bool(reply["paused"])

    async def put_settings(self, settings: QueueSettings) -> None:
        await self._call("PUT", f"{self._queue_path}/settings", json=settings.to_dict())

    async def set_paused(self, paused: bool) -> None:
        await self._call("POST", f"{self._queue_path}/{'pause' if paused else 'resume'}")

    async def bulk_all(self, action: BulkAction, where: JobFilter) -> int:
        path = f"{self._queue_path}/jobs/{action.value}"
        reply = await self._call("POST", path, json=where.to_dict(), timeout_s=BULK_TIMEOUT_S)
        return int(reply["count"])

    async def lease_or_wait(
        self, worker_id: str, max_jobs: int, wait_s: float, stop: asyncio.Event | None = None
    ) -> tuple[list[Job], float | None]:
        """One long poll held by the service (a stop takes effect when it answers: jobs
        leased meanwhile must not be dropped on the floor)."""
        functions, details = self.worker_info(worker_id)
        body = {
            "worker_id": worker_id,
            "functions": functions,
            "worker": details or None,
            "max": min(max_jobs, BATCH),
            "wait": wait_s,
            "lease_s": self.lease_s,
        }
        reply = await self._call(
            "POST", f"/v1/queues/{self.queue_name}/leases", json=body, timeout_s=wait_s
        )
        return [Job.from_dict(data) for data in reply["jobs"]], reply["next_due_s"]

    async def renew(self, leases: Sequence[tuple[str, str]]) -> list[LeaseState]:
        if not leases:
            return []
        body = {
            "leases": [{"job_id": i, "lease": token} for i, token in leases],
            "lease_s": self.lease_s,
        }
        reply = await self._call("POST", f"/v1/queues/{self.queue_name}/leases/renew", json=body)
        return list(reply["states"])

    async def update(
        self, job_id: str, lease: str, progress: float | None, meta: dict[str, Any] | None
    ) -> bool:
        body = {"lease": lease, "progress": progress, "meta": meta}
        try:
            await self._call(
                "POST", self._job_path(job_id, "/heartbeat"), params=self._hint, json=body
            )
        except (errors.StaleLease, errors.JobNotFound):
            return False
        return True

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        body = {"outcomes": [_outcome_body(o) for o in outcomes]}
        reply = await self._call("POST", f"/v1/queues/{self.queue_name}/leases/settle", json=body)
        return list(reply["settled"])

    async def sweep(self, limit: int) -> int:
        reply = await self._call("POST", f"/v1/queues/{self.queue_name}/sweep")
        return int(reply["reclaimed"])

    async def poll_finished(self, job_id: str, wait_s: float) -> Job | None:
        params = {**self._hint, "wait": wait_s}
        with contextlib.suppress(errors.JobNotFound):
            data = await self._call("GET", self._job_path(job_id), params=params, timeout_s=wait_s)
            return Job.from_dict(data)
        return None

    async def watch(self, job_id: str) -> AsyncGenerator[Job | None, None]:
        session = await self._session.get()
        url = self._session.base + self._job_path(job_id, "/events")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with session.get(url, params=self._hint, timeout=timeout) as response:
            if response.status >= 300:
                raise _error_from(response.status, await response.read())
            async for line in response.content:
                if line.startswith(b"data:"):
                    data = orjson.loads(line[5:])
                    yield Job.from_dict(data) if "function" in data else None


_JSON = {"content-type": "application/json"}
_SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE"})
# Below the service's keep-alive (uvicorn's 5 s): a reused connection is never one the
# service is closing.
IDLE_KEEPALIVE_S = 3.0


class _Session:
    """One aiohttp session (connection pool), opened on first use inside the loop."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        netloc = bracketed_host(parts) + (f":{parts.port}" if parts.port else "")
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        token = bearer_token(parts)
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Idle connections are dropped before the service closes them (after 5 s).
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=IDLE_KEEPALIVE_S)
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_from(status: int, content: bytes) -> errors.JobwireError:
    try:
        error = orjson.loads(content)["error"]
        code, message = error["code"], error["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code, message = "internal", content[:500].decode(errors="replace")
    return error_for(code, f"{message} (HTTP {status})") or errors.JobwireError(
        f"{message} (HTTP {status})"
    )


def _request_for(job: Job) -> dict[str, Any]:
    body = {name: getattr(job, name) for name in _OPTION_FIELDS}
    return {name: value for name, value in body.items() if value is not None}


_OPTION_FIELDS = ("function", "kwargs", "id", "key", "concurrency_key", "timeout", "retries",
                  "ttl", "heartbeat", "scheduled", "retry_delay", "retry_backoff",
                  "priority")  # fmt: skip


def _outcome_body(outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {"job_id": outcome.job_id, "lease": outcome.lease,
                            "status": outcome.status.value, "delay_s": outcome.delay_s}  # fmt: skip
    if outcome.function:
        body["function"] = outcome.function
    if outcome.status == Status.COMPLETE:
        body["result"] = outcome.result
    if outcome.error is not None:
        body["error"] = {"type": outcome.error.type, "message": outcome.error.message,
                         "traceback": outcome.error.traceback}  # fmt: skip
    if outcome.run_s is not None:
        body["run_s"] = outcome.run_s
    return body
