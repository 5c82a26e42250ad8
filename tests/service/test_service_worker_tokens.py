"""Workers on a service with tokens: a worker token enqueues (cron ticks, follow-up jobs) over
http:// and grpc://; a refused token stops the worker with one line; an unreachable service
is logged once per change of state, not once per try."""

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from service_fixtures import free_port, start_service, stop_service

from jobwire import CronJob, Queue, Status, Worker

TOKENS = "tk-adm:admin,tk-wrk:worker,tk-cli:client"


@pytest.fixture(scope="module")
def guarded(redis_url: str) -> Iterator[dict[str, str]]:
    """A service with tokens, on both ports: base URLs (without a token) by scheme."""
    port = free_port()
    proc, http, _ = start_service(redis_url, env={"JOBWIRE_TOKENS": TOKENS}, grpc_port=port)
    try:
        yield {"http": http, "grpc": f"grpc://127.0.0.1:{port}"}
    finally:
        stop_service(proc)


def _with_token(url: str, token: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://:{token}@{rest}"


@pytest.mark.parametrize("scheme", ["http", "grpc"])
async def test_a_worker_token_runs_cron_jobs_and_enqueues_follow_ups(
    scheme: str, guarded: dict[str, str]
) -> None:
    name = f"wtok-{scheme}-{uuid4().hex[:8]}"
    url = _with_token(guarded[scheme], "tk-wrk")
    followed = asyncio.Event()

    async def tick(ctx: dict[str, object]) -> str:
        queue = ctx["queue"]
        assert isinstance(queue, Queue)
        follow = await queue.enqueue("follow_up", n=1)  # a follow-up on the worker's token
        assert follow is not None
        return follow.id

    async def follow_up(ctx: dict[str, object], *, n: int) -> int:
        followed.set()
        return n + 1

    async with Queue.from_url(url, name=name) as queue:
        worker = Worker(
            queue,
            functions=[follow_up],
            cron_jobs=[CronJob(tick, cron="* * * * * *")],  # every second
            handle_signals=False,
            poll_interval_s=0.2,
        )
        task = asyncio.create_task(worker.start())
        try:
            async with asyncio.timeout(15):
                await followed.wait()
        finally:
            await worker.stop()
            await task
    async with Queue.from_url(_with_token(guarded["http"], "tk-adm"), name=name) as admin:
        jobs = await admin.jobs(status=Status.COMPLETE)
    functions = {job.function for job in jobs}
    assert {"tick", "follow_up"} <= functions, functions


SETTINGS = textwrap.dedent(
    """
    import os
    from jobwire import Queue

    async def noop(ctx):
        return None

    settings = {"queue": Queue.from_url(os.environ["JOBWIRE_URL"], name="wtok-cli"),
                "functions": [noop], "poll_interval_s": 0.05}
    """
)


def _run_worker(tmp_path: Path, url: str, token: str, timeout_s: float) -> tuple[int | None, str]:
    module = f"wtok_settings_{uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SETTINGS)
    env = {**os.environ, "JOBWIRE_URL": url, "JOBWIRE_TOKEN": token}
    command = [sys.executable, "-m", "jobwire.cli", "worker", f"{module}.settings"]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        return None, out
    return proc.returncode, out


@pytest.mark.parametrize("scheme", ["http", "grpc"])
@pytest.mark.parametrize("token", ["not-a-token", "tk-cli"])  # 401, 403
def test_a_refused_token_stops_the_worker_with_one_line(
    scheme: str, token: str, guarded: dict[str, str], tmp_path: Path
) -> None:
    code, out = _run_worker(tmp_path, guarded[scheme], token, timeout_s=20)
    assert code == 1, out
    refused = [line for line in out.splitlines() if "refused its token" in line]
    assert len(refused) == 1, out
    assert "Traceback" not in out, out


async def test_an_unreachable_service_is_logged_once_per_state_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens here
    async with Queue.from_url(f"http://127.0.0.1:{port}", name="wtok-down") as queue:
        worker = Worker(queue, functions=[], handle_signals=False, poll_interval_s=0.01)
        with caplog.at_level(logging.INFO, logger="jobwire.worker"):
            task = asyncio.create_task(worker.start())
            await asyncio.sleep(2.0)
            await worker.stop()
            await task
    failures = [r for r in caplog.records if "leasing jobs failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert not any(r.exc_info for r in caplog.records)
    # Backing off: 2 s at 0.01 s doubling to BACKOFF_MAX_S is about ten tries, not 200.
    assert worker._lease_trouble.failures < 20
