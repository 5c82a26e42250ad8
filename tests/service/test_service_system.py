"""Health, readiness (also with the backend down) and Prometheus metrics."""

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from service_fixtures import stop_service
from service_helpers import (
    assert_error,
    closed_port,
    enqueue,
    http_client,
    lease,
    spawn_service,
)


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/v1/queues/{queue}/jobs", "/v1/jobs/{job_id}", "/v1/queues/{queue}/leases"):
        assert path in paths


@pytest.fixture(scope="module")
def unreachable_service() -> Iterator[tuple[str, str]]:
    """A service whose backend URL points at a closed port: its URL and log path."""
    backend = f"redis://127.0.0.1:{closed_port()}/0"
    proc, url, log_path = spawn_service(backend)
    try:
        yield url, log_path
    finally:
        stop_service(proc)


@pytest.mark.xdist_group("service-unreachable")  # one unreachable_service
async def test_readyz_is_503_when_the_backend_is_unreachable(
    unreachable_service: tuple[str, str],
) -> None:
    url, _ = unreachable_service
    async with http_client(url) as http:
        assert (await http.get("/healthz")).status_code == 200
        started = time.monotonic()
        response = await http.get("/readyz")
        assert time.monotonic() - started < 5
        error = assert_error(response, 503, "not_ready")
        assert "unreachable" in error["message"]


@pytest.mark.xdist_group("service-unreachable")  # one unreachable_service
async def test_requests_with_the_backend_unreachable_are_503(
    unreachable_service: tuple[str, str],
) -> None:
    url, _ = unreachable_service
    async with http_client(url) as http:
        for method, path, body in [
            ("POST", "/v1/queues/q/jobs", {"function": "f"}),
            ("GET", "/v1/jobs/some-id", None),
            ("GET", "/v1/queues", None),
            ("POST", "/v1/queues/q/leases", {"worker_id": "w"}),
        ]:
            started = time.monotonic()
            response = await http.request(method, path, json=body)
            assert time.monotonic() - started < 5, (method, path)
            assert response.status_code == 503, (method, path, response.text)
            assert_error(response, 503)


def _samples(text: str, name: str) -> list[Sample]:
    """Every sample called ``name`` in a Prometheus exposition."""
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def _scrape(client: httpx.AsyncClient) -> str:
    """GET /metrics (200 and the Prometheus content type asserted)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics(client: httpx.AsyncClient, queue_name: str) -> None:
    for _ in range(3):
        await enqueue(client, queue_name, function="metered")
    await enqueue(client, queue_name, function="other")
    [job] = await lease(client, queue_name)
    done = await client.post(f"/v1/jobs/{job['id']}/complete", json={"lease": job["lease"]})
    assert done.status_code == 200
    await client.get(f"/v1/queues/{queue_name}/jobs")

    text = await _scrape(client)
    enqueued = {
        s.labels["function"]: s.value
        for s in _samples(text, "jobwire_jobs_enqueued_total")
        if s.labels["queue"] == queue_name
    }
    assert enqueued == {"metered": 3.0, "other": 1.0}
    completed = [
        s for s in _samples(text, "jobwire_jobs_completed_total")
        if s.labels["queue"] == queue_name
    ]  # fmt: skip
    assert [(s.labels["function"], s.value) for s in completed] == [("metered", 1.0)]

    routes = {
        (s.labels["method"], s.labels["route"], s.labels["status"])
        for s in _samples(text, "jobwire_http_requests_total")
    }
    assert ("POST", "/v1/queues/{queue}/jobs", "201") in routes
    assert ("GET", "/v1/queues/{queue}/jobs", "200") in routes
    assert ("POST", "/v1/jobs/{job_id}/complete", "200") in routes
    assert not any(queue_name in route for _, route, _ in routes), "raw paths leak into labels"

    # Queue depths are read at scrape time and cached for a few seconds.
    deadline = time.monotonic() + 8
    while True:
        depth = {
            s.labels["status"]: s.value
            for s in _samples(text, "jobwire_queue_jobs")
            if s.labels["queue"] == queue_name
        }
        if depth or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
        text = await _scrape(client)
    assert depth.get("queued") == 3.0, depth
    assert depth.get("active") == 0.0, depth
    assert depth.get("complete") == 1.0, depth
