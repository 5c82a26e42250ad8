"""A client written without our Python code: Node.js with @grpc/grpc-js, loading protos/
at run time, enqueues a job and watches it to completion while a Python worker runs it."""

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from grpc_helpers import GrpcService, unique_name

from jobwire import Queue, Worker

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).with_name("node")
NPM_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The Node client script, its dependencies installed (`npm ci`) if missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the cross-language gRPC test")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
        )  # fmt: skip
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}{done.stderr}"
    return NODE_DIR / "client.js"


@pytest.mark.timeout(NPM_TIMEOUT_S + 60)
async def test_node_enqueues_and_watches_a_job_a_python_worker_runs(
    grpc_service: GrpcService, node_client: Path
) -> None:
    name = unique_name("node")

    async def greet(ctx: dict[str, Any], *, name: str) -> str:
        await asyncio.sleep(0.2)  # long enough for the watcher to see it active
        return f"hello {name}"

    queue = Queue.from_url(grpc_service.url, name=name)
    worker = Worker(queue, functions=[greet], handle_signals=False)
    running = asyncio.create_task(worker.start())
    try:
        node = await asyncio.create_subprocess_exec(
            "node", str(node_client), grpc_service.target, name,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(node.communicate(), 30)
    finally:
        await worker.stop()
        await running
    assert node.returncode == 0, err.decode()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["result"] == "hello node"
    assert report["statuses"][-1] == "STATUS_COMPLETE"
    assert "STATUS_ACTIVE" in report["statuses"]
    job = await queue.job(report["id"])
    await queue.close()
    assert job is not None and job.result == "hello node" and job.queue == name
