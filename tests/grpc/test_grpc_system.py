"""Health, reflection, metrics, TLS and the gRPC port's settings."""

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_helpers import GrpcService, Stubs, spec, start_grpc_service, stubs, unique_name
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from service_fixtures import free_port, start_service, stop_service

from jobwire import Queue
from jobwire.server.settings import Settings
from jobwire.v1 import jobwire_pb2 as pb

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(reply.status)


async def test_health_is_serving_for_each_service(api: Stubs) -> None:
    for service in ("", "jobwire.v1.JobService", "jobwire.v1.WorkerService"):
        assert await _health(api.channel, service) == SERVING


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test's own (to be stopped by it)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            yield proc, f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.slow
async def test_health_follows_the_store(own_redis: tuple[subprocess.Popen[bytes], str]) -> None:
    redis_proc, url = own_redis
    await asyncio.sleep(0.3)
    service = start_grpc_service(url)
    try:
        async with stubs(service.target) as api:
            assert await _health(api.channel) == SERVING
            redis_proc.kill()
            redis_proc.wait()
            for _ in range(40):
                if await _health(api.channel) == NOT_SERVING:
                    break
                await asyncio.sleep(0.25)
            assert await _health(api.channel, "jobwire.v1.JobService") == NOT_SERVING
    finally:
        stop_service(service.proc)


async def _reflect(channel: grpc.aio.Channel, request: object) -> object:
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(iter([request]))
    async for reply in call:
        return reply
    raise AssertionError("no reflection reply")


async def test_reflection_lists_and_describes_the_services(api: Stubs) -> None:
    listed = await _reflect(api.channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}  # type: ignore[attr-defined]
    assert {"jobwire.v1.JobService", "jobwire.v1.WorkerService", "grpc.health.v1.Health"} <= names
    found = await _reflect(
        api.channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="jobwire.v1.WorkerService"),
    )
    files = found.file_descriptor_response.file_descriptor_proto  # type: ignore[attr-defined]
    assert any(b"jobwire/v1/jobwire.proto" in raw and b"WorkRequest" in raw for raw in files)


async def test_metrics_count_grpc_calls_by_method_and_code(
    api: Stubs, grpc_service: GrpcService
) -> None:
    await api.jobs.Enqueue(pb.EnqueueRequest(queue=unique_name(), job=spec()))
    with pytest.raises(grpc.aio.AioRpcError):
        await api.jobs.GetJob(pb.GetJobRequest(job_id="missing"))
    async with httpx.AsyncClient(base_url=grpc_service.http) as http:
        text = (await http.get("/metrics")).text
    assert 'jobwire_grpc_requests_total{code="OK",method="Enqueue"}' in text
    assert 'jobwire_grpc_requests_total{code="NOT_FOUND",method="GetJob"}' in text
    assert 'jobwire_grpc_request_duration_seconds_count{method="Enqueue"}' in text
    assert "jobwire_jobs_enqueued_total" in text


@pytest.fixture(scope="module")
def certificate() -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        yield cert, key


@pytest.mark.slow
async def test_tls_when_configured(
    redis_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    port = free_port()
    proc, _, _ = _start_tls(redis_url, cert, key, port)
    try:
        monkeypatch.setenv("JOBWIRE_TLS_CA", str(cert))
        async with Queue.from_url(f"grpcs://localhost:{port}", name=unique_name()) as queue:
            job = await queue.enqueue("fn")
            assert job is not None and (await queue.job(job.id)) is not None
        async with stubs(f"127.0.0.1:{port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await plain.jobs.ListQueues(pb.ListQueuesRequest(), timeout=3)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        stop_service(proc)


def _start_tls(
    redis_url: str, cert: Path, key: Path, port: int
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start a TLS service; ready once its HTTPS /readyz answers."""
    args = ["serve", "--grpc-port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    env = {**os.environ, "JOBWIRE_BACKEND": redis_url}
    http_port = free_port()
    with tempfile.NamedTemporaryFile(prefix="jobwire-tls-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobwire.cli", *args, "--http-port", str(http_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            trust = ssl.create_default_context(cafile=str(cert))
            if httpx.get(f"https://127.0.0.1:{http_port}/readyz", verify=trust).is_success:
                return proc, f"https://127.0.0.1:{http_port}", log.name
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_service(proc)
    raise AssertionError(f"TLS service did not start:\n{Path(log.name).read_text()}")


def test_grpc_port_zero_serves_no_grpc(redis_url: str, grpc_service: GrpcService) -> None:
    proc, _, log_path = start_service(redis_url, grpc_port=0)
    try:
        assert "serving gRPC" not in Path(log_path).read_text()
    finally:
        stop_service(proc)
    assert f"serving gRPC on {grpc_service.target}" in Path(grpc_service.log_path).read_text()


def test_a_grpc_port_in_use_stops_the_start(redis_url: str, grpc_service: GrpcService) -> None:
    """A second service on a gRPC port another serves exits with a clear error, rather
    than sharing the port (and its callers) with it."""
    port = int(grpc_service.target.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match=f"cannot serve gRPC on 127.0.0.1:{port}"):
        proc, _, _ = start_service(redis_url, grpc_port=port)
        stop_service(proc)  # (only if it started after all)


def test_settings_refuse_one_port_for_both() -> None:
    with pytest.raises(ValueError, match="both 9000"):
        Settings(http_port=9000, grpc_port=9000)
    assert Settings(http_port=9000, grpc_port=0).grpc_port == 0
    assert Settings().grpc_port == 50051
