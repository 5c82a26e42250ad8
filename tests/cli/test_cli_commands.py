"""The CLI explains itself: one line per failure (exit 1, 2 for usage), every job option,
the job commands (jobs, retry, abort, delete, queues), and help on every option."""

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from uuid import uuid4

import pytest

import jobwire
from jobwire import Queue, Status
from jobwire.cli import _parser

CLIENT_COMMANDS = ("enqueue", "status", "jobs", "retry", "abort", "delete", "queues", "info")
FLOW_COMMANDS = ("pause", "resume", "limits", "retry-jobs", "delete-jobs", "abort-jobs")


def jobwire_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `jobwire` command line (logs at warning) and capture its output."""
    command = [sys.executable, "-m", "jobwire.cli", "--log-level", "warning", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def one_line_failure(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """Assert the command failed with ``code`` and one line of stderr; return that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version() -> None:
    done = jobwire_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"jobwire {jobwire.__version__}"


def test_every_option_of_every_command_has_help() -> None:
    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(CLIENT_COMMANDS) | set(FLOW_COMMANDS) | {"serve", "worker"} <= set(commands)
    for name, sub in {"jobwire": parser, **commands}.items():
        for action in sub._actions:
            if action.dest not in ("help", "version", "command"):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_an_unreachable_store_is_one_line(redis_url: str) -> None:
    closed = "redis://127.0.0.1:1"
    line = one_line_failure(jobwire_cli("info", "--url", closed))
    assert line.startswith(f"jobwire info: cannot reach {closed}")
    line = one_line_failure(jobwire_cli("info", "--url", "http://127.0.0.1:1"))
    assert "ssl:default" not in line and "cannot reach http://127.0.0.1:1" in line


def test_bad_kwargs_are_a_usage_error() -> None:
    line = one_line_failure(jobwire_cli("enqueue", "f", "--kwargs", "{bad"), code=2)
    assert line.startswith("jobwire enqueue: argument --kwargs: not JSON")
    line = one_line_failure(jobwire_cli("enqueue", "f", "--kwargs", "[1]"), code=2)
    assert "must be a JSON object" in line


def test_worker_settings_errors_say_what_is_wrong(tmp_path: Path) -> None:
    line = one_line_failure(jobwire_cli("worker", "nope.settings", cwd=tmp_path))
    assert "no module 'nope'" in line and "PYTHONPATH" in line
    (tmp_path / "tasks_a.py").write_text("other = {}\nlisted = [1]\nhalf = {'queue': 'x'}\n")
    line = one_line_failure(jobwire_cli("worker", "tasks_a.settings", cwd=tmp_path))
    assert line == "jobwire worker: module 'tasks_a' has no 'settings' (a settings dict)"
    line = one_line_failure(jobwire_cli("worker", "tasks_a.listed", cwd=tmp_path))
    assert "is a list, not a settings dict" in line
    line = one_line_failure(jobwire_cli("worker", "tasks_a.half", cwd=tmp_path))
    assert line.endswith("has no 'functions' key")
    (tmp_path / "tasks_b.py").write_text("import not_installed_dependency\n")
    line = one_line_failure(jobwire_cli("worker", "tasks_b.settings", cwd=tmp_path))
    assert "importing 'tasks_b' failed" in line and "not_installed_dependency" in line


def test_serve_wants_a_store_url() -> None:
    line = one_line_failure(jobwire_cli("serve", "--backend", "foo://"), code=2)
    assert "redis://" in line and "sqlite:///" in line
    assert "http://" not in line.split("got")[0] and "grpc://" not in line


def test_status_of_an_unknown_id_says_so(service_url: str) -> None:
    line = one_line_failure(jobwire_cli("status", "no-such-id", "--url", service_url))
    assert line == (
        "jobwire status: no job 'no-such-id' in queue 'default' (check the id, or pass --queue)"
    )


def test_enqueue_takes_every_job_option(service_url: str) -> None:
    queue = f"cli-{uuid4().hex[:8]}"
    base = ("--url", service_url, "--queue", queue)
    later = time.time() + 3600
    args = ["--timeout", "12", "--retries", "3", "--ttl", "60", "--key", "k1", "--heartbeat", "7"]
    args += ["--scheduled", str(later), "--retry-delay", "2", "--retry-backoff"]
    args += ["--priority", "5", "--kwargs", '{"a": 1}']
    done = jobwire_cli("enqueue", "add", *args, *base)
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]

    async def stored() -> jobwire.Job | None:
        async with Queue.from_url(service_url, name=queue) as q:
            return await q.job(job_id)

    job = asyncio.run(stored())
    assert job is not None
    assert (job.timeout, job.retries, job.ttl, job.key, job.heartbeat) == (12, 3, 60, "k1", 7)
    assert (job.scheduled, job.retry_delay, job.retry_backoff) == (later, 2, True)
    assert (job.priority, job.kwargs, job.status) == (5, {"a": 1}, Status.SCHEDULED)

    duplicate = jobwire_cli("enqueue", "add", "--key", "k1", *base)
    line = one_line_failure(duplicate)
    assert "already queued, scheduled or active" in line

    delayed = jobwire_cli("enqueue", "add", "--delay", "600", *base)
    assert delayed.returncode == 0, delayed.stderr
    assert json.loads(delayed.stdout)["status"] == "scheduled"


def test_jobs_retry_abort_delete_queues(service_url: str) -> None:
    queue = f"cli-{uuid4().hex[:8]}"
    base = ("--url", service_url, "--queue", queue)
    ids = [json.loads(jobwire_cli("enqueue", fn, *base).stdout)["id"] for fn in ("a", "b", "a")]

    listed = jobwire_cli("jobs", "--function", "a", "--json", *base)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(row["id"] for row in rows) == sorted([ids[0], ids[2]])
    table = jobwire_cli("jobs", "--status", "queued", *base)
    assert table.stdout.splitlines()[0].split() == [
        "ID", "STATUS", "ATTEMPTS", "CREATED", "FUNCTION"
    ]  # fmt: skip
    assert len(table.stdout.splitlines()) == 4

    aborted = jobwire_cli("abort", ids[0], "--error", "changed my mind", *base)
    assert aborted.returncode == 0, aborted.stderr
    assert json.loads(aborted.stdout)["status"] == "aborted"
    line = one_line_failure(jobwire_cli("retry", ids[1], *base))
    assert "jobwire retry: " in line  # still queued: nothing to retry
    retried = jobwire_cli("retry", ids[0], *base)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "queued"

    deleted = jobwire_cli("delete", ids[2], *base)
    assert (deleted.returncode, deleted.stdout.strip()) == (0, f"deleted {ids[2]}")
    one_line_failure(jobwire_cli("status", ids[2], *base))

    queues = jobwire_cli("queues", "--url", service_url)
    assert queue in queues.stdout.split()

    info = json.loads(jobwire_cli("info", *base).stdout)
    assert "scheduled" not in info and info["counts"]["queued"] == 2


@pytest.mark.timeout(60)
def test_enqueue_wait_runs_the_job_to_its_end(redis_url: str, tmp_path: Path) -> None:
    """`enqueue --wait` prints the finished job; a failed one exits 1."""
    queue = f"cli-{uuid4().hex[:8]}"
    (tmp_path / "cli_tasks.py").write_text(
        textwrap.dedent(
            f"""
            from jobwire import Queue

            async def double(ctx, *, n):
                return n * 2

            async def boom(ctx):
                raise RuntimeError("no")

            settings = {{"queue": Queue.from_url({redis_url!r}, name={queue!r}),
                        "functions": [double, boom]}}
            """
        )
    )
    base = ("--url", redis_url, "--queue", queue)
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobwire.cli", "worker", "cli_tasks.settings"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = jobwire_cli("enqueue", "double", "--kwargs", '{"n": 21}', "--wait", "20", *base)
        assert done.returncode == 0, done.stderr
        job = json.loads(done.stdout)
        assert (job["status"], job["result"]) == ("complete", 42)
        failed = jobwire_cli("enqueue", "boom", "--wait", "20", *base)
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["error"]["message"] == "no"
    finally:
        worker.terminate()
        worker.wait(timeout=15)


def test_a_wait_that_runs_out_on_a_store_says_which_job(redis_url: str) -> None:
    queue = f"cli-{uuid4().hex[:8]}"
    line = one_line_failure(
        jobwire_cli("enqueue", "add", "--wait", "0.2", "--url", redis_url, "--queue", queue)
    )
    assert line.startswith("jobwire enqueue: job ") and "still queued after 0.2 s" in line
