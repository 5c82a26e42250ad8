"""The client commands (`jobwire enqueue|status|info`) against the real service."""

import json
import subprocess
import sys
from uuid import uuid4


def jobwire(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `jobwire` command line and capture its output."""
    command = [sys.executable, "-m", "jobwire.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_enqueue_then_status_through_the_service(service_url: str) -> None:
    queue = f"cli-{uuid4().hex[:8]}"
    enqueued = jobwire(
        "enqueue", "add", "--kwargs", '{"a": 1}', "--url", service_url, "--queue", queue
    )
    assert enqueued.returncode == 0, enqueued.stderr
    job = json.loads(enqueued.stdout)
    assert (job["function"], job["kwargs"], job["status"]) == ("add", {"a": 1}, "queued")

    shown = jobwire("status", job["id"], "--url", service_url, "--queue", queue)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == job["id"]


def test_a_wait_that_runs_out_is_one_line_and_exit_1(service_url: str) -> None:
    queue = f"cli-{uuid4().hex[:8]}"  # no worker: the job stays queued
    result = jobwire("enqueue", "add", "--wait", "0.3", "--url", service_url, "--queue", queue)
    assert result.returncode == 1
    assert "still queued after 0.3 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_service_is_one_line_and_exit_1() -> None:
    result = jobwire("info", "--url", "http://127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.startswith("jobwire info: ")
    assert "Traceback" not in result.stderr
