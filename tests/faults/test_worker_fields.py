"""A worker's fields that reach the store (lease tokens, job ids, worker ids, delays) are
checked first: NUL or out of range is 400 / INVALID_ARGUMENT on both transports, never
500 / INTERNAL (PostgreSQL's text cannot hold NUL; found by the OpenAPI fuzz)."""

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from fault_helpers import Service, grpc_stub, unique_name

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

BAD_LEASE = "le\x00ase"


def _job(service: Service) -> tuple[str, str]:
    queue = unique_name()
    response = httpx.post(f"{service.http}/v1/queues/{queue}/jobs", json={"function": "f"})
    assert response.status_code == 201, response.text
    return queue, response.json()["id"]


REST_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "settle NUL lease": ("/v1/queues/{queue}/leases/settle",
                         {"outcomes": [{"job_id": "{id}", "lease": BAD_LEASE,
                                        "status": "complete"}]}),
    "settle huge delay": ("/v1/queues/{queue}/leases/settle",
                          {"outcomes": [{"job_id": "{id}", "lease": "x", "status": "queued",
                                         "delay_s": 1e308}]}),
    "renew NUL lease": ("/v1/queues/{queue}/leases/renew",
                        {"leases": [{"job_id": "{id}", "lease": BAD_LEASE}]}),
    "lease NUL worker": ("/v1/queues/{queue}/leases", {"worker_id": "w\x00", "max": 1}),
    "complete NUL lease": ("/v1/jobs/{id}/complete", {"lease": BAD_LEASE}),
    "fail NUL lease": ("/v1/jobs/{id}/fail", {"lease": BAD_LEASE}),
    "heartbeat NUL lease": ("/v1/jobs/{id}/heartbeat", {"lease": BAD_LEASE}),
}  # fmt: skip


def _fill(value: Any, queue: str, job_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", job_id).replace("{queue}", queue)
    if isinstance(value, list):
        return [_fill(item, queue, job_id) for item in value]
    if isinstance(value, dict):
        return {name: _fill(item, queue, job_id) for name, item in value.items()}
    return value


@pytest.mark.parametrize("case", list(REST_CASES))
def test_rest_worker_fields_are_checked(store_service: Service, case: str) -> None:
    queue, job_id = _job(store_service)
    path, body = REST_CASES[case]
    response = httpx.post(store_service.http + _fill(path, queue, job_id),
                          json=_fill(body, queue, job_id), timeout=10)  # fmt: skip
    assert response.status_code == 400, (response.status_code, response.text)
    job = httpx.get(f"{store_service.http}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "queued", job


async def test_grpc_worker_fields_are_checked(store_service: Service) -> None:
    queue, job_id = await asyncio.to_thread(_job, store_service)
    channel, _ = grpc_stub(store_service.target)
    calls = {
        "Complete": pb.CompleteRequest(job_id=job_id, queue=queue, lease=BAD_LEASE),
        "Fail": pb.FailRequest(job_id=job_id, queue=queue, lease=BAD_LEASE),
        "Heartbeat": pb.HeartbeatRequest(
            queue=queue, leases=[pb.LeaseRef(job_id=job_id, lease=BAD_LEASE)]),
        "Heartbeat NUL id": pb.HeartbeatRequest(
            queue=queue, leases=[pb.LeaseRef(job_id="j\x00", lease="x")]),
        "Settle": pb.SettleRequest(queue=queue, outcomes=[
            pb.Outcome(job_id=job_id, lease=BAD_LEASE, status=pb.STATUS_COMPLETE)]),
        "Settle NUL id": pb.SettleRequest(queue=queue, outcomes=[
            pb.Outcome(job_id="j\x00", lease="x", status=pb.STATUS_COMPLETE)]),
        "Lease": pb.LeaseRequest(queue=queue, worker_id="w\x00", max_jobs=1),
    }  # fmt: skip
    codes: dict[str, grpc.StatusCode] = {}
    async with channel:
        worker = pb_grpc.WorkerServiceStub(channel)
        for name, request in calls.items():
            method = getattr(worker, name.split()[0])
            try:
                await method(request, timeout=10)
                codes[name] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                codes[name] = exc.code()
    assert codes == dict.fromkeys(calls, grpc.StatusCode.INVALID_ARGUMENT)
    async with httpx.AsyncClient(timeout=10) as http:
        job = (await http.get(f"{store_service.http}/v1/jobs/{job_id}")).json()
    assert job["status"] == "queued", job
