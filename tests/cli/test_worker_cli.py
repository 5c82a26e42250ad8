"""The `jobwire worker` command as a real process: signals, burst mode, several processes."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from jobwire import Queue, Status

SETTINGS = textwrap.dedent(
    """
    import asyncio, os
    from jobwire import Queue

    async def quick(ctx, *, n):
        return n * 2

    async def slow(ctx):
        await asyncio.sleep(30)

    settings = {
        "queue": Queue.from_url(os.environ["JOBWIRE_URL"], name=os.environ["JOBWIRE_QUEUE"]),
        "functions": [quick, slow],
        "concurrency": 4,
        "shutdown_grace_s": 0.5,
    }
    """
)


@pytest.fixture
def settings_module(tmp_path: Path) -> Iterator[str]:
    """A settings module importable by the worker process; yields its dotted path."""
    module = f"cli_settings_{uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SETTINGS)
    yield f"{module}.settings"


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    """A fresh queue on the test Redis."""
    q = Queue.from_url(redis_url, name=f"cli-{uuid4().hex[:10]}")
    yield q
    await q.close()


def start_worker(queue: Queue, redis_url: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """Run `jobwire worker ARGS` with the test queue in its environment."""
    env = {**os.environ, "JOBWIRE_URL": redis_url, "JOBWIRE_QUEUE": queue.name}
    command = [sys.executable, "-m", "jobwire.cli", "worker", *args]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


async def wait_exit(proc: subprocess.Popen[str], timeout_s: float) -> tuple[int, str]:
    """Wait for the process to exit without blocking the event loop."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(
                f"worker did not exit within {timeout_s} s:\n{proc.communicate()[0]}"
            )
        await asyncio.sleep(0.05)
    return proc.returncode, proc.communicate()[0]


async def test_sigterm_requeues_the_running_job_and_exits(
    queue: Queue, redis_url: str, settings_module: str, tmp_path: Path
) -> None:
    proc = start_worker(queue, redis_url, tmp_path, settings_module)
    job = await queue.enqueue("slow")
    assert job is not None
    deadline = time.monotonic() + 10
    while (await queue.job(job.id)).status is not Status.ACTIVE:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the worker never started the job"
        await asyncio.sleep(0.05)

    proc.send_signal(signal.SIGTERM)
    code, output = await wait_exit(proc, timeout_s=8)

    assert code == 0, output
    assert "stopping gracefully" in output
    requeued = await queue.job(job.id)
    assert requeued is not None
    assert requeued.status is Status.QUEUED  # not stranded in active
    assert requeued.attempts == 1


async def test_burst_with_two_processes_drains_the_queue_and_exits(
    queue: Queue, redis_url: str, settings_module: str, tmp_path: Path
) -> None:
    jobs = [await queue.enqueue("quick", n=n) for n in range(40)]

    proc = start_worker(queue, redis_url, tmp_path, settings_module, "--burst", "--workers", "2")
    code, output = await wait_exit(proc, timeout_s=30)

    assert code == 0, output
    done = [await queue.job(job.id) for job in jobs if job is not None]
    assert [j.status for j in done if j is not None] == [Status.COMPLETE] * 40
    assert sorted(j.result for j in done if j is not None) == [n * 2 for n in range(40)]
    assert len({j.worker for j in done if j is not None}) <= 2


async def test_bad_settings_path_is_a_clear_error(tmp_path: Path, redis_url: str) -> None:
    q = Queue.from_url(redis_url)
    proc = start_worker(q, redis_url, tmp_path, "nodots")
    code, output = await wait_exit(proc, timeout_s=15)
    await q.close()
    assert code != 0
    assert "dotted path" in output
