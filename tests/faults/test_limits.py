"""One set of limits for every store and both transports: out of range is 400 /
INVALID_ARGUMENT naming the field, and nothing is stored (issue 17's defects 1-3)."""

from typing import Any

import grpc
import httpx
import pytest
from fault_helpers import Service, counts, grpc_stub, job_spec, unique_name

from jobwire.v1 import jobwire_pb2 as pb

# field named in the error -> a body that is out of range for it
OUT_OF_RANGE: dict[str, tuple[str, dict[str, Any]]] = {
    "ttl beyond Redis EXPIRE": ("ttl", {"function": "f", "ttl": 10_000_000_000_000_000}),
    "ttl beyond int32": ("ttl", {"function": "f", "ttl": 2**31}),
    "ttl beyond 64 bits": ("ttl", {"function": "f", "ttl": 10**20}),
    "retries beyond 64 bits": ("retries", {"function": "f", "retries": 10**20}),
    "retries beyond int32": ("retries", {"function": "f", "retries": 2**31}),
    "NUL in function": ("function", {"function": "f\x00g"}),
    "NUL in key": ("key", {"function": "f", "key": "k\x00"}),
    "timeout too large": ("timeout", {"function": "f", "timeout": 1e300}),
    "heartbeat too large": ("heartbeat", {"function": "f", "heartbeat": 1e300}),
    "scheduled too large": ("scheduled", {"function": "f", "scheduled": 1e300}),
    "retry_delay too large": ("retry_delay", {"function": "f", "retry_delay": 1e300}),
    "retry_backoff too large": ("retry_backoff", {"function": "f", "retry_backoff": 1e300}),
    "kwargs too large": ("kwargs", {"function": "f", "kwargs": {"a": "x" * 600_000}}),
    "kwargs int beyond 64 bits": ("kwargs", {"function": "f", "kwargs": {"n": 2**64}}),
}
GRPC_CASES = ["ttl beyond Redis EXPIRE", "ttl beyond int32", "NUL in function", "NUL in key",
              "timeout too large", "scheduled too large", "kwargs too large"]  # fmt: skip


def _listing_is_fine(service: Service, queue: str) -> None:
    response = httpx.get(f"{service.http}/v1/queues/{queue}/jobs", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["jobs"] == []
    assert sum(counts(service.http, queue).values()) == 0  # nothing was stored


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_rest_out_of_range_is_400_and_stores_nothing(store_service: Service, case: str) -> None:
    field, body = OUT_OF_RANGE[case]
    queue = unique_name()
    response = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs", json=body, timeout=10)
    assert response.status_code == 400, (response.status_code, response.text)
    assert field in response.json()["error"]["message"], response.text
    batch = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs/batch",
                       json={"jobs": [{"function": "ok"}, body]}, timeout=10)  # fmt: skip
    assert batch.status_code == 400, (batch.status_code, batch.text)
    _listing_is_fine(store_service, queue)


@pytest.mark.parametrize("case", GRPC_CASES)
async def test_grpc_out_of_range_is_invalid_argument(store_service: Service, case: str) -> None:
    field, body = OUT_OF_RANGE[case]
    queue = unique_name()
    channel, jobs = grpc_stub(store_service.target)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jobs.Enqueue(pb.EnqueueRequest(queue=queue, job=job_spec(body)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert field in (caught.value.details() or "")
    _listing_is_fine(store_service, queue)


def test_edges_in_range_are_stored_alike(store_service: Service) -> None:
    """The largest values the limits allow are stored and read back exactly, and the job
    can be aborted (Redis's EXPIRE takes the ttl)."""
    from jobwire.job import LIMITS

    queue = unique_name()
    body = {"function": "f" * LIMITS.function_chars, "key": "k" * LIMITS.key_chars,
            "ttl": LIMITS.ttl_max, "retries": LIMITS.retries_max, "priority": 1000,
            "timeout": LIMITS.seconds_max, "heartbeat": LIMITS.seconds_max,
            "retry_delay": LIMITS.seconds_max, "retry_backoff": LIMITS.seconds_max,
            "scheduled": LIMITS.scheduled_max}  # fmt: skip
    response = httpx.post(f"{store_service.http}/v1/queues/{queue}/jobs", json=body, timeout=10)
    assert response.status_code == 201, response.text
    job = response.json()
    for name, value in body.items():
        assert job[name] == value, (name, job[name])
    aborted = httpx.post(f"{store_service.http}/v1/jobs/{job['id']}/abort", json={}, timeout=10)
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["status"] == "aborted"
    listing = httpx.get(f"{store_service.http}/v1/queues/{queue}/jobs?status=aborted", timeout=10)
    assert [j["id"] for j in listing.json()["jobs"]] == [job["id"]]
