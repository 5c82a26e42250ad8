"""Helpers shared by the REST service tests: requests, error checks, extra processes."""

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any
from uuid import uuid4

import httpx
from service_fixtures import free_port

JOB_FIELDS = frozenset(
    {
        "id", "queue", "function", "kwargs", "key", "status", "priority", "timeout",
        "heartbeat", "retries", "attempts", "ttl", "scheduled", "retry_delay",
        "retry_backoff", "progress", "meta", "result", "error", "created", "queued",
        "started", "completed", "touched", "worker",
    }
)  # fmt: skip
FINISHED = frozenset({"complete", "failed", "aborted"})
_TLS = ssl.create_default_context()  # built once: httpx would load the CA bundle per client


def http_client(base_url: str, **headers: str) -> httpx.AsyncClient:
    """An async HTTP client on ``base_url`` (cheap to create: the TLS context is shared)."""
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, verify=_TLS)


def unique_name(prefix: str = "s") -> str:
    """A queue name (or key) no other test uses."""
    return f"{prefix}-{uuid4().hex[:12]}"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Check a response is the JSON error shape with this status (and code).

    Returns:
        The ``error`` object.
    """
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return dict(error)


def assert_job(body: dict[str, Any]) -> None:
    """Check a response body carries every public job field."""
    missing = JOB_FIELDS - set(body)
    assert not missing, f"job body lacks {sorted(missing)}: {body}"


async def enqueue(client: httpx.AsyncClient, queue: str, **fields: Any) -> dict[str, Any]:
    """Enqueue one job (``function`` defaults to ``"f"``) and return its body (201 asserted)."""
    fields.setdefault("function", "f")
    response = await client.post(f"/v1/queues/{queue}/jobs", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def lease(
    client: httpx.AsyncClient,
    queue: str,
    *,
    max_jobs: int = 1,
    wait: float = 0,
    worker_id: str = "test-worker",
) -> list[dict[str, Any]]:
    """Lease up to ``max_jobs`` jobs (200 asserted); each has its ``lease`` token."""
    body = {"worker_id": worker_id, "max": max_jobs, "wait": wait}
    response = await client.post(f"/v1/queues/{queue}/leases", json=body, timeout=wait + 10)
    assert response.status_code == 200, response.text
    return list(response.json()["jobs"])


async def get_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """The job's body (200 asserted)."""
    response = await client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def wait_for_status(
    client: httpx.AsyncClient, job_id: str, *statuses: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``; return it.

    Raises:
        AssertionError: It did not get there in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        job = await get_job(client, job_id)
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']}, wanted {statuses}")
        await asyncio.sleep(0.05)


def serve_command(*args: str) -> list[str]:
    """The argv of ``jobwire serve`` run by this interpreter, with no gRPC server (so that
    services started side by side don't race for the default port 50051)."""
    return [sys.executable, "-m", "jobwire.cli", "serve", "--grpc-port", "0", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ``JOBWIRE_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
    return {**env, **extra}


def spawn_service(
    backend_url: str, *args: str, env: dict[str, str] | None = None, deadline_s: float = 20.0
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start ``jobwire serve`` and wait only for /healthz (not /readyz).

    Returns:
        The process, its base URL and its log file's path.

    Raises:
        RuntimeError: It exited or did not answer in time (the log is in the message).
    """
    port = free_port()
    fd, log_path = tempfile.mkstemp(prefix="jobwire-serve-", suffix=".log")
    command = serve_command("--http-port", str(port), *args)
    full_env = {**clean_env(JOBWIRE_BACKEND=backend_url), **(env or {})}
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    stop_at = time.monotonic() + deadline_s
    while time.monotonic() < stop_at and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    kill(proc)
    raise RuntimeError(f"jobwire serve did not answer /healthz:\n{read_log(log_path)}")


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a process (if still running) and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def read_log(path: str) -> str:
    """A log file's text."""
    with open(path, encoding="utf-8", errors="replace") as log:
        return log.read()


def closed_port() -> int:
    """A local TCP port nothing listens on (free a moment ago)."""
    return free_port()
