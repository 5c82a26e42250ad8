"""Helpers of the fault suite: services with both ports, requests over either transport."""

import dataclasses
import subprocess
import uuid
from typing import Any

import grpc
import httpx
import orjson
from service_fixtures import free_port, start_service

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc


@dataclasses.dataclass
class Service:
    """A running `jobwire serve` with both ports."""

    proc: subprocess.Popen[bytes]
    http: str
    target: str
    log_path: str
    backend: str

    def log(self) -> str:
        """Its log so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()


def start(backend_url: str, env: dict[str, str] | None = None) -> Service:
    """Start `jobwire serve` with REST and gRPC; ready when it returns."""
    port = free_port()
    proc, http, log_path = start_service(backend_url, env=env, grpc_port=port)
    return Service(proc, http, f"127.0.0.1:{port}", log_path, backend_url)


def unique_name(prefix: str = "f") -> str:
    """A queue name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def job_spec(body: dict[str, Any]) -> pb.JobSpec:
    """The gRPC JobSpec of a REST enqueue body (fields gRPC cannot carry raise)."""
    fields = dict(body)
    kwargs = fields.pop("kwargs", {})
    backoff = fields.pop("retry_backoff", False)
    if not isinstance(backoff, bool):
        fields["retry_backoff_cap"] = backoff
        backoff = True
    return pb.JobSpec(kwargs_json=orjson.dumps(kwargs).decode(), retry_backoff=backoff, **fields)


def grpc_stub(target: str) -> tuple[grpc.aio.Channel, Any]:
    """A channel and a JobService stub on it."""
    channel = grpc.aio.insecure_channel(target)
    return channel, pb_grpc.JobServiceStub(channel)


def counts(http: str, queue: str) -> dict[str, int]:
    """The queue's counts (REST)."""
    response = httpx.get(f"{http}/v1/queues/{queue}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["counts"])
