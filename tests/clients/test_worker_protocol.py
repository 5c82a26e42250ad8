"""docs/worker-protocol.md's complete worker, as written there, against a real service:
complete, fail, abort (noticed by its heartbeat, ended `aborted`), and a refused token."""

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from clients_helpers import TOKENS, Service

DOC = Path(__file__).resolve().parents[2] / "docs" / "worker-protocol.md"
MAX_LINES = 150


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- worker-protocol-example -->\n```js\n(.*?)```", text, re.S)
    assert match, "docs/worker-protocol.md lost its example"
    return match.group(1)


def test_the_example_is_a_short_worker() -> None:
    assert len(_example().splitlines()) < MAX_LINES


@pytest.fixture
def worker(tmp_path: Path, token_service: Service) -> Iterator[tuple[subprocess.Popen[str], str]]:
    script = tmp_path / "worker.mjs"
    script.write_text(_example(), encoding="utf-8")
    queue = f"proto-{uuid4().hex[:10]}"
    env = {**token_service.env("worker"), "JOBWIRE_QUEUE": queue}
    proc = subprocess.Popen(
        ["node", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield proc, queue
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def _wait(client: httpx.Client, job_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}: {job}")


def test_the_documented_worker_completes_fails_and_aborts(
    worker: tuple[subprocess.Popen[str], str], token_service: Service
) -> None:
    _, queue = worker
    auth = {"authorization": f"Bearer {TOKENS['client']}"}
    with httpx.Client(base_url=token_service.url, headers=auth, timeout=10) as client:

        def enqueue(function: str, **kwargs: Any) -> str:
            body = {"function": function, "kwargs": kwargs}
            created = client.post(f"/v1/queues/{queue}/jobs", json=body)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

        doubled, failing, slow = enqueue("double", n=21), enqueue("fail"), enqueue("slow")
        done = _wait(client, doubled, {"complete", "failed"})
        assert (done["status"], done["result"]) == ("complete", 42)
        failed = _wait(client, failing, {"complete", "failed"})
        assert failed["status"] == "failed" and failed["error"]["message"] == "boom"
        _wait(client, slow, {"active"})
        client.post(f"/v1/jobs/{slow}/abort", json={"error": "enough"})
        started = time.monotonic()
        aborted = _wait(client, slow, {"aborted", "complete", "failed"})
        assert aborted["status"] == "aborted", aborted
        assert time.monotonic() - started < 5  # the heartbeat every second heard it


def test_the_documented_worker_stops_on_a_refused_token(
    tmp_path: Path, token_service: Service
) -> None:
    script = tmp_path / "worker.mjs"
    script.write_text(_example(), encoding="utf-8")
    env = {**token_service.env("client"), "JOBWIRE_QUEUE": "proto-refused"}  # not a worker
    done = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert done.stderr.count("refused the token") == 1, done.stderr
