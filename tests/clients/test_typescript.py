"""The TypeScript client (clients/typescript) against a real `jobwire serve`.

One test runs the package's own `node --test` suite; the others mix languages on one
queue: a Node worker runs jobs a Python client enqueued, a Python worker runs jobs a Node
client enqueued, and a Node and a Python worker drain one queue together.
"""

import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from clients_helpers import Service, run

from jobwire import Queue, Worker
from jobwire.errors import JobFailed
from jobwire.job import Job, Status

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("typescript")]  # one build

NODE_SUITE_TIMEOUT_S = 120


def _queue_name(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


@pytest.mark.timeout(NODE_SUITE_TIMEOUT_S + 120)  # + npm ci and tsc on a cold checkout
def test_node_test_suite_passes(typescript_build: Path, token_service: Service) -> None:
    tests = sorted(
        str(p.relative_to(typescript_build)) for p in typescript_build.glob("build/*.test.js")
    )
    assert len(tests) >= 3, tests
    try:
        done = subprocess.run(
            ["node", "--test", *tests],
            cwd=typescript_build,
            env=token_service.env("admin"),
            capture_output=True,
            text=True,
            timeout=NODE_SUITE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node --test timed out:\n{exc.stdout}\n{exc.stderr}\n{token_service.log()}")
    output = f"{done.stdout}\n{done.stderr}"
    counts = dict(re.findall(r"^# (pass|fail|cancelled|skipped) (\d+)$", done.stdout, re.M))
    assert done.returncode == 0, f"node --test exited {done.returncode}:\n{output}"
    assert counts.get("fail") == "0" and counts.get("cancelled") == "0", output
    assert counts.get("skipped") == "0", f"tests were skipped:\n{output}"
    assert int(counts.get("pass", "0")) >= 40, output


class NodeProcess:
    """A Node script run by a test, its stdout read as JSON lines in the background."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    async def wait_for(self, predicate: Any, what: str, timeout_s: float = 15.0) -> dict[str, Any]:
        """The first event matching ``predicate`` (fails the test after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                if self._reader.done():
                    pytest.fail(f"node exited before {what}:\n{await self.output()}")
                self._changed.clear()
                await self._changed.wait()

    async def output(self) -> str:
        stderr = b""
        if self.proc.stderr is not None and self.proc.returncode is not None:
            stderr = await self.proc.stderr.read()
        return "\n".join(self.lines) + "\n" + stderr.decode(errors="replace")

    async def finish(self, timeout_s: float = 20.0) -> int:
        """Wait for the process to exit (killing it after ``timeout_s``)."""
        try:
            async with asyncio.timeout(timeout_s):
                code = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await self._reader
        return code


@contextlib.asynccontextmanager
async def node(script: Path, *args: str, env: dict[str, str]) -> AsyncIterator[NodeProcess]:
    """Run ``node script args...``; it is killed on the way out if it still runs."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        *args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    runner = NodeProcess(proc)
    try:
        yield runner
    finally:
        if proc.returncode is None:
            proc.kill()
        await runner.finish()


async def test_node_worker_runs_jobs_a_python_client_enqueued(
    typescript_build: Path, token_service: Service
) -> None:
    name = _queue_name("ts-node-worker")
    script = typescript_build / "build" / "interop" / "worker.js"
    # The Node worker holds a worker token, the Python producer a client token.
    async with (
        node(script, name, "4", env=token_service.env("worker")) as worker,
        Queue.from_url(token_service.url_with("client"), name=name) as queue,
    ):
        await worker.wait_for(lambda e: e["event"] == "ready", "ready")
        assert await queue.apply("add", a=2, b=3, wait_timeout=20) == 5

        jobs = [await queue.enqueue("describe", i=i, retries=1) for i in range(10)]
        for i, job in enumerate(jobs):
            assert job is not None
            done = await queue.wait(job, timeout=20)
            assert done.status == Status.COMPLETE
            assert done.result == {"by": "node", "attempts": 1, "kwargs": {"i": i}}

        with pytest.raises(JobFailed) as failed:
            await queue.apply("boom", message="python says no", retries=1, wait_timeout=20)
        job = failed.value.job
        assert (job.status, job.attempts) == (Status.FAILED, 2)  # retried by the service
        assert job.error is not None
        assert (job.error.type, job.error.message) == ("RangeError", "python says no")
        assert "worker.js" in job.error.traceback

        assert await queue.apply("flaky", retries=2, wait_timeout=20) == "ok on attempt 2"

        running = await queue.enqueue("wait_for_abort")
        assert running is not None
        await worker.wait_for(lambda e: e.get("job") == running.id, "the job to start")
        await queue.abort(running, error="python aborted it")
        aborted = await queue.wait(running, timeout=20)
        assert aborted.status == Status.ABORTED
        assert aborted.error is not None and aborted.error.message == "python aborted it"
        await worker.wait_for(
            lambda e: e["event"] == "abort_seen" and e["job"] == running.id, "the abort signal"
        )

        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.finish() == 0, await worker.output()
        assert worker.events[-1] == {"event": "stopped"}, await worker.output()


async def py_add(ctx: dict[str, Any], *, a: int, b: int) -> int:
    return a + b


async def py_boom(ctx: dict[str, Any], *, message: str) -> None:
    raise ValueError(message)


async def py_progress(ctx: dict[str, Any]) -> str:
    await ctx["job"].update(progress=0.5)
    await asyncio.sleep(0.3)
    return "done"


async def py_wait(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(60)


@contextlib.asynccontextmanager
async def python_worker(
    queue: Queue, functions: list[Any], **options: Any
) -> AsyncIterator[Worker]:
    """A Python Worker over HTTP, running in this event loop."""
    worker = Worker(queue, functions, handle_signals=False, shutdown_grace_s=5, **options)
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        await worker.stop()
        await task


async def test_python_worker_runs_jobs_a_node_client_enqueued(
    typescript_build: Path, token_service: Service
) -> None:
    name = _queue_name("ts-node-client")
    script = typescript_build / "build" / "interop" / "client.js"
    async with (
        Queue.from_url(token_service.url_with("worker"), name=name) as queue,
        python_worker(queue, [py_add, py_boom, py_progress, py_wait], concurrency=4),
        node(script, name, env=token_service.env("client")) as client,
    ):
        code = await client.finish(timeout_s=45)
        output = await client.output()
        assert code == 0, output
        report = client.events[-1]

    assert report["apply"] == 42, output
    assert report["batch"] == [2, 4, 6, 8, 10], output
    assert report["boom"] == {
        "code": "job_failed",
        "status": "failed",
        "attempts": 2,
        "type": "ValueError",
        "message": "from node",
    }, output
    watch = report["watch"]
    assert watch["statuses"][-1] == "complete", output
    assert "active" in watch["statuses"] and 0.5 in watch["progress"], output
    assert watch["result"] == "done", output
    assert report["abort"] == {"status": "aborted", "message": "node says stop"}, output


async def test_node_and_python_workers_drain_one_queue(
    typescript_build: Path, token_service: Service
) -> None:
    name = _queue_name("ts-shared")
    script = typescript_build / "build" / "interop" / "worker.js"
    ran_in_python: list[str] = []

    async def record(ctx: dict[str, Any], *, i: int, ms: int) -> dict[str, Any]:
        ran_in_python.append(ctx["job"].id)
        await asyncio.sleep(ms / 1000)
        return {"by": "python", "i": i}

    async with (
        Queue.from_url(token_service.url_with("admin"), name=name) as queue,
        node(script, name, "3", env=token_service.env("worker")) as node_worker,
        python_worker(queue, [record], concurrency=3),
    ):
        await node_worker.wait_for(lambda e: e["event"] == "ready", "ready")
        await asyncio.sleep(0.3)  # both are long-polling for work now
        jobs = await queue.enqueue_many([Job("record", {"i": i, "ms": 50}) for i in range(36)])
        ids = [job.id for job in jobs if job is not None]
        assert len(ids) == 36
        finished = [await queue.wait(job_id, timeout=30) for job_id in ids]
        node_worker.proc.send_signal(signal.SIGTERM)
        assert await node_worker.finish() == 0, await node_worker.output()

    ran_in_node = [e["job"] for e in node_worker.events if e.get("event") == "ran"]
    assert ran_in_node and ran_in_python, (
        f"both workers should have run some jobs: node {len(ran_in_node)}, "
        f"python {len(ran_in_python)}"
    )
    runs = ran_in_node + ran_in_python
    assert sorted(runs) == sorted(ids), "every job ran exactly once"
    for job in finished:
        assert job.status == Status.COMPLETE and job.attempts == 1, job
        by = "node" if job.id in ran_in_node else "python"
        assert job.result == {"by": by, "i": job.kwargs["i"]}
    print(f"node ran {len(ran_in_node)} jobs, python {len(ran_in_python)}", file=sys.stderr)


@pytest.mark.timeout(300)
def test_npm_pack_on_a_fresh_checkout_gives_an_installable_package(
    typescript_build: Path, tmp_path: Path, token_service: Service
) -> None:
    npm = shutil.which("npm")
    assert npm is not None
    fresh = tmp_path / "fresh"  # the committed files only: no dist/, no build/
    listed = subprocess.run(
        ["git", "ls-files", "."], cwd=typescript_build, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed, "clients/typescript has no committed files"
    for name in listed:
        (fresh / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(typescript_build / name, fresh / name)
    (fresh / "node_modules").symlink_to(typescript_build / "node_modules")  # tsc, offline
    run([npm, "pack", "--silent"], fresh, timeout=120)
    [tarball] = fresh.glob("jobwire-client-*.tgz")
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "p", "private": true, "type": "module"}')
    run([npm, "install", "--offline", "--no-audit", "--no-fund", str(tarball)], project, 120)
    installed = project / "node_modules" / "@jobwire" / "client"
    assert (installed / "README.md").exists()
    for source_map in (installed / "dist").glob("*.js.map"):
        for source in json.loads(source_map.read_text())["sources"]:
            assert (source_map.parent / source).resolve().exists(), (source_map, source)
    script = (
        "import { Client } from '@jobwire/client';"
        "const c = new Client();"
        "const job = await c.enqueue('packed', { n: 1 }, { queue: 'packed-install' });"
        "console.log(JSON.stringify((await c.queueInfo({ queue: 'packed-install' })).counts));"
        "console.log(job.status);"
    )
    out = run(["node", "--input-type=module", "-e", script], project, 60, token_service.env())
    assert out.split()[-1] == "queued", out
