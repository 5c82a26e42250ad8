"""Worker routes over real sockets: leases, heartbeats, results, batches, sweeps, stale leases."""

import asyncio
import time
from typing import Any

import httpx
from service_helpers import assert_error, enqueue, get_job, lease


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST a JSON body."""
    return await client.post(path, json=body)


async def test_lease_gives_jobs_with_lease_tokens(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    ids = [(await enqueue(client, queue_name, kwargs={"i": i}))["id"] for i in range(3)]
    response = await _post(
        client,
        f"/v1/queues/{queue_name}/leases",
        {"worker_id": "w1", "max": 2, "functions": ["f"], "wait": 0},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"jobs", "next_due_s"}
    jobs = body["jobs"]
    assert len(jobs) == 2
    assert [j["id"] for j in jobs] == ids[:2]  # FIFO at equal priority
    for job in jobs:
        assert isinstance(job["lease"], str) and job["lease"]
        assert job["status"] == "active" and job["attempts"] == 1 and job["worker"] == "w1"
    assert jobs[0]["lease"] != jobs[1]["lease"]
    assert (await get_job(client, ids[0]))["status"] == "active"
    [last] = await lease(client, queue_name, max_jobs=5)
    assert last["id"] == ids[2]
    assert await lease(client, queue_name) == []


async def test_lease_prefers_higher_priority(client: httpx.AsyncClient, queue_name: str) -> None:
    await enqueue(client, queue_name, priority=-5)
    high = await enqueue(client, queue_name, priority=100)
    [job] = await lease(client, queue_name)
    assert job["id"] == high["id"]


async def test_lease_reports_when_the_next_scheduled_job_is_due(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, scheduled=time.time() + 100)
    response = await _post(client, f"/v1/queues/{queue_name}/leases", {"worker_id": "w"})
    assert response.status_code == 200
    assert response.json()["jobs"] == []
    assert 90 < response.json()["next_due_s"] <= 100


async def test_lease_long_poll_returns_when_a_job_arrives(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    async def enqueue_soon() -> str:
        await asyncio.sleep(0.3)
        return str((await enqueue(client, queue_name))["id"])

    producer = asyncio.create_task(enqueue_soon())
    started = time.monotonic()
    jobs = await lease(client, queue_name, wait=10)
    elapsed = time.monotonic() - started
    job_id = await producer
    assert [j["id"] for j in jobs] == [job_id]
    assert 0.25 <= elapsed < 3, elapsed


async def test_lease_long_poll_on_a_served_queue_returns_when_a_job_arrives(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await lease(client, queue_name, wait=0.2)  # the service has served this queue before

    async def enqueue_soon() -> str:
        await asyncio.sleep(0.3)
        return str((await enqueue(client, queue_name))["id"])

    producer = asyncio.create_task(enqueue_soon())
    started = time.monotonic()
    jobs = await lease(client, queue_name, wait=10)
    elapsed = time.monotonic() - started
    job_id = await producer
    assert [j["id"] for j in jobs] == [job_id]
    assert 0.25 <= elapsed < 3, elapsed


async def test_lease_long_poll_times_out_empty(client: httpx.AsyncClient, queue_name: str) -> None:
    started = time.monotonic()
    assert await lease(client, queue_name, wait=0.4) == []
    assert 0.35 <= time.monotonic() - started < 5


async def test_heartbeat_renews_and_tells_about_an_abort(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name)
    [job] = await lease(client, queue_name)
    url = f"/v1/jobs/{job['id']}/heartbeat"
    response = await _post(client, url, {"lease": job["lease"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "active", "aborted": False}

    progress = await _post(
        client, url, {"lease": job["lease"], "progress": 0.5, "meta": {"step": "two"}}
    )
    assert progress.status_code == 200, progress.text
    stored = await get_job(client, job["id"])
    assert stored["progress"] == 0.5 and stored["meta"] == {"step": "two"}

    abort = await client.post(f"/v1/jobs/{job['id']}/abort", json={"error": "enough"})
    assert abort.json()["status"] == "aborting"
    response = await _post(client, url, {"lease": job["lease"]})
    assert response.status_code == 200, response.text
    assert response.json()["aborted"] is True
    assert response.json()["status"] == "aborting"


async def test_complete_stores_the_result(client: httpx.AsyncClient, queue_name: str) -> None:
    await enqueue(client, queue_name)
    [job] = await lease(client, queue_name)
    response = await _post(
        client,
        f"/v1/jobs/{job['id']}/complete",
        {"lease": job["lease"], "result": {"rows": [1, 2, 3]}, "run_s": 0.25},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "complete"
    assert "lease" not in response.json()
    stored = await get_job(client, job["id"])
    assert stored["status"] == "complete" and stored["result"] == {"rows": [1, 2, 3]}
    assert stored["completed"] > 0
    again = await _post(client, f"/v1/jobs/{job['id']}/complete", {"lease": job["lease"]})
    assert_error(again, 409, "stale_lease")


async def test_fail_with_retries_left_queues_it_again(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, retries=1)
    [job] = await lease(client, queue_name)
    error = {"type": "ValueError", "message": "bad input", "traceback": "tb"}
    response = await _post(
        client, f"/v1/jobs/{job['id']}/fail", {"lease": job["lease"], "error": error}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    [second] = await lease(client, queue_name)
    assert second["id"] == job["id"] and second["attempts"] == 2
    assert second["lease"] != job["lease"]
    response = await _post(
        client, f"/v1/jobs/{job['id']}/fail", {"lease": second["lease"], "error": error}
    )
    assert response.status_code == 200, response.text
    failed = await get_job(client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "bad input"


async def test_fail_with_a_retry_delay_schedules_it(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, retries=2, retry_delay=60)
    [job] = await lease(client, queue_name)
    response = await _post(client, f"/v1/jobs/{job['id']}/fail", {"lease": job["lease"]})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "scheduled"
    assert response.json()["scheduled"] > time.time() + 30


async def test_fail_not_retryable_fails_it_at_once(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, retries=5)
    [job] = await lease(client, queue_name)
    response = await _post(
        client,
        f"/v1/jobs/{job['id']}/fail",
        {"lease": job["lease"], "retryable": False, "error": {"type": "Fatal", "message": "no"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed"
    stored = await get_job(client, job["id"])
    assert stored["status"] == "failed" and stored["attempts"] == 1
    assert stored["error"]["type"] == "Fatal"


async def test_renew_batch_reports_each_lease(client: httpx.AsyncClient, queue_name: str) -> None:
    for _ in range(2):
        await enqueue(client, queue_name)
    one, two = await lease(client, queue_name, max_jobs=2)
    await client.post(f"/v1/jobs/{two['id']}/abort")
    body = {
        "leases": [
            {"job_id": one["id"], "lease": one["lease"]},
            {"job_id": two["id"], "lease": two["lease"]},
            {"job_id": one["id"], "lease": "not-the-lease"},
        ],
        "lease_s": 5,
    }
    response = await _post(client, f"/v1/queues/{queue_name}/leases/renew", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"states": ["active", "aborting", "lost"]}
    empty = await _post(client, f"/v1/queues/{queue_name}/leases/renew", {"leases": []})
    assert empty.status_code == 200 and empty.json() == {"states": []}


async def test_settle_batch_records_outcomes(client: httpx.AsyncClient, queue_name: str) -> None:
    for retries in (0, 0, 0):
        await enqueue(client, queue_name, retries=retries)
    done, bad, again = await lease(client, queue_name, max_jobs=3)
    body = {
        "outcomes": [
            {"job_id": done["id"], "lease": done["lease"], "status": "complete",
             "function": "f", "result": [1], "run_s": 0.1},
            {"job_id": bad["id"], "lease": bad["lease"], "status": "failed", "function": "f",
             "error": {"type": "Boom", "message": "it broke"}},
            {"job_id": again["id"], "lease": again["lease"], "status": "queued", "delay_s": 0},
            {"job_id": done["id"], "lease": "stale", "status": "complete"},
        ]
    }  # fmt: skip
    response = await _post(client, f"/v1/queues/{queue_name}/leases/settle", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"settled": [True, True, True, False]}
    assert (await get_job(client, done["id"]))["result"] == [1]
    assert (await get_job(client, done["id"]))["status"] == "complete"
    failed = await get_job(client, bad["id"])
    assert failed["status"] == "failed" and failed["error"]["message"] == "it broke"
    assert (await get_job(client, again["id"]))["status"] == "queued"


async def test_sweep_of_a_quiet_queue_reclaims_nothing(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name)
    await lease(client, queue_name)
    response = await client.post(f"/v1/queues/{queue_name}/sweep")
    assert response.status_code == 200, response.text
    assert response.json() == {"reclaimed": 0}


async def test_expired_lease_is_swept_and_the_old_token_is_stale(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, heartbeat=0.3, retries=1)
    [first] = await lease(client, queue_name)
    await asyncio.sleep(0.6)
    response = await client.post(f"/v1/queues/{queue_name}/sweep")
    assert response.status_code == 200, response.text
    assert response.json() == {"reclaimed": 1}
    assert (await get_job(client, first["id"]))["status"] == "queued"
    [second] = await lease(client, queue_name)
    assert second["id"] == first["id"] and second["lease"] != first["lease"]
    assert second["attempts"] == 2

    old = first["lease"]
    base = f"/v1/jobs/{first['id']}"
    assert_error(await _post(client, f"{base}/heartbeat", {"lease": old}), 409, "stale_lease")
    assert_error(
        await _post(client, f"{base}/heartbeat", {"lease": old, "progress": 0.5}),
        409,
        "stale_lease",
    )
    assert_error(
        await _post(client, f"{base}/complete", {"lease": old, "result": "late"}),
        409,
        "stale_lease",
    )
    assert_error(await _post(client, f"{base}/fail", {"lease": old}), 409, "stale_lease")
    current = await get_job(client, first["id"])
    assert current["status"] == "active" and current["result"] is None
    assert current["progress"] == 0

    response = await _post(client, f"{base}/complete", {"lease": second["lease"], "result": "ok"})
    assert response.status_code == 200, response.text
    assert (await get_job(client, first["id"]))["result"] == "ok"


async def test_expired_lease_without_retries_fails_the_job(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    await enqueue(client, queue_name, heartbeat=0.3)
    [job] = await lease(client, queue_name)
    await asyncio.sleep(0.6)
    response = await client.post(f"/v1/queues/{queue_name}/sweep")
    assert response.json() == {"reclaimed": 1}
    failed = await get_job(client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "LeaseExpired"
