"""Client routes over real sockets: enqueue, batch, apply, read, wait, events, control, views."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from service_helpers import (
    FINISHED,
    assert_error,
    assert_job,
    enqueue,
    get_job,
    lease,
    unique_name,
)

from jobwire import Queue, Worker


async def _complete(client: httpx.AsyncClient, job: dict[str, Any], result: Any) -> None:
    """Report a leased job complete with ``result`` (200 asserted)."""
    body = {"lease": job["lease"], "result": result}
    response = await client.post(f"/v1/jobs/{job['id']}/complete", json=body)
    assert response.status_code == 200, response.text


@contextlib.asynccontextmanager
async def _worker(service_url: str, queue: str, **functions: Any) -> AsyncIterator[Worker]:
    """Run a Python Worker pulling ``queue`` through the service while the block runs."""
    q = Queue.from_url(service_url, name=queue)
    worker = Worker(
        q,
        functions=list(functions.items()),
        poll_interval_s=0.1,
        sweep_interval_s=0.5,
        shutdown_grace_s=1,
        handle_signals=False,
    )
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        await worker.stop()
        await asyncio.wait_for(task, timeout=10)
        await q.close()


async def test_enqueue_answers_201_with_the_job(client: httpx.AsyncClient, queue_name: str) -> None:
    body = {"function": "send", "kwargs": {"to": "a@b.c"}, "retries": 2, "priority": 5,
            "timeout": 12.5, "ttl": 60, "heartbeat": 3}  # fmt: skip
    response = await client.post(f"/v1/queues/{queue_name}/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert_job(job)
    assert job["duplicate"] is False
    assert job["queue"] == queue_name
    assert job["function"] == "send"
    assert job["kwargs"] == {"to": "a@b.c"}
    assert job["status"] == "queued"
    assert (job["retries"], job["priority"], job["timeout"], job["ttl"], job["heartbeat"]) == (
        2, 5, 12.5, 60, 3,
    )  # fmt: skip
    assert job["attempts"] == 0
    assert job["created"] > 0 and job["id"]
    stored = await get_job(client, job["id"])
    assert stored["status"] == "queued" and stored["kwargs"] == {"to": "a@b.c"}


async def test_enqueue_with_a_given_id_and_a_scheduled_time(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job_id = unique_name("id")
    job = await enqueue(client, queue_name, id=job_id, scheduled=time.time() + 3600)
    assert job["id"] == job_id
    assert job["status"] == "scheduled"


async def test_same_key_answers_200_duplicate_with_the_same_id(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    first = await enqueue(client, queue_name, key="k-1", kwargs={"n": 1})
    response = await client.post(
        f"/v1/queues/{queue_name}/jobs", json={"function": "f", "key": "k-1", "kwargs": {"n": 2}}
    )
    assert response.status_code == 200, response.text
    again = response.json()
    assert again["duplicate"] is True
    assert again["id"] == first["id"]
    assert again["kwargs"] == {"n": 1}  # the live job, not the refused one
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert info["counts"]["queued"] == 1


async def test_idempotency_key_header_deduplicates(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    url = f"/v1/queues/{queue_name}/jobs"
    headers = {"Idempotency-Key": "idem-7"}
    first = await client.post(url, json={"function": "f"}, headers=headers)
    second = await client.post(url, json={"function": "f"}, headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert first.json()["key"] == "idem-7"
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    other = await client.post(url, json={"function": "f"}, headers={"Idempotency-Key": "idem-8"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_batch_keeps_order_and_flags_duplicates(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    existing = await enqueue(client, queue_name, key="taken")
    jobs = [{"function": f"fn{i}", "kwargs": {"i": i}} for i in range(5)]
    jobs.insert(2, {"function": "dup", "key": "taken"})
    response = await client.post(f"/v1/queues/{queue_name}/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 200, response.text
    out = response.json()["jobs"]
    assert len(out) == 6
    for job in out:
        assert_job(job)
    assert [j["duplicate"] for j in out] == [False, False, True, False, False, False]
    assert out[2]["id"] == existing["id"]
    assert [j["function"] for j in out if not j["duplicate"]] == [f"fn{i}" for i in range(5)]
    assert [j["kwargs"]["i"] for j in out if not j["duplicate"]] == list(range(5))
    assert len({j["id"] for j in out}) == 6
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert info["counts"]["queued"] == 6


async def test_apply_answers_200_with_the_result_when_a_worker_runs_it(
    client: httpx.AsyncClient, service_url: str, queue_name: str
) -> None:
    async def double(ctx: dict[str, Any], *, n: int) -> int:
        return n * 2

    async with _worker(service_url, queue_name, double=double):
        response = await client.post(
            f"/v1/queues/{queue_name}/jobs/apply",
            params={"wait": 10},
            json={"function": "double", "kwargs": {"n": 21}},
        )
    assert response.status_code == 200, response.text
    job = response.json()
    assert_job(job)
    assert job["status"] == "complete"
    assert job["result"] == 42
    assert job["attempts"] == 1


async def test_apply_answers_202_when_nothing_runs_it(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    started = time.monotonic()
    response = await client.post(
        f"/v1/queues/{queue_name}/jobs/apply", params={"wait": 0.5}, json={"function": "f"}
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert 0.4 <= elapsed < 5, elapsed
    assert (await get_job(client, response.json()["id"]))["status"] == "queued"


async def test_get_job_and_queue_hint(client: httpx.AsyncClient, queue_name: str) -> None:
    job = await enqueue(client, queue_name, kwargs={"x": [1, 2]})
    body = await get_job(client, job["id"])
    assert_job(body)
    assert body["id"] == job["id"] and body["kwargs"] == {"x": [1, 2]}
    assert "lease" not in body
    hinted = await client.get(f"/v1/jobs/{job['id']}", params={"queue": queue_name})
    assert hinted.status_code == 200 and hinted.json()["id"] == job["id"]
    elsewhere = await client.get(f"/v1/jobs/{job['id']}", params={"queue": unique_name()})
    assert_error(elsewhere, 404, "not_found")


async def test_get_wait_returns_as_soon_as_the_job_finishes(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    [leased] = await lease(client, queue_name)

    async def finish_soon() -> None:
        await asyncio.sleep(0.3)
        await _complete(client, leased, {"ok": True})

    started = time.monotonic()
    finisher = asyncio.create_task(finish_soon())
    response = await client.get(f"/v1/jobs/{job['id']}", params={"wait": 20})
    elapsed = time.monotonic() - started
    await finisher
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "complete"
    assert response.json()["result"] == {"ok": True}
    assert 0.25 <= elapsed < 3, elapsed


async def test_get_wait_on_an_unfinished_job_answers_200_after_the_wait(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    started = time.monotonic()
    response = await client.get(f"/v1/jobs/{job['id']}", params={"wait": 0.4})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert time.monotonic() - started >= 0.35


async def _read_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Parse a Server-Sent Events stream into (event, data) pairs."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, orjson.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        yield event, orjson.loads("\n".join(data))


async def test_events_stream_the_job_until_it_finishes(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    events: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(15):
        async with client.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event, data in _read_events(response):
                events.append((event, data))
                if len(events) == 1:
                    [leased] = await lease(client, queue_name)
                    await _complete(client, leased, "done")
    assert events, "no event at all"
    first_event, first = events[0]
    assert first_event == "job" and first["id"] == job["id"] and first["status"] == "queued"
    last_event, last = events[-1]
    assert last_event == "job" and last["status"] in FINISHED
    assert last["status"] == "complete" and last["result"] == "done"
    assert all(name == "job" for name, _ in events), events


async def test_events_of_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"/v1/jobs/{unique_name('nope')}/events"), 404, "not_found")


async def test_abort_a_queued_job_at_once(client: httpx.AsyncClient, queue_name: str) -> None:
    job = await enqueue(client, queue_name)
    response = await client.post(f"/v1/jobs/{job['id']}/abort", json={"error": "changed my mind"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "aborted"
    stored = await get_job(client, job["id"])
    assert stored["status"] == "aborted"
    assert stored["error"]["message"] == "changed my mind"
    assert await lease(client, queue_name) == []


async def test_abort_without_a_body(client: httpx.AsyncClient, queue_name: str) -> None:
    job = await enqueue(client, queue_name)
    response = await client.post(f"/v1/jobs/{job['id']}/abort")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "aborted"


async def test_abort_an_active_job_marks_it_aborting(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    [leased] = await lease(client, queue_name)
    response = await client.post(f"/v1/jobs/{job['id']}/abort", json={"error": "stop"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "aborting"
    assert leased["id"] == job["id"]


async def test_retry_a_finished_job_and_refuse_a_live_one(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    live = await client.post(f"/v1/jobs/{job['id']}/retry")
    assert_error(live, 409, "invalid_state")
    [leased] = await lease(client, queue_name)
    active = await client.post(f"/v1/jobs/{job['id']}/retry")
    assert_error(active, 409, "invalid_state")
    await _complete(client, leased, 1)
    response = await client.post(f"/v1/jobs/{job['id']}/retry")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert (await get_job(client, job["id"]))["status"] == "queued"
    [again] = await lease(client, queue_name)
    assert again["id"] == job["id"] and again["attempts"] >= 1


async def test_delete_answers_204_then_the_job_is_gone(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    job = await enqueue(client, queue_name)
    response = await client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_error(await client.get(f"/v1/jobs/{job['id']}"), 404, "not_found")
    assert_error(await client.delete(f"/v1/jobs/{job['id']}"), 404, "not_found")


async def test_list_queues_and_queue_info(client: httpx.AsyncClient, queue_name: str) -> None:
    for _ in range(3):
        await enqueue(client, queue_name)
    await enqueue(client, queue_name, scheduled=time.time() + 3600)
    response = await client.get("/v1/queues")
    assert response.status_code == 200, response.text
    by_name = {q["name"]: q for q in response.json()["queues"]}
    assert queue_name in by_name
    assert by_name[queue_name]["counts"]["queued"] == 3
    assert by_name[queue_name]["counts"]["scheduled"] == 1

    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert info["name"] == queue_name
    assert info["counts"]["queued"] == 3 and info["counts"]["scheduled"] == 1
    assert info["counts"]["active"] == 0
    assert info["workers"] == []

    [leased] = await lease(client, queue_name, worker_id="w-info")
    info = (await client.get(f"/v1/queues/{queue_name}")).json()
    assert info["counts"]["queued"] == 2 and info["counts"]["active"] == 1
    assert [w["id"] for w in info["workers"]] == ["w-info"]
    assert leased["worker"] == "w-info"


async def test_list_jobs_filters_and_pages(client: httpx.AsyncClient, queue_name: str) -> None:
    a_ids = [(await enqueue(client, queue_name, function="a"))["id"] for _ in range(5)]
    aborted = await enqueue(client, queue_name, function="a")
    await client.post(f"/v1/jobs/{aborted['id']}/abort")
    url = f"/v1/queues/{queue_name}/jobs"

    everything = (await client.get(url)).json()
    assert {j["id"] for j in everything["jobs"]} == {*a_ids, aborted["id"]}
    assert everything["next_cursor"] is None

    queued = (await client.get(url, params={"status": "queued"})).json()
    assert {j["id"] for j in queued["jobs"]} == set(a_ids)
    assert all(j["status"] == "queued" for j in queued["jobs"])
    only_aborted = (await client.get(url, params={"status": "aborted"})).json()
    assert [j["id"] for j in only_aborted["jobs"]] == [aborted["id"]]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"status": "queued", "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await client.get(url, params=params)).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "paging does not end"
    assert pages == 3
    assert sorted(seen) == sorted(a_ids) and len(seen) == len(set(seen))


async def test_list_jobs_function_filter_finds_jobs_past_the_first_page(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    for _ in range(5):
        await enqueue(client, queue_name, function="a")
    b_ids = {(await enqueue(client, queue_name, function="b"))["id"] for _ in range(2)}
    url = f"/v1/queues/{queue_name}/jobs"
    response = await client.get(url, params={"function": "b"})
    assert response.status_code == 200
    assert {j["id"] for j in response.json()["jobs"]} == b_ids
    # A small page must still find the "b" jobs queued behind five "a" jobs.
    small = (await client.get(url, params={"function": "b", "limit": 2})).json()
    assert {j["id"] for j in small["jobs"]} == b_ids, small


async def test_concurrent_enqueues_with_one_key_create_one_job(
    client: httpx.AsyncClient, queue_name: str
) -> None:
    """Enqueues that arrive together are stored together (group commit): dedup holds
    within the batch, and every request gets its own answer."""
    body = {"function": "f", "key": "together"}
    responses = await asyncio.gather(
        *(client.post(f"/v1/queues/{queue_name}/jobs", json=body) for _ in range(40))
    )
    assert sorted(r.status_code for r in responses) == [200] * 39 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = (await client.get(f"/v1/queues/{queue_name}/jobs")).json()["jobs"]
    assert len(listed) == 1
