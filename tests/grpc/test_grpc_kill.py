"""A worker killed mid-job over the Work stream: its job comes back once the lease
expires, and runs to completion on another worker; nothing is lost."""

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_helpers import GrpcService, start_grpc_service, unique_name
from grpc_worker_main import LEASE_S
from service_fixtures import stop_service

from jobwire import Queue, Status

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("grpc_worker_main.py")


@pytest.fixture
def sweeping_service(redis_url: str) -> Iterator[GrpcService]:
    """A service that reclaims expired leases every 0.2 s."""
    service = start_grpc_service(redis_url, env={"JOBWIRE_SWEEP_INTERVAL_S": "0.2"})
    try:
        yield service
    finally:
        stop_service(service.proc)


def _worker(url: str, queue: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, queue, mode], stdout=subprocess.PIPE, text=True
    )


async def test_a_killed_workers_job_is_redelivered_after_its_lease(
    sweeping_service: GrpcService,
) -> None:
    name = unique_name("kill")
    async with Queue.from_url(sweeping_service.url, name=name) as queue:
        first = await queue.enqueue("task", retries=1)
        behind = [await queue.enqueue("task") for _ in range(3)]
        assert first is not None and None not in behind
        doomed = _worker(sweeping_service.url, name, "hang")
        try:
            assert doomed.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(doomed.stdout.readline), 20)
            assert line.strip() == f"started {first.id}"
            running = await queue.job(first.id)
            assert running is not None and running.status is Status.ACTIVE
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(5)
        finally:
            doomed.kill()
            doomed.wait()
            doomed.stdout.close()
        await asyncio.sleep(LEASE_S / 2)
        still = await queue.job(first.id)
        assert still is not None and still.status is Status.ACTIVE, "reclaimed before its lease"

        rescuer = _worker(sweeping_service.url, name, "quick")
        try:
            done = await queue.wait(first, timeout=15)
            others = [await queue.wait(job, timeout=15) for job in behind if job is not None]
        finally:
            rescuer.send_signal(signal.SIGTERM)
            code = rescuer.wait(15)
            assert rescuer.stdout is not None
            rescuer.stdout.close()
    assert code == 0
    assert done.status is Status.COMPLETE and done.attempts == 2
    assert done.result == f"done by {rescuer.pid}"
    assert [job.status for job in others] == [Status.COMPLETE] * 3
    assert all(job.attempts == 1 for job in others)
