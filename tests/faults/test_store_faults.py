"""Stores that stop, stall or drop connections: 503 with Retry-After / UNAVAILABLE on
both transports, within the store deadline, never 500 or INTERNAL; service recovers."""

import asyncio
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from fault_helpers import Service, grpc_stub, job_spec, start, unique_name
from service_fixtures import stop_service
from stores import OwnPostgres, OwnRedis

from jobwire.v1 import jobwire_pb2 as pb

pytestmark = pytest.mark.slow
DEADLINE_S = 2.0  # JOBWIRE_STORE_TIMEOUT_S of these services


@pytest.fixture(params=["redis", "postgres"])
def faulty(
    request: pytest.FixtureRequest, own_redis: OwnRedis, own_postgres: OwnPostgres
) -> Iterator[tuple[Service, OwnRedis | OwnPostgres]]:
    """A service of this test alone on one of the suite's own stores."""
    store: OwnRedis | OwnPostgres = own_redis if request.param == "redis" else own_postgres
    service = start(store.url, env={"JOBWIRE_STORE_TIMEOUT_S": str(DEADLINE_S),
                                    "JOBWIRE_SWEEP_INTERVAL_S": "1"})  # fmt: skip
    try:
        yield service, store
    finally:
        stop_service(service.proc)
        # no request ended in an unhandled error (a 500); a driver's own warnings with a
        # traceback while the store is down are fine ("500" also matched a port number)
        assert "unhandled error" not in service.log()


async def _enqueue_both(service: Service, queue: str) -> tuple[httpx.Response, grpc.StatusCode]:
    """One enqueue over REST and one over gRPC, with the clients' own deadlines (10 s)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{service.http}/v1/queues/{queue}/jobs", json={"function": "f"})
    channel, jobs = grpc_stub(service.target)
    async with channel:
        try:
            await jobs.Enqueue(pb.EnqueueRequest(queue=queue, job=job_spec({"function": "f"})),
                               timeout=10)  # fmt: skip
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
    return response, code


def _assert_unavailable(response: httpx.Response, code: grpc.StatusCode) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers.get("retry-after"), response.headers
    assert response.json()["error"]["code"] == "unavailable"
    assert code == grpc.StatusCode.UNAVAILABLE, code


async def test_store_down_is_503_and_unavailable_then_recovers(
    faulty: tuple[Service, OwnRedis | OwnPostgres],
) -> None:
    service, store = faulty
    queue = unique_name()
    response, code = await _enqueue_both(service, queue)
    assert response.status_code == 201 and code == grpc.StatusCode.OK
    store.stop()
    try:
        response, code = await _enqueue_both(service, queue)
        _assert_unavailable(response, code)
        async with httpx.AsyncClient(timeout=10) as http:
            for path in (f"/v1/queues/{queue}", f"/v1/queues/{queue}/jobs", "/v1/queues"):
                listed = await http.get(service.http + path)
                assert listed.status_code == 503, (path, listed.status_code, listed.text)
    finally:
        store.start()
    deadline = time.monotonic() + 15
    while True:  # back by itself once the store is
        response, code = await _enqueue_both(service, queue)
        if response.status_code == 201 and code == grpc.StatusCode.OK:
            break
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, (response.status_code, code)
        await asyncio.sleep(0.2)


async def test_stalled_store_answers_503_within_the_deadline(
    faulty: tuple[Service, OwnRedis | OwnPostgres],
) -> None:
    service, store = faulty
    queue = unique_name()
    response, _ = await _enqueue_both(service, queue)
    assert response.status_code == 201
    paused = store.pause() if isinstance(store, OwnPostgres) else None
    if isinstance(store, OwnRedis):
        store.pause()
    try:
        began = time.monotonic()
        response, code = await _enqueue_both(service, queue)
        took = time.monotonic() - began
        _assert_unavailable(response, code)
        assert took < 2 * (DEADLINE_S + 1.5), took  # two calls, each within its deadline
    finally:
        if isinstance(store, OwnRedis):
            store.resume()
        else:
            assert paused is not None
            store.resume(paused)
    deadline = time.monotonic() + 15
    while True:
        response, code = await _enqueue_both(service, queue)
        if response.status_code == 201 and code == grpc.StatusCode.OK:
            break
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, (response.status_code, code)
        await asyncio.sleep(0.2)


async def test_terminated_postgres_connections_are_never_500(own_postgres: OwnPostgres) -> None:
    """pg_terminate_backend under enqueue load: every answer is 201 or 503, and every
    acknowledged job exists."""
    import asyncpg

    service = start(own_postgres.url, env={"JOBWIRE_STORE_TIMEOUT_S": str(DEADLINE_S)})
    queue = unique_name()
    statuses: list[int] = []
    acknowledged: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def load() -> None:
                for _ in range(60):
                    response = await http.post(f"{service.http}/v1/queues/{queue}/jobs",
                                               json={"function": "f"})  # fmt: skip
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])

            async def terminate() -> None:
                conn = await asyncpg.connect(own_postgres.url)
                try:
                    for _ in range(8):
                        await asyncio.sleep(0.05)
                        await conn.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = current_database()"
                        )
                finally:
                    await conn.close()

            await asyncio.gather(load(), load(), load(), terminate())
            assert set(statuses) <= {201, 503}, sorted(set(statuses))
            assert statuses.count(201) > 0
            listed = await http.get(f"{service.http}/v1/queues/{queue}/jobs?limit=1000")
            assert listed.status_code == 200, listed.text
            stored = {job["id"] for job in listed.json()["jobs"]}
            assert set(acknowledged) <= stored
    finally:
        stop_service(service.proc)


async def test_enqueue_stored_past_its_deadline_is_answered_as_stored(
    faulty: tuple[Service, OwnRedis | OwnPostgres],
) -> None:
    """A store that stalls just past the deadline and then resumes stores the write it
    had received: the enqueue answers 201 with the job (issue 17: it answered 503)."""
    service, store = faulty
    queue = unique_name()
    response, _ = await _enqueue_both(service, queue)
    assert response.status_code == 201
    paused = store.pause() if isinstance(store, OwnPostgres) else None
    if isinstance(store, OwnRedis):
        store.pause()

    async def resume_after_deadline() -> None:
        await asyncio.sleep(DEADLINE_S + 0.5)
        if isinstance(store, OwnRedis):
            store.resume()
        else:
            assert paused is not None
            store.resume(paused)

    resuming = asyncio.create_task(resume_after_deadline())
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            answer = await http.post(
                f"{service.http}/v1/queues/{queue}/jobs", json={"function": "late"}
            )
    finally:
        await resuming
    async with httpx.AsyncClient(timeout=15) as http:
        listed = await http.get(f"{service.http}/v1/queues/{queue}/jobs?limit=100")
    late = [job["id"] for job in listed.json()["jobs"] if job["function"] == "late"]
    assert len(late) == 1, late  # the stalled store took the write once it resumed
    assert answer.status_code == 201, (answer.status_code, answer.text)
    assert answer.json()["id"] == late[0]
