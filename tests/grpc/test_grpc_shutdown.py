"""SIGTERM with streaming workers: pushed but unstarted jobs are handed back, running
ones are reported within the grace period, the process exits 0 before the grace ends."""

import asyncio
import signal
import time
from typing import Any

import pytest
from grpc_helpers import GrpcService, RawWork, start_grpc_service, stubs, unique_name
from service_fixtures import stop_service

from jobwire import Queue, Status, Worker
from jobwire.v1 import jobwire_pb2 as pb

pytestmark = pytest.mark.slow

GRACE_S = 5.0


async def _exit_code(service: GrpcService, timeout_s: float) -> tuple[int | None, float]:
    started = time.monotonic()
    try:
        code: int | None = await asyncio.to_thread(service.proc.wait, timeout_s)
    except Exception:
        code = None
    return code, time.monotonic() - started


@pytest.fixture
async def service(redis_url: str) -> Any:
    """A service of this test's own, with a 5 s grace period."""
    started = start_grpc_service(redis_url, env={"JOBWIRE_SHUTDOWN_GRACE_S": str(GRACE_S)})
    try:
        yield started
    finally:
        stop_service(started.proc)


async def test_a_raw_worker_is_asked_to_hand_back_and_the_service_waits_for_it(
    service: GrpcService, redis_url: str
) -> None:
    name = unique_name("drain")
    async with stubs(service.target) as api:
        specs = [pb.JobSpec(function="f") for _ in range(3)]
        await api.jobs.EnqueueBatch(pb.EnqueueBatchRequest(queue=name, jobs=specs))
        stream = RawWork(api, name)
        stream.credit(3)
        first, second, third = await stream.jobs(3)
        service.proc.send_signal(signal.SIGTERM)
        drain = await stream.recv()
        assert drain.WhichOneof("kind") == "drain" and drain.drain.grace_s == GRACE_S
        await asyncio.sleep(0.5)
        assert service.proc.poll() is None, "exited while a worker still held jobs"
        outcomes = [
            pb.Outcome(job_id=first.id, lease=first.lease, status=pb.STATUS_QUEUED),
            pb.Outcome(job_id=second.id, lease=second.lease, status=pb.STATUS_QUEUED),
            pb.Outcome(job_id=third.id, lease=third.lease, status=pb.STATUS_COMPLETE),
        ]
        stream.send(pb.WorkRequest(results=pb.WorkResults(request_id=1, outcomes=outcomes)))
        assert list((await stream.recv()).results.settled) == [True, True, True]
        stream.close()
        assert (await stream.ended()).name == "OK"
    code, took = await _exit_code(service, GRACE_S + 5)
    assert code == 0 and took < GRACE_S, f"exit {code} after {took:.1f} s"
    async with Queue.from_url(redis_url, name=name) as queue:
        statuses = [(await queue.job(job.id)).status for job in (first, second, third)]  # type: ignore[union-attr]
    assert statuses == [Status.QUEUED, Status.QUEUED, Status.COMPLETE]


async def test_the_sdk_hands_back_jobs_pushed_but_not_taken(
    service: GrpcService, redis_url: str
) -> None:
    name = unique_name("buffer")
    async with Queue.from_url(service.url, name=name) as queue:
        assert await queue.lease("sdk-worker", 3, wait_s=0.2) == ([], None)  # 3 credits
        jobs = [await queue.enqueue("f") for _ in range(3)]
        for job in jobs:
            assert job is not None
            for _ in range(50):
                current = await queue.job(job.id)
                if current is not None and current.status is Status.ACTIVE:
                    break
                await asyncio.sleep(0.05)
            assert current is not None and current.worker == "sdk-worker"
        service.proc.send_signal(signal.SIGTERM)
        code, took = await _exit_code(service, GRACE_S + 5)
    assert code == 0 and took < GRACE_S, f"exit {code} after {took:.1f} s"
    async with Queue.from_url(redis_url, name=name) as direct:
        stored = [await direct.job(job.id) for job in jobs if job is not None]
    assert [job.status for job in stored if job is not None] == [Status.QUEUED] * 3


async def test_a_running_job_is_reported_through_the_drain(
    service: GrpcService, redis_url: str
) -> None:
    name = unique_name("finish")
    started = asyncio.Event()

    async def slow(ctx: dict[str, Any]) -> str:
        started.set()
        await asyncio.sleep(1.0)
        return "finished during the drain"

    queue = Queue.from_url(service.url, name=name)
    worker = Worker(queue, functions=[slow], handle_signals=False, poll_interval_s=0.1)
    running = asyncio.create_task(worker.start())
    try:
        job = await queue.enqueue("slow")
        assert job is not None
        await asyncio.wait_for(started.wait(), 5)
        service.proc.send_signal(signal.SIGTERM)
        code, took = await _exit_code(service, GRACE_S + 5)
    finally:
        await worker.stop()
        await running
        await queue.close()
    assert code == 0 and 0.5 < took < GRACE_S, f"exit {code} after {took:.1f} s"
    async with Queue.from_url(redis_url, name=name) as direct:
        done = await direct.job(job.id)
    assert done is not None and done.status is Status.COMPLETE
    assert done.result == "finished during the drain"
