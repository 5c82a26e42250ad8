"""One test-side API over both transports of a `jobwire serve`: REST and gRPC.

``Rest`` speaks the HTTP routes with httpx, ``Grpc`` the raw ``jobwire.v1`` messages.
Both expose the same operations and answer with the same normalized values: jobs as
plain dicts in the REST JSON shape (``Job.to_dict``: the lease token only on leased
jobs), lease states as ``"active"``/``"aborting"``/``"lost"``, and every refusal as one
``TransportError`` carrying Jobwire's error code (REST ``error.code``, gRPC trailing
metadata ``jobwire-error``) and a transport-neutral kind. Queue settings are dicts in the
REST JSON shape (``QueueSettings.to_dict``: unset limits left out, ``functions`` always).

Only what each transport specifies is translated: REST's per-job heartbeat answers a
stale lease with 409 ``stale_lease`` (README), gRPC's Heartbeat with ``LOST`` (proto);
both become ``"lost"`` here. Nothing else is papered over (a flag an answer lacks is
``None``, not a guess), so a drift between the two fails the test that meets it.
"""

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
import httpx
import orjson
import pytest
from google.protobuf import json_format

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 10.0  # a call that hangs fails the test instead of the suite's timeout
DEADLINE_SLACK_S = 0.5  # gRPC waits end shortly (0.2 s) before the call's deadline

JOB_FIELDS = frozenset(
    {
        "id", "queue", "function", "kwargs", "key", "concurrency_key", "status", "priority",
        "timeout",
        "heartbeat", "retries", "attempts", "ttl", "scheduled", "retry_delay",
        "retry_backoff", "progress", "meta", "result", "error", "created", "queued",
        "started", "completed", "touched", "worker",
    }
)  # fmt: skip
FINISHED = frozenset({"complete", "failed", "aborted"})
TRANSPORTS = ("rest", "grpc")
# A Redis database of this suite's own: services that other tests start sweep every
# queue of database 0 in the background, and this suite counts what its sweeps reclaim.
PARITY_DB = 4
TOKENS = {"admin": "par-adm", "worker": "par-wrk", "client": "par-cli"}

# Transport-neutral kinds of refusal, from each side's status.
HTTP_KINDS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    503: "unavailable",
}
GRPC_KINDS = {
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.FAILED_PRECONDITION: "conflict",
    grpc.StatusCode.ABORTED: "conflict",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "too_large",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
}


class TransportError(Exception):
    """A call refused by the service, whatever the transport.

    Attributes:
        kind: Transport-neutral kind (``invalid``, ``not_found``, ``conflict``...).
        code: Jobwire's own error code (``invalid_request``, ``stale_lease``...).
        message: The service's message (REST: with the validation details' fields).
        raw: The transport's own status (HTTP status or gRPC code name).
    """

    def __init__(self, kind: str, code: str | None, message: str, raw: str) -> None:
        super().__init__(f"{raw} {kind}/{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.raw = raw


@dataclasses.dataclass
class Enqueued:
    """An enqueue's answer: the job, and whether it was an existing live one."""

    job: dict[str, Any]
    duplicate: bool | None  # None: the answer does not say


@dataclasses.dataclass
class Page:
    """A page of jobs and the cursor/page token of the next (``None`` on the last)."""

    jobs: list[dict[str, Any]]
    next: str | None


@dataclasses.dataclass
class Leased:
    """A lease's answer: the jobs (each with ``lease``) and seconds to the next due."""

    jobs: list[dict[str, Any]]
    next_due_s: float | None


class Transport(Protocol):
    """Every operation of the service, through one transport."""

    name: str

    async def enqueue(self, queue: str, spec: dict[str, Any]) -> Enqueued:
        """Enqueue one job (``spec`` in the REST body shape)."""
        ...

    async def enqueue_batch(self, queue: str, specs: list[dict[str, Any]]) -> list[Enqueued]:
        """Enqueue many jobs; answers in order."""
        ...

    async def apply(self, queue: str, spec: dict[str, Any], wait_s: float) -> Enqueued:
        """Enqueue and wait up to ``wait_s`` for the end: the job as it is then, and
        whether it is an existing one that had the key (``None``: not said)."""
        ...

    async def get(self, job_id: str, queue: str | None = None, wait_s: float = 0) -> dict[str, Any]:
        """One job; with ``wait_s`` long-poll until it finishes."""
        ...

    def watch(self, job_id: str, queue: str | None = None) -> AsyncIterator[dict[str, Any] | None]:
        """The job now and at each change until it finishes (``None``: deleted)."""
        ...

    async def abort(
        self, job_id: str, reason: str | None = None, queue: str | None = None
    ) -> dict[str, Any]:
        """Abort a job."""
        ...

    async def retry(self, job_id: str, queue: str | None = None) -> dict[str, Any]:
        """Queue a finished job again."""
        ...

    async def delete(self, job_id: str, queue: str | None = None) -> None:
        """Delete a job."""
        ...

    async def list_jobs(
        self,
        queue: str,
        status: str | None = None,
        function: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        key_prefix: str | None = None,
    ) -> Page:
        """A page of a queue's jobs."""
        ...

    async def list_queues(self) -> dict[str, dict[str, int]]:
        """Every queue's counts, by name."""
        ...

    async def queue_info(self, queue: str) -> dict[str, Any]:
        """A queue's name, counts, workers (each a flat dict), finished_per_s, paused and
        settings."""
        ...

    async def pause(self, queue: str) -> dict[str, Any]:
        """Pause a queue: ``{"queue", "paused"}``."""
        ...

    async def resume(self, queue: str) -> dict[str, Any]:
        """Resume a queue: ``{"queue", "paused"}``."""
        ...

    async def get_settings(self, queue: str) -> dict[str, Any]:
        """A queue's ``{"queue", "paused", "settings"}``."""
        ...

    async def put_settings(self, queue: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Replace a queue's limits (REST body shape); answers as ``get_settings``."""
        ...

    async def bulk(self, queue: str, action: str, where: dict[str, Any] | None = None) -> int:
        """Retry, delete or abort every job ``where`` (REST body shape) matches: how many."""
        ...

    async def lease(
        self,
        queue: str,
        worker_id: str,
        max_jobs: int = 1,
        wait_s: float = 0,
        functions: tuple[str, ...] = (),
        lease_s: float | None = None,
    ) -> Leased:
        """Take up to ``max_jobs`` due jobs."""
        ...

    async def heartbeat(
        self,
        queue: str,
        job_id: str,
        lease: str,
        progress: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Renew one lease (storing progress/meta): ``active``, ``aborting`` or ``lost``."""
        ...

    async def renew(self, queue: str, leases: list[tuple[str, str]]) -> list[str]:
        """Renew many leases at once; one state per lease."""
        ...

    async def complete(self, queue: str, job_id: str, lease: str, result: Any) -> dict[str, Any]:
        """Report success."""
        ...

    async def fail(
        self, queue: str, job_id: str, lease: str, error: dict[str, str], retry: bool = True
    ) -> dict[str, Any]:
        """Report failure (retried if ``retry`` and it has retries left)."""
        ...

    async def settle(self, queue: str, outcomes: list[dict[str, Any]]) -> list[bool]:
        """Report many outcomes (REST body shape); ``False`` where a lease was stale."""
        ...

    async def sweep(self, queue: str) -> int:
        """Reclaim the queue's jobs whose lease expired; how many."""
        ...


# --- REST --------------------------------------------------------------------------------


class Rest:
    """The HTTP API through httpx.

    Args:
        http: A client whose base URL is the service (and with its token, if any).
    """

    name = "rest"

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = await self.http.request(method, path, json=body, params=query)
        if response.status_code in ok:
            return response
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(
                f"{method} {path}: {response.status_code} without the error shape: "
                f"{response.text!r}"
            ) from None
        message = error.get("message", "")
        if error.get("details"):
            message += " | " + "; ".join(f"{d['field']}: {d['message']}" for d in error["details"])
        kind = HTTP_KINDS.get(response.status_code, f"http_{response.status_code}")
        raise TransportError(kind, error.get("code"), message, str(response.status_code))

    async def enqueue(self, queue: str, spec: dict[str, Any]) -> Enqueued:
        response = await self._call("POST", f"/v1/queues/{queue}/jobs", spec, ok=(200, 201))
        body = response.json()
        duplicate = body.pop("duplicate")
        assert response.status_code == (200 if duplicate else 201), (response.status_code, body)
        return Enqueued(body, duplicate)

    async def enqueue_batch(self, queue: str, specs: list[dict[str, Any]]) -> list[Enqueued]:
        response = await self._call("POST", f"/v1/queues/{queue}/jobs/batch", {"jobs": specs})
        answers = []
        for body in response.json()["jobs"]:
            duplicate = body.pop("duplicate")
            answers.append(Enqueued(body, duplicate))
        return answers

    async def apply(self, queue: str, spec: dict[str, Any], wait_s: float) -> Enqueued:
        response = await self._call(
            "POST", f"/v1/queues/{queue}/jobs/apply", spec, {"wait": wait_s}, ok=(200, 202)
        )
        job: dict[str, Any] = response.json()
        finished = job["status"] in FINISHED
        assert response.status_code == (200 if finished else 202), (response.status_code, job)
        return Enqueued(job, job.pop("duplicate", None))

    async def get(self, job_id: str, queue: str | None = None, wait_s: float = 0) -> dict[str, Any]:
        params = {"queue": queue, "wait": wait_s or None}
        response = await self._call("GET", f"/v1/jobs/{job_id}", params=params)
        return response.json()  # type: ignore[no-any-return]

    async def watch(
        self, job_id: str, queue: str | None = None
    ) -> AsyncIterator[dict[str, Any] | None]:
        params = {"queue": queue} if queue else {}
        async with self.http.stream("GET", f"/v1/jobs/{job_id}/events", params=params) as response:
            if response.status_code != 200:
                await response.aread()
                error = response.json()["error"]
                kind = HTTP_KINDS.get(response.status_code, f"http_{response.status_code}")
                raise TransportError(
                    kind, error["code"], error["message"], str(response.status_code)
                )
            event, data = "message", []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    if event == "deleted":
                        yield None
                        return
                    job = orjson.loads("\n".join(data))
                    yield job
                    if job["status"] in FINISHED:
                        return
                    event, data = "message", []

    async def abort(
        self, job_id: str, reason: str | None = None, queue: str | None = None
    ) -> dict[str, Any]:
        body = {"error": reason} if reason is not None else None
        response = await self._call("POST", f"/v1/jobs/{job_id}/abort", body, {"queue": queue})
        return response.json()  # type: ignore[no-any-return]

    async def retry(self, job_id: str, queue: str | None = None) -> dict[str, Any]:
        response = await self._call("POST", f"/v1/jobs/{job_id}/retry", params={"queue": queue})
        return response.json()  # type: ignore[no-any-return]

    async def delete(self, job_id: str, queue: str | None = None) -> None:
        await self._call("DELETE", f"/v1/jobs/{job_id}", params={"queue": queue}, ok=(204,))

    async def list_jobs(
        self,
        queue: str,
        status: str | None = None,
        function: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        key_prefix: str | None = None,
    ) -> Page:
        params = {"status": status, "function": function, "limit": page_size, "cursor": page_token,
                  "key_prefix": key_prefix}  # fmt: skip
        body = (await self._call("GET", f"/v1/queues/{queue}/jobs", params=params)).json()
        return Page(body["jobs"], body["next_cursor"])

    async def list_queues(self) -> dict[str, dict[str, int]]:
        body = (await self._call("GET", "/v1/queues")).json()
        return {q["name"]: q["counts"] for q in body["queues"]}

    async def queue_info(self, queue: str) -> dict[str, Any]:
        body = (await self._call("GET", f"/v1/queues/{queue}")).json()
        # The proto's QueueInfo has no top-level "scheduled" (it is counts["scheduled"]).
        assert body["scheduled"] == body["counts"]["scheduled"], body
        fields = ("name", "counts", "workers", "finished_per_s", "paused", "settings")
        return {k: body[k] for k in fields}

    async def pause(self, queue: str) -> dict[str, Any]:
        return (await self._call("POST", f"/v1/queues/{queue}/pause")).json()  # type: ignore[no-any-return]

    async def resume(self, queue: str) -> dict[str, Any]:
        return (await self._call("POST", f"/v1/queues/{queue}/resume")).json()  # type: ignore[no-any-return]

    async def get_settings(self, queue: str) -> dict[str, Any]:
        return (await self._call("GET", f"/v1/queues/{queue}/settings")).json()  # type: ignore[no-any-return]

    async def put_settings(self, queue: str, settings: dict[str, Any]) -> dict[str, Any]:
        response = await self._call("PUT", f"/v1/queues/{queue}/settings", settings)
        return response.json()  # type: ignore[no-any-return]

    async def bulk(self, queue: str, action: str, where: dict[str, Any] | None = None) -> int:
        response = await self._call("POST", f"/v1/queues/{queue}/jobs/{action}", where)
        return response.json()["count"]  # type: ignore[no-any-return]

    async def lease(
        self,
        queue: str,
        worker_id: str,
        max_jobs: int = 1,
        wait_s: float = 0,
        functions: tuple[str, ...] = (),
        lease_s: float | None = None,
    ) -> Leased:
        body: dict[str, Any] = {"worker_id": worker_id, "max": max_jobs, "wait": wait_s}
        body["functions"] = list(functions)
        if lease_s is not None:
            body["lease_s"] = lease_s
        reply = (await self._call("POST", f"/v1/queues/{queue}/leases", body)).json()
        return Leased(reply["jobs"], reply["next_due_s"])

    async def heartbeat(
        self,
        queue: str,
        job_id: str,
        lease: str,
        progress: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {"lease": lease}
        if progress is not None:
            body["progress"] = progress
        if meta is not None:
            body["meta"] = meta
        try:
            response = await self._call(
                "POST", f"/v1/jobs/{job_id}/heartbeat", body, {"queue": queue}
            )
        except TransportError as exc:
            if exc.kind == "conflict" and exc.code == "stale_lease":  # as the README says
                return "lost"
            raise
        reply = response.json()
        assert reply["aborted"] == (reply["status"] == "aborting"), reply
        return reply["status"]  # type: ignore[no-any-return]

    async def renew(self, queue: str, leases: list[tuple[str, str]]) -> list[str]:
        refs = [{"job_id": job_id, "lease": lease} for job_id, lease in leases]
        reply = await self._call("POST", f"/v1/queues/{queue}/leases/renew", {"leases": refs})
        return reply.json()["states"]  # type: ignore[no-any-return]

    async def complete(self, queue: str, job_id: str, lease: str, result: Any) -> dict[str, Any]:
        body = {"lease": lease, "result": result}
        response = await self._call("POST", f"/v1/jobs/{job_id}/complete", body, {"queue": queue})
        return response.json()  # type: ignore[no-any-return]

    async def fail(
        self, queue: str, job_id: str, lease: str, error: dict[str, str], retry: bool = True
    ) -> dict[str, Any]:
        body = {"lease": lease, "error": error, "retryable": retry}
        response = await self._call("POST", f"/v1/jobs/{job_id}/fail", body, {"queue": queue})
        return response.json()  # type: ignore[no-any-return]

    async def settle(self, queue: str, outcomes: list[dict[str, Any]]) -> list[bool]:
        reply = await self._call(
            "POST", f"/v1/queues/{queue}/leases/settle", {"outcomes": outcomes}
        )
        return reply.json()["settled"]  # type: ignore[no-any-return]

    async def sweep(self, queue: str) -> int:
        return (await self._call("POST", f"/v1/queues/{queue}/sweep")).json()["reclaimed"]  # type: ignore[no-any-return]


# --- gRPC --------------------------------------------------------------------------------


def status_name(number: int) -> str:
    """``STATUS_QUEUED`` -> ``queued``."""
    return pb.Status.Name(number).removeprefix("STATUS_").lower()


def status_label(name: str) -> str:
    """``queued`` -> ``STATUS_QUEUED`` (a label the messages take for the number)."""
    pb.Status.Value("STATUS_" + name.upper())  # raises on a status the proto does not have
    return "STATUS_" + name.upper()


def lease_state_name(number: int) -> str:
    """``LEASE_STATE_ACTIVE`` -> ``active``."""
    return pb.LeaseState.Name(number).removeprefix("LEASE_STATE_").lower()


def _loads(text: str, empty: Any = None) -> Any:
    return orjson.loads(text) if text else empty


def job_dict(message: pb.Job) -> dict[str, Any]:
    """A ``jobwire.v1.Job`` in the REST JSON shape (``lease`` only when it carries one)."""
    cap = message.retry_backoff_cap
    job: dict[str, Any] = {
        "id": message.id,
        "queue": message.queue,
        "function": message.function,
        "kwargs": _loads(message.kwargs_json, {}),
        "key": message.key if message.HasField("key") else None,
        "concurrency_key": (
            message.concurrency_key if message.HasField("concurrency_key") else None
        ),
        "status": status_name(message.status),
        "priority": message.priority,
        "timeout": message.timeout if message.HasField("timeout") else None,
        "heartbeat": message.heartbeat,
        "retries": message.retries,
        "attempts": message.attempts,
        "ttl": message.ttl,
        "scheduled": message.scheduled,
        "retry_delay": message.retry_delay,
        "retry_backoff": cap if cap > 0 else message.retry_backoff,
        "progress": message.progress,
        "meta": _loads(message.meta_json, {}),
        "result": _loads(message.result_json),
        "error": (
            {
                "type": message.error.type,
                "message": message.error.message,
                "traceback": message.error.traceback,
            }
            if message.HasField("error")
            else None
        ),
        "created": message.created,
        "queued": message.queued,
        "started": message.started,
        "completed": message.completed,
        "touched": message.touched,
        "worker": message.worker if message.HasField("worker") else None,
    }
    if message.lease:
        job["lease"] = message.lease
    return job


def settings_dict(message: pb.QueueSettings) -> dict[str, Any]:
    """A ``jobwire.v1.QueueSettings`` in the REST JSON shape."""

    def rate(r: pb.Rate) -> dict[str, Any]:
        return {"limit": r.limit, "period_s": r.period_s if r.HasField("period_s") else 1.0}

    def limits(f: pb.FunctionLimits) -> dict[str, Any]:
        found = {"max_active": f.max_active} if f.HasField("max_active") else {}
        return found | ({"rate": rate(f.rate)} if f.HasField("rate") else {})

    data: dict[str, Any] = {}
    for name in ("max_active", "max_active_per_key"):
        if message.HasField(name):
            data[name] = getattr(message, name)
    for name in ("rate", "rate_per_key"):
        if message.HasField(name):
            data[name] = rate(getattr(message, name))
    data["functions"] = {name: limits(f) for name, f in message.functions.items()}
    return data


def settings_message(body: dict[str, Any]) -> pb.QueueSettings:
    """A REST settings body as a ``QueueSettings`` message (nulls: unset)."""

    def unset_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: unset_nulls(v) for k, v in value.items() if v is not None}
        return value

    return json_format.ParseDict(unset_nulls(body), pb.QueueSettings())


def filter_message(where: dict[str, Any]) -> pb.JobFilter:
    """A REST bulk filter as a ``JobFilter`` message."""
    fields = dict(where)
    if fields.get("status"):
        fields["status"] = status_label(fields["status"])
    return json_format.ParseDict(fields, pb.JobFilter())


def job_spec(spec: dict[str, Any]) -> pb.JobSpec:
    """A REST enqueue body as a ``JobSpec`` (``kwargs`` as JSON text, whatever it is)."""
    fields = dict(spec)
    message = pb.JobSpec(function=fields.pop("function", ""))
    if "kwargs" in fields:
        message.kwargs_json = orjson.dumps(fields.pop("kwargs")).decode()
    backoff = fields.pop("retry_backoff", False)
    if isinstance(backoff, bool):
        message.retry_backoff = backoff
    else:
        message.retry_backoff_cap = float(backoff)
    for name, value in fields.items():
        if value is not None:
            setattr(message, name, value)
    return message


def _translate(exc: grpc.aio.AioRpcError) -> TransportError:
    code = exc.code()
    jobwire_code = dict(exc.trailing_metadata() or ()).get("jobwire-error")
    kind = GRPC_KINDS.get(code, code.name.lower())
    return TransportError(kind, jobwire_code, exc.details() or "", code.name)


class Grpc:
    """The gRPC API through the generated stubs, raw messages.

    Args:
        channel: A channel to the service.
        token: The bearer token to send, if any.
    """

    name = "grpc"

    def __init__(self, channel: grpc.aio.Channel, token: str | None = None) -> None:
        self.jobs = pb_grpc.JobServiceStub(channel)
        self.queues = pb_grpc.QueueServiceStub(channel)
        self.work = pb_grpc.WorkerServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    async def _call(self, method: Any, request: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        try:
            return await method(request, metadata=self.metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None

    async def enqueue(self, queue: str, spec: dict[str, Any]) -> Enqueued:
        request = pb.EnqueueRequest(queue=queue, job=job_spec(spec))
        reply = await self._call(self.jobs.Enqueue, request)
        return Enqueued(job_dict(reply.job), reply.duplicate)

    async def enqueue_batch(self, queue: str, specs: list[dict[str, Any]]) -> list[Enqueued]:
        request = pb.EnqueueBatchRequest(queue=queue, jobs=[job_spec(s) for s in specs])
        reply = await self._call(self.jobs.EnqueueBatch, request)
        return [Enqueued(job_dict(r.job), r.duplicate) for r in reply.jobs]

    async def apply(self, queue: str, spec: dict[str, Any], wait_s: float) -> Enqueued:
        # The proto's Apply waits until shortly before the call's deadline.
        request = pb.ApplyRequest(queue=queue, job=job_spec(spec))
        reply = await self._call(self.jobs.Apply, request, timeout=wait_s + DEADLINE_SLACK_S)
        return Enqueued(job_dict(reply.job), reply.duplicate)

    async def get(self, job_id: str, queue: str | None = None, wait_s: float = 0) -> dict[str, Any]:
        request = pb.GetJobRequest(job_id=job_id, queue=queue or "", wait_s=wait_s)
        return job_dict(await self._call(self.jobs.GetJob, request, wait_s + CALL_TIMEOUT_S))

    async def watch(
        self, job_id: str, queue: str | None = None
    ) -> AsyncIterator[dict[str, Any] | None]:
        request = pb.WatchJobRequest(job_id=job_id, queue=queue or "")
        call = self.jobs.WatchJob(request, metadata=self.metadata)
        seen = False
        try:
            async for message in call:
                seen = True
                job = job_dict(message)
                yield job
                if job["status"] in FINISHED:
                    return
        except grpc.aio.AioRpcError as exc:
            error = _translate(exc)
            if seen and error.kind == "not_found":  # the proto: deleted while watched
                yield None
                return
            raise error from None
        finally:
            call.cancel()

    async def abort(
        self, job_id: str, reason: str | None = None, queue: str | None = None
    ) -> dict[str, Any]:
        request = pb.AbortJobRequest(job_id=job_id, queue=queue or "", reason=reason or "")
        return job_dict(await self._call(self.jobs.AbortJob, request))

    async def retry(self, job_id: str, queue: str | None = None) -> dict[str, Any]:
        request = pb.RetryJobRequest(job_id=job_id, queue=queue or "")
        return job_dict(await self._call(self.jobs.RetryJob, request))

    async def delete(self, job_id: str, queue: str | None = None) -> None:
        await self._call(self.jobs.DeleteJob, pb.DeleteJobRequest(job_id=job_id, queue=queue or ""))

    async def list_jobs(
        self,
        queue: str,
        status: str | None = None,
        function: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        key_prefix: str | None = None,
    ) -> Page:
        request = pb.ListJobsRequest(
            queue=queue,
            status=status_label(status) if status else pb.STATUS_UNSPECIFIED,
            function=function or "",
            page_size=page_size or 0,
            page_token=page_token or "",
            key_prefix=key_prefix or "",
        )
        reply = await self._call(self.jobs.ListJobs, request)
        return Page([job_dict(j) for j in reply.jobs], reply.next_page_token or None)

    async def list_queues(self) -> dict[str, dict[str, int]]:
        reply = await self._call(self.jobs.ListQueues, pb.ListQueuesRequest())
        return {q.name: dict(q.counts) for q in reply.queues}

    async def queue_info(self, queue: str) -> dict[str, Any]:
        info = await self._call(self.jobs.GetQueue, pb.GetQueueRequest(queue=queue))
        return {
            "name": info.name,
            "counts": dict(info.counts),
            "workers": [
                {**_loads(w.info_json, {}), "id": w.id, "seen": w.seen} for w in info.workers
            ],
            "finished_per_s": info.finished_per_s,
            "paused": info.paused,
            "settings": settings_dict(info.settings),
        }

    async def pause(self, queue: str) -> dict[str, Any]:
        reply = await self._call(self.queues.PauseQueue, pb.PauseQueueRequest(queue=queue))
        return {"queue": reply.queue, "paused": reply.paused}

    async def resume(self, queue: str) -> dict[str, Any]:
        reply = await self._call(self.queues.ResumeQueue, pb.ResumeQueueRequest(queue=queue))
        return {"queue": reply.queue, "paused": reply.paused}

    def _settings(self, reply: pb.QueueSettingsReply) -> dict[str, Any]:
        return {"queue": reply.queue, "paused": reply.paused,
                "settings": settings_dict(reply.settings)}  # fmt: skip

    async def get_settings(self, queue: str) -> dict[str, Any]:
        request = pb.GetQueueSettingsRequest(queue=queue)
        return self._settings(await self._call(self.queues.GetQueueSettings, request))

    async def put_settings(self, queue: str, settings: dict[str, Any]) -> dict[str, Any]:
        request = pb.PutQueueSettingsRequest(queue=queue, settings=settings_message(settings))
        return self._settings(await self._call(self.queues.PutQueueSettings, request))

    async def bulk(self, queue: str, action: str, where: dict[str, Any] | None = None) -> int:
        request = pb.BulkJobsRequest(
            queue=queue,
            action=pb.BulkAction.Value("BULK_ACTION_" + action.upper()),
            filter=filter_message(where or {}),
        )
        return int((await self._call(self.queues.BulkJobs, request)).count)

    async def lease(
        self,
        queue: str,
        worker_id: str,
        max_jobs: int = 1,
        wait_s: float = 0,
        functions: tuple[str, ...] = (),
        lease_s: float | None = None,
    ) -> Leased:
        request = pb.LeaseRequest(
            queue=queue,
            worker_id=worker_id,
            functions=list(functions),
            max_jobs=max_jobs,
            wait_s=wait_s,
            lease_s=lease_s or 0,
        )
        reply = await self._call(self.work.Lease, request, wait_s + CALL_TIMEOUT_S)
        next_due = reply.next_due_s if reply.HasField("next_due_s") else None
        return Leased([job_dict(j) for j in reply.jobs], next_due)

    async def heartbeat(
        self,
        queue: str,
        job_id: str,
        lease: str,
        progress: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        ref = pb.LeaseRef(job_id=job_id, lease=lease, progress=progress)
        if meta is not None:
            ref.meta_json = orjson.dumps(meta).decode()
        reply = await self._call(
            self.work.Heartbeat, pb.HeartbeatRequest(queue=queue, leases=[ref])
        )
        [state] = reply.states
        return lease_state_name(state)

    async def renew(self, queue: str, leases: list[tuple[str, str]]) -> list[str]:
        refs = [pb.LeaseRef(job_id=job_id, lease=lease) for job_id, lease in leases]
        reply = await self._call(self.work.Heartbeat, pb.HeartbeatRequest(queue=queue, leases=refs))
        return [lease_state_name(s) for s in reply.states]

    async def complete(self, queue: str, job_id: str, lease: str, result: Any) -> dict[str, Any]:
        request = pb.CompleteRequest(
            queue=queue, job_id=job_id, lease=lease, result_json=orjson.dumps(result).decode()
        )
        return job_dict(await self._call(self.work.Complete, request))

    async def fail(
        self, queue: str, job_id: str, lease: str, error: dict[str, str], retry: bool = True
    ) -> dict[str, Any]:
        request = pb.FailRequest(
            queue=queue, job_id=job_id, lease=lease, error=pb.JobError(**error), no_retry=not retry
        )
        return job_dict(await self._call(self.work.Fail, request))

    async def settle(self, queue: str, outcomes: list[dict[str, Any]]) -> list[bool]:
        messages = []
        for outcome in outcomes:
            message = pb.Outcome(
                job_id=outcome["job_id"],
                lease=outcome["lease"],
                status=status_label(outcome["status"]),
                delay_s=outcome.get("delay_s", 0),
                function=outcome.get("function", ""),
            )
            if "result" in outcome:
                message.result_json = orjson.dumps(outcome["result"]).decode()
            if outcome.get("error"):
                message.error.CopyFrom(pb.JobError(**outcome["error"]))
            messages.append(message)
        reply = await self._call(self.work.Settle, pb.SettleRequest(queue=queue, outcomes=messages))
        return list(reply.settled)

    async def sweep(self, queue: str) -> int:
        reply = await self._call(self.work.Sweep, pb.SweepRequest(queue=queue))
        return int(reply.reclaimed)


# --- helpers of the tests ------------------------------------------------------------------

Connect = Callable[..., Transport]  # connect(name, service, token=None) -> Transport


async def refused(call: Awaitable[Any]) -> TransportError:
    """The TransportError ``call`` raises (fails the test if it succeeds)."""
    with pytest.raises(TransportError) as caught:
        await call
    return caught.value


async def lease_one(transport: Transport, queue: str, worker: str = "w") -> dict[str, Any]:
    """Lease the one due job of ``queue`` (waiting a little for it)."""
    leased = await transport.lease(queue, worker, max_jobs=1, wait_s=5)
    assert len(leased.jobs) == 1, leased
    return leased.jobs[0]
