"""Every failure is the JSON error shape with the right status, never a 500."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from service_fixtures import start_service, stop_service
from service_helpers import assert_error, enqueue, http_client, lease, unique_name

MAX_BODY = 2000

BAD_ENQUEUE_BODIES: dict[str, Any] = {
    "missing function": {"kwargs": {}},
    "empty function": {"function": ""},
    "function not a string": {"function": 12},
    "kwargs not an object": {"function": "f", "kwargs": [1, 2]},
    "unknown field": {"function": "f", "colour": "blue"},
    "negative timeout": {"function": "f", "timeout": -1},
    "zero timeout": {"function": "f", "timeout": 0},
    "timeout not a number": {"function": "f", "timeout": "soon"},
    "priority above range": {"function": "f", "priority": 1001},
    "priority below range": {"function": "f", "priority": -1001},
    "priority not an integer": {"function": "f", "priority": 1.5},
    "negative retries": {"function": "f", "retries": -1},
    "ttl below -1": {"function": "f", "ttl": -2},
    "negative heartbeat": {"function": "f", "heartbeat": -3},
    "negative retry_delay": {"function": "f", "retry_delay": -0.1},
    "negative retry_backoff": {"function": "f", "retry_backoff": -1},
    "bad id": {"function": "f", "id": "has{brace}"},
    "empty key": {"function": "f", "key": ""},
    "key too long": {"function": "f", "key": "k" * 513},
    "function too long": {"function": "f" * 201},
    "body is a list": [{"function": "f"}],
    "body is a string": "f",
    "body is null": None,
}


@pytest.mark.parametrize("body", BAD_ENQUEUE_BODIES.values(), ids=list(BAD_ENQUEUE_BODIES))
async def test_bad_enqueue_body_is_400(
    client: httpx.AsyncClient, queue_name: str, body: Any
) -> None:
    response = await client.post(f"/v1/queues/{queue_name}/jobs", json=body)
    error = assert_error(response, 400, "invalid_request")
    assert error["details"], error
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert sum(info["counts"].values()) == 0  # nothing was enqueued


async def test_bad_field_is_named_in_the_error(client: httpx.AsyncClient, queue_name: str) -> None:
    response = await client.post(
        f"/v1/queues/{queue_name}/jobs", json={"function": "f", "priority": 5000}
    )
    error = assert_error(response, 400, "invalid_request")
    assert "priority" in error["message"]
    assert [d["field"] for d in error["details"]] == ["body.priority"]


@pytest.mark.parametrize("text", ["{not json", "", '{"function": "f",}', "\x00\x01"])
async def test_invalid_json_is_400(client: httpx.AsyncClient, queue_name: str, text: str) -> None:
    response = await client.post(
        f"/v1/queues/{queue_name}/jobs",
        content=text.encode(),
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")


async def test_non_finite_numbers_are_400(client: httpx.AsyncClient, queue_name: str) -> None:
    for field in ("timeout", "scheduled", "retry_delay", "heartbeat"):
        text = '{"function": "f", "%s": Infinity}' % field  # noqa: UP031
        response = await client.post(
            f"/v1/queues/{queue_name}/jobs",
            content=text.encode(),
            headers={"content-type": "application/json"},
        )
        assert_error(response, 400)


async def test_bad_batch_is_400(client: httpx.AsyncClient, queue_name: str) -> None:
    url = f"/v1/queues/{queue_name}/jobs/batch"
    assert_error(await client.post(url, json={"jobs": []}), 400, "invalid_request")
    assert_error(await client.post(url, json={}), 400, "invalid_request")
    too_many = {"jobs": [{"function": "f"}] * 1001}
    assert_error(await client.post(url, json=too_many), 400, "invalid_request")
    one_bad = {"jobs": [{"function": "f"}, {"function": "f", "priority": 2000}]}
    error = assert_error(await client.post(url, json=one_bad), 400, "invalid_request")
    assert "priority" in error["message"]
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert sum(info["counts"].values()) == 0  # all or nothing


@pytest.mark.parametrize(
    "name", ["a{b", "a}b", "q" * 129, "-starts-with-dash", "has space", "caf%C3%A9"]
)
async def test_bad_queue_name_is_400(client: httpx.AsyncClient, name: str) -> None:
    for method, path, body in [
        ("POST", f"/v1/queues/{name}/jobs", {"function": "f"}),
        ("POST", f"/v1/queues/{name}/jobs/batch", {"jobs": [{"function": "f"}]}),
        ("GET", f"/v1/queues/{name}", None),
        ("GET", f"/v1/queues/{name}/jobs", None),
        ("POST", f"/v1/queues/{name}/leases", {"worker_id": "w"}),
        ("POST", f"/v1/queues/{name}/sweep", None),
    ]:
        response = await client.request(method, path, json=body)
        error = assert_error(response, 400, "invalid_request")
        assert "queue" in error["message"], (method, path, error)


async def test_longest_queue_name_is_fine(client: httpx.AsyncClient) -> None:
    name = "q" + unique_name()[2:] + "x" * (128 - 13)
    assert len(name) == 128
    job = await enqueue(client, name)
    assert job["queue"] == name


@pytest.mark.parametrize("job_id", ["a{b}", "x" * 201, "a%20b", "caf%C3%A9"])
async def test_bad_job_id_is_400(client: httpx.AsyncClient, job_id: str) -> None:
    for method, path, body in [
        ("GET", f"/v1/jobs/{job_id}", None),
        ("GET", f"/v1/jobs/{job_id}/events", None),
        ("POST", f"/v1/jobs/{job_id}/abort", None),
        ("POST", f"/v1/jobs/{job_id}/retry", None),
        ("DELETE", f"/v1/jobs/{job_id}", None),
        ("POST", f"/v1/jobs/{job_id}/complete", {"lease": "l"}),
        ("POST", f"/v1/jobs/{job_id}/fail", {"lease": "l"}),
    ]:
        response = await client.request(method, path, json=body)
        error = assert_error(response, 400, "invalid_request")
        assert "job_id" in error["message"], (method, path, error)


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    job_id = unique_name("missing")
    for method, path, body in [
        ("GET", f"/v1/jobs/{job_id}", None),
        ("GET", f"/v1/jobs/{job_id}?wait=1", None),
        ("GET", f"/v1/jobs/{job_id}/events", None),
        ("POST", f"/v1/jobs/{job_id}/abort", {"error": "x"}),
        ("POST", f"/v1/jobs/{job_id}/retry", None),
        ("DELETE", f"/v1/jobs/{job_id}", None),
        ("POST", f"/v1/jobs/{job_id}/complete", {"lease": "l"}),
        ("POST", f"/v1/jobs/{job_id}/fail", {"lease": "l"}),
    ]:
        response = await client.request(method, path, json=body)
        error = assert_error(response, 404, "not_found")
        assert job_id in error["message"], (method, path, error)
    # A heartbeat's answer tells a worker to stop: the job's lease is lost (409), as a
    # renewal reports it "lost", whether the job was re-leased or is gone.
    response = await client.post(f"/v1/jobs/{job_id}/heartbeat", json={"lease": "l"})
    assert job_id in assert_error(response, 409, "stale_lease")["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"function": "f" * 201},
    ],
)
async def test_bad_list_query_is_400(
    client: httpx.AsyncClient, queue_name: str, params: dict[str, Any]
) -> None:
    response = await client.get(f"/v1/queues/{queue_name}/jobs", params=params)
    assert_error(response, 400, "invalid_request")


async def test_bad_wait_and_queue_hint_are_400(client: httpx.AsyncClient, queue_name: str) -> None:
    job = await enqueue(client, queue_name)
    url = f"/v1/jobs/{job['id']}"
    assert_error(await client.get(url, params={"wait": -1}), 400, "invalid_request")
    assert_error(await client.get(url, params={"wait": "long"}), 400, "invalid_request")
    assert_error(await client.get(url, params={"wait": 3601}), 400, "invalid_request")
    assert_error(await client.get(url, params={"queue": "a{b"}), 400, "invalid_request")
    apply = f"/v1/queues/{queue_name}/jobs/apply"
    assert_error(
        await client.post(apply, params={"wait": -1}, json={"function": "f"}),
        400,
        "invalid_request",
    )


async def test_bad_idempotency_key_is_400(client: httpx.AsyncClient, queue_name: str) -> None:
    response = await client.post(
        f"/v1/queues/{queue_name}/jobs",
        json={"function": "f"},
        headers={"Idempotency-Key": "k" * 513},
    )
    assert_error(response, 400, "invalid_request")


async def test_bad_abort_body_is_400(client: httpx.AsyncClient, queue_name: str) -> None:
    job = await enqueue(client, queue_name)
    url = f"/v1/jobs/{job['id']}/abort"
    assert_error(await client.post(url, json={"error": 5}), 400, "invalid_request")
    assert_error(await client.post(url, json={"reason": "x"}), 400, "invalid_request")
    assert (await client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "queued"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"worker_id": ""},
        {"worker_id": "w", "max": 0},
        {"worker_id": "w", "max": 1001},
        {"worker_id": "w", "wait": -1},
        {"worker_id": "w", "lease_s": 0},
        {"worker_id": "w", "functions": "f"},
        {"worker_id": "w", "extra": True},
    ],
)
async def test_bad_lease_body_is_400(
    client: httpx.AsyncClient, queue_name: str, body: dict[str, Any]
) -> None:
    await enqueue(client, queue_name)
    response = await client.post(f"/v1/queues/{queue_name}/leases", json=body)
    assert_error(response, 400, "invalid_request")
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert info["counts"]["queued"] == 1  # nothing was leased


async def test_bad_worker_report_bodies_are_400(client: httpx.AsyncClient, queue_name: str) -> None:
    await enqueue(client, queue_name)
    [job] = await lease(client, queue_name)
    base = f"/v1/jobs/{job['id']}"
    token = job["lease"]
    for path, body in [
        ("heartbeat", {}),
        ("heartbeat", {"lease": token, "progress": 1.5}),
        ("heartbeat", {"lease": token, "progress": -0.1}),
        ("heartbeat", {"lease": token, "meta": [1]}),
        ("complete", {"result": 1}),
        ("complete", {"lease": token, "run_s": -1}),
        ("complete", {"lease": token, "surprise": 1}),
        ("fail", {"lease": token, "retryable": "maybe"}),
        ("fail", {"lease": token, "error": {"type": "E", "colour": "red"}}),
        ("fail", {"lease": token, "error": "oops"}),
    ]:
        response = await client.post(f"{base}/{path}", json=body)
        assert_error(response, 400, "invalid_request")
    assert (await client.get(base)).json()["status"] == "active"


async def test_bad_batch_worker_bodies_are_400(client: httpx.AsyncClient, queue_name: str) -> None:
    base = f"/v1/queues/{queue_name}/leases"
    for path, body in [
        ("renew", {}),
        ("renew", {"leases": [{"job_id": "a{b", "lease": "l"}]}),
        ("renew", {"leases": [{"job_id": "a", "lease": ""}]}),
        ("renew", {"leases": [], "lease_s": -1}),
        ("settle", {}),
        ("settle", {"outcomes": [{"job_id": "a", "lease": "l", "status": "active"}]}),
        ("settle", {"outcomes": [{"job_id": "a", "lease": "l", "status": "complete",
                                  "delay_s": -1}]}),
    ]:  # fmt: skip
        response = await client.post(f"{base}/{path}", json=body)
        assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(  # "/" redirects to the dashboard (tests/ui)
    "path", ["/v1", "/v1/nope", "/v1/jobs", "/v1/jobs/a/b/c", "/v2/queues", "/nope"]
)
async def test_unknown_route_is_404_json(client: httpx.AsyncClient, path: str) -> None:
    assert_error(await client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/queues"),
        ("DELETE", "/v1/queues/q"),
        ("GET", "/v1/queues/q/leases"),
        ("GET", "/v1/queues/q/sweep"),
        ("PATCH", "/v1/jobs/some-id"),
        ("GET", "/v1/jobs/some-id/abort"),
        ("POST", "/healthz"),
    ],
)
async def test_wrong_method_is_405_json(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert_error(response, 405, "method_not_allowed")


@pytest.fixture(scope="module")
def small_body_service(redis_url: str) -> Iterator[str]:
    """A service that refuses request bodies over ``MAX_BODY`` bytes."""
    proc, url, _ = start_service(redis_url, env={"JOBWIRE_MAX_BODY_BYTES": str(MAX_BODY)})
    try:
        yield url
    finally:
        stop_service(proc)


@pytest.fixture
async def small_client(small_body_service: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the small-body service."""
    async with http_client(small_body_service) as http:
        yield http


def _job_body(size: int) -> bytes:
    """An enqueue body of exactly ``size`` bytes."""
    empty = json.dumps({"function": "f", "kwargs": {"pad": ""}}).encode()
    body = json.dumps({"function": "f", "kwargs": {"pad": "x" * (size - len(empty))}}).encode()
    assert len(body) == size
    return body


@pytest.mark.xdist_group("service-small-body")  # one small_body_service
async def test_body_over_the_limit_is_413(small_client: httpx.AsyncClient) -> None:
    queue = unique_name()
    headers = {"content-type": "application/json"}
    url = f"/v1/queues/{queue}/jobs"
    at_limit = await small_client.post(url, content=_job_body(MAX_BODY), headers=headers)
    assert at_limit.status_code == 201, at_limit.text
    over = await small_client.post(url, content=_job_body(MAX_BODY + 1), headers=headers)
    error = assert_error(over, 413, "payload_too_large")
    assert str(MAX_BODY) in error["message"]
    batch = {"jobs": [{"function": "f", "kwargs": {"i": i}} for i in range(200)]}
    assert_error(
        await small_client.post(f"/v1/queues/{queue}/jobs/batch", json=batch),
        413,
        "payload_too_large",
    )
    info = (await small_client.get(f"/v1/queues/{queue}")).json()
    assert info["counts"]["queued"] == 1


@pytest.mark.xdist_group("service-small-body")  # one small_body_service
async def test_chunked_body_over_the_limit_is_413(small_client: httpx.AsyncClient) -> None:
    queue = unique_name()
    body = _job_body(MAX_BODY * 3)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    response = await small_client.post(
        f"/v1/queues/{queue}/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")
    info = (await small_client.get(f"/v1/queues/{queue}")).json()
    assert sum(info["counts"].values()) == 0


@pytest.mark.xdist_group("service-small-body")  # one small_body_service
async def test_chunked_body_under_the_limit_is_accepted(small_client: httpx.AsyncClient) -> None:
    queue = unique_name()
    body = _job_body(MAX_BODY - 100)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 300):
            yield body[start : start + 300]

    response = await small_client.post(
        f"/v1/queues/{queue}/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 201, response.text
