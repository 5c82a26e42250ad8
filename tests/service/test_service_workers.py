"""Python Workers pulling through the service: many jobs, and a worker killed mid-job."""

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from service_helpers import enqueue, get_job, kill, wait_for_status

from jobwire import Job, Queue, Worker

WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, os
    from jobwire import Queue, Worker

    async def slow(ctx, **kwargs):
        await asyncio.sleep(60)

    async def main():
        queue = Queue.from_url(os.environ["JOBWIRE_URL"], name=os.environ["JOBWIRE_QUEUE"])
        worker = Worker(queue, functions=[slow], concurrency=1, poll_interval_s=0.1,
                        sweep_interval_s=3600, handle_signals=False, id="doomed")
        await worker.start()

    asyncio.run(main())
    """
)


@contextlib.asynccontextmanager
async def _running(queue: Queue, functions: list[Any], **options: Any) -> AsyncIterator[Worker]:
    """Run a Worker in this process while the block runs; a crash fails the test."""
    options = {"poll_interval_s": 0.1, "shutdown_grace_s": 1, "handle_signals": False, **options}
    worker = Worker(queue, functions=functions, **options)
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        await worker.stop()
        await asyncio.wait_for(task, timeout=10)


def _start_worker_process(service_url: str, queue: str) -> subprocess.Popen[bytes]:
    """A process running a Worker (id "doomed") over HTTP whose ``slow`` task sleeps 60 s."""
    env = {**os.environ, "JOBWIRE_URL": service_url, "JOBWIRE_QUEUE": queue}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def _counts(client: httpx.AsyncClient, queue: str) -> dict[str, int]:
    """The queue's counts per status."""
    response = await client.get(f"/v1/queues/{queue}")
    assert response.status_code == 200, response.text
    return dict(response.json()["counts"])


async def test_a_worker_through_the_service_runs_50_jobs_once_each(
    client: httpx.AsyncClient, service_url: str, queue_name: str
) -> None:
    async def double(ctx: dict[str, Any], *, n: int) -> int:
        await asyncio.sleep(0.01)
        return n * 2

    async with Queue.from_url(service_url, name=queue_name) as queue:
        jobs = await queue.enqueue_many(Job("double", kwargs={"n": n}) for n in range(50))
        assert all(job is not None for job in jobs)
        async with _running(queue, [double], concurrency=10):
            deadline = time.monotonic() + 30
            while (await _counts(client, queue_name))["complete"] < 50:
                assert time.monotonic() < deadline, await _counts(client, queue_name)
                await asyncio.sleep(0.1)

    counts = await _counts(client, queue_name)
    assert counts["complete"] == 50
    assert sum(counts.values()) == 50, counts
    page = (await client.get(f"/v1/queues/{queue_name}/jobs", params={"status": "complete"})).json()
    assert len(page["jobs"]) == 50
    assert {j["kwargs"]["n"] * 2 for j in page["jobs"]} == {j["result"] for j in page["jobs"]}
    assert all(j["result"] == j["kwargs"]["n"] * 2 for j in page["jobs"])
    assert all(j["attempts"] == 1 for j in page["jobs"]), [j["attempts"] for j in page["jobs"]]


@pytest.mark.slow
async def test_a_killed_worker_s_job_is_swept_and_run_by_another(
    client: httpx.AsyncClient, service_url: str, queue_name: str
) -> None:
    job = await enqueue(client, queue_name, function="slow", heartbeat=1, retries=1)
    proc = _start_worker_process(service_url, queue_name)
    try:
        active = await wait_for_status(client, job["id"], "active", timeout=20)
        assert active["worker"] == "doomed" and active["attempts"] == 1
        # While the worker lives it renews the 1 s lease: a sweep takes nothing.
        await asyncio.sleep(1.5)
        assert (await client.post(f"/v1/queues/{queue_name}/sweep")).json() == {"reclaimed": 0}
        assert (await get_job(client, job["id"]))["status"] == "active"
    finally:
        kill(proc)
        assert proc.stdout is not None
        output = proc.stdout.read().decode(errors="replace")
        proc.stdout.close()
    assert proc.returncode == -9, output

    deadline = time.monotonic() + 10
    reclaimed = 0
    while reclaimed == 0:
        assert time.monotonic() < deadline, "the dead worker's job was never reclaimed"
        await asyncio.sleep(0.2)
        response = await client.post(f"/v1/queues/{queue_name}/sweep")
        assert response.status_code == 200, response.text
        reclaimed = response.json()["reclaimed"]
    assert reclaimed == 1
    requeued = await get_job(client, job["id"])
    assert requeued["status"] == "queued" and requeued["attempts"] == 1, requeued

    async def quick(ctx: dict[str, Any], **kwargs: Any) -> str:
        return "rescued"

    async with (
        Queue.from_url(service_url, name=queue_name) as queue,
        _running(queue, [("slow", quick)]),
    ):
        done = await wait_for_status(client, job["id"], "complete", "failed", timeout=15)
    assert done["status"] == "complete", done
    assert done["result"] == "rescued" and done["attempts"] == 2
    counts = await _counts(client, queue_name)
    assert counts["complete"] == 1 and sum(counts.values()) == 1, counts  # nothing lost
