"""The service SIGKILLed under enqueue load (REST and gRPC, on Redis and PostgreSQL of the
suite's own): every job it acknowledged is in the store when it comes back."""

import asyncio
import os
import signal

import grpc
import httpx
import pytest
from fault_helpers import Service, grpc_stub, job_spec, start, unique_name
from service_fixtures import stop_service
from stores import OwnPostgres, OwnRedis

from jobwire.v1 import jobwire_pb2 as pb

pytestmark = pytest.mark.slow
ENQUEUERS = 4  # per transport
KILL_AFTER = 120  # acknowledged jobs before the kill
LOAD_S = 20.0


async def _rest_enqueuer(service: Service, queue: str, acked: list[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            try:
                response = await http.post(f"{service.http}/v1/queues/{queue}/jobs",
                                           json={"function": "f", "kwargs": {"n": 1}})  # fmt: skip
            except httpx.TransportError:
                return  # the service is gone
            assert response.status_code == 201, response.text
            acked.append(response.json()["id"])


async def _grpc_enqueuer(service: Service, queue: str, acked: list[str]) -> None:
    channel, jobs = grpc_stub(service.target)
    async with channel:
        while True:
            request = pb.EnqueueRequest(queue=queue, job=job_spec({"function": "f"}))
            try:
                reply = await jobs.Enqueue(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                return
            acked.append(reply.job.id)


async def _stored_ids(http: str, queue: str) -> set[str]:
    stored: set[str] = set()
    cursor: str | None = None
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = await client.get(f"{http}/v1/queues/{queue}/jobs", params=params)
            assert page.status_code == 200, page.text
            stored |= {job["id"] for job in page.json()["jobs"]}
            cursor = page.json()["next_cursor"]
            if not cursor:
                return stored


@pytest.mark.parametrize("store", ["redis", "postgres"])
async def test_acknowledged_enqueues_survive_a_killed_service(
    store: str, request: pytest.FixtureRequest
) -> None:
    own: OwnRedis | OwnPostgres = request.getfixturevalue(f"own_{store}")
    url = own.url
    queue = unique_name("killsvc")
    service = start(url)
    rest_acked: list[str] = []
    grpc_acked: list[str] = []
    try:
        load = [asyncio.create_task(enqueuer(service, queue, acked))
                for enqueuer, acked in [(_rest_enqueuer, rest_acked), (_grpc_enqueuer, grpc_acked)]
                for _ in range(ENQUEUERS)]  # fmt: skip
        async with asyncio.timeout(LOAD_S):
            while len(rest_acked) < KILL_AFTER // 2 or len(grpc_acked) < KILL_AFTER // 2:
                if any(task.done() for task in load):  # raises what failed it
                    await asyncio.gather(*load)
                    raise AssertionError("an enqueuer stopped before the kill")
                await asyncio.sleep(0.01)
        os.kill(service.proc.pid, signal.SIGKILL)
        service.proc.wait(10)
        async with asyncio.timeout(LOAD_S):
            await asyncio.gather(*load)  # each stops at its first failed call, or fails the test
    finally:
        stop_service(service.proc)

    again = start(url)
    try:
        stored = await _stored_ids(again.http, queue)
    finally:
        stop_service(again.proc)
    acked = set(rest_acked) | set(grpc_acked)
    assert len(acked) == len(rest_acked) + len(grpc_acked)
    missing = acked - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged jobs are gone"
    print(
        f"kill-service {store}: {len(rest_acked)} REST + {len(grpc_acked)} gRPC acknowledged, "
        f"{len(stored)} stored ({len(stored) - len(acked)} written but unacknowledged)"
    )
