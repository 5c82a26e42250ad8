"""Flow control from the command line (`jobwire pause|resume|limits|retry-jobs|delete-jobs|
abort-jobs`, `enqueue --concurrency-key`, `jobs --key-prefix`), on a store URL and on a
service URL: the commands go through Queue, so both must give the same answers."""

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from service_fixtures import SESSION_DB, GrpcService, redis_database
from test_cli_commands import jobwire_cli, one_line_failure

from jobwire import Job, Queue, Status
from jobwire.flow import QueueSettings, Rate


@pytest.fixture(params=["store", "http"])
def url(request: pytest.FixtureRequest, redis_url: str, session_service: GrpcService) -> str:
    """A Redis store straight, or the service over REST."""
    return redis_url if request.param == "store" else session_service.http


@pytest.fixture(params=["store", "http", "grpc"])
def any_url(request: pytest.FixtureRequest, redis_url: str, session_service: GrpcService) -> str:
    """As ``url``, and the service over gRPC."""
    urls = {"store": redis_url, "http": session_service.http, "grpc": session_service.url}
    return urls[request.param]


def _queue() -> str:
    return f"cli-flow-{uuid4().hex[:8]}"


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def _sdk(url: str, queue: str, call: str, *args: Any) -> Any:
    """Run one Queue method in a fresh event loop (the CLI runs in another process)."""

    async def run() -> Any:
        async with Queue.from_url(url, name=queue) as q:
            return await getattr(q, call)(*args)

    return asyncio.run(run())


def test_pause_resume_and_limits(any_url: str) -> None:
    queue, url = _queue(), any_url
    base = ("--url", url)
    assert _json(jobwire_cli("pause", queue, *base)) == {
        "queue": queue,
        "paused": True,
        "settings": {"functions": {}},
    }
    assert _sdk(url, queue, "paused") is True
    assert _json(jobwire_cli("info", "--queue", queue, *base))["paused"] is True

    limits = (
        '{"max_active": 5, "max_active_per_key": 1, "functions": {"f": {"rate": {"limit": 50}}}}'
    )
    shown = _json(jobwire_cli("limits", queue, "--set", limits, *base))
    expected = {
        "max_active": 5,
        "max_active_per_key": 1,
        "functions": {"f": {"rate": {"limit": 50, "period_s": 1.0}}},
    }
    assert shown == {"queue": queue, "paused": True, "settings": expected}
    assert _sdk(url, queue, "settings").to_dict() == expected
    assert _json(jobwire_cli("limits", queue, *base))["settings"] == expected

    resumed = _json(jobwire_cli("resume", queue, *base))
    assert (resumed["paused"], resumed["settings"]) == (False, expected)
    assert _json(jobwire_cli("limits", queue, "--set", "{}", *base))["settings"] == {
        "functions": {}
    }
    assert _sdk(url, queue, "settings") == QueueSettings()


def test_bad_limits_are_a_usage_error_naming_the_field() -> None:
    line = one_line_failure(jobwire_cli("limits", "q", "--set", '{"max_active": 0}'), code=2)
    assert line.startswith("jobwire limits: argument --set: max_active must be >= 1"), line
    line = one_line_failure(jobwire_cli("limits", "q", "--set", '{"rate": {"limit": "x"}}'), 2)
    assert "rate.limit must be an int" in line
    line = one_line_failure(jobwire_cli("limits", "q", "--set", '{"max_actve": 5}'), code=2)
    assert "unknown fields ['max_actve']" in line
    line = one_line_failure(jobwire_cli("pause"), code=2)
    assert "queue" in line  # the queue is a required argument


def test_bulk_commands_print_how_many(url: str) -> None:
    queue = _queue()
    base = ("--url", url)
    jobs = [Job("f", key="k-1"), Job("f", key="k-2"), Job("g", key="other-1")]
    _sdk(url, queue, "enqueue_many", jobs)

    listed = jobwire_cli("jobs", "--key-prefix", "k-", "--json", "--queue", queue, *base)
    rows = [json.loads(line) for line in _text(listed).splitlines()]
    assert sorted(row["key"] for row in rows) == ["k-1", "k-2"]

    assert _count(jobwire_cli("abort-jobs", queue, "--key-prefix", "k-", *base)) == 2
    assert _count(jobwire_cli("abort-jobs", queue, "--before", "1", *base)) == 0
    assert _count(jobwire_cli("retry-jobs", queue, "--status", "aborted", *base)) == 2
    assert _count(jobwire_cli("retry-jobs", queue, "--status", "aborted", *base)) == 0
    now = str(time.time())
    assert _count(jobwire_cli("abort-jobs", queue, "--function", "g", "--before", now, *base)) == 1
    assert _count(jobwire_cli("delete-jobs", queue, "--after", now, "--all", *base)) == 0

    line = one_line_failure(jobwire_cli("delete-jobs", queue, *base))
    assert line.startswith("jobwire delete-jobs: no filter: pass --all"), line
    assert _count(jobwire_cli("delete-jobs", queue, "--all", *base)) == 3
    assert _sdk(url, queue, "jobs") == []


def test_enqueue_takes_a_concurrency_key(url: str) -> None:
    queue = _queue()
    job = _json(jobwire_cli("enqueue", "f", "--concurrency-key", "tenant-1", "--queue", queue,
                            "--url", url))  # fmt: skip
    assert (job["concurrency_key"], job["key"], job["status"]) == ("tenant-1", None, "queued")
    stored = _sdk(url, queue, "job", job["id"])
    assert stored.concurrency_key == "tenant-1" and stored.status == Status.QUEUED


def test_limits_through_the_service_reach_its_store(service_url: str, redis_url: str) -> None:
    """Set on the service, read straight from its store: one set of limits for every worker."""
    queue = _queue()
    limits = '{"rate": {"limit": 20, "period_s": 2}, "rate_per_key": {"limit": 1}}'
    _json(jobwire_cli("limits", queue, "--set", limits, "--url", service_url))
    stored = _sdk(redis_database(redis_url, SESSION_DB), queue, "settings")
    assert stored == QueueSettings(rate=Rate(20, 2.0), rate_per_key=Rate(1, 1.0))


def _text(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def _count(done: subprocess.CompletedProcess[str]) -> int:
    return int(_text(done).strip())


README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://:ADMIN_TOKEN@127.0.0.1:8080"  # the Python block's service


def _readme_block(marker: str, language: str = "sh") -> str:
    """The fenced block right after ``<!-- marker -->`` in the README."""
    after = README.read_text(encoding="utf-8").split(f"<!-- {marker} -->", 1)[1]
    match = re.match(rf"\s*```{language}\n(.*?)\n```", after, flags=re.DOTALL)
    assert match, f"no ```{language} block right after <!-- {marker} -->"
    return match.group(1) + "\n"


def test_the_readme_flow_control_blocks_run_as_written(service_url: str, tmp_path: Path) -> None:
    """The README's Python, curl and CLI blocks, each on a queue of its own instead of
    `emails` (the service is shared with other tests)."""
    shim = tmp_path / "bin" / "jobwire"  # `jobwire` as written: this interpreter's
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m jobwire.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "JOBWIRE": service_url, "JOBWIRE_URL": service_url,
           "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip

    python_queue = _queue()
    code = _readme_block("python-flow-control", "python")
    code = code.replace(README_URL, service_url).replace('"emails"', repr(python_queue))
    compiled = compile(code, "README", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {}

    async def run_block() -> None:
        await eval(compiled, namespace)  # a coroutine: the block awaits at top level
        await namespace["queue"].close()

    asyncio.run(run_block())
    stored = _sdk(service_url, python_queue, "settings")
    assert (stored.max_active, stored.functions["send_welcome_email"].max_active) == (20, 5)

    for marker in ("curl-flow-control", "cli-flow-control"):
        queue = _queue()
        script = _readme_block(marker).replace("emails", queue)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, f"{marker}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        outputs = done.stdout
        assert _sdk(service_url, queue, "settings") == QueueSettings(), marker  # the last line
        assert _sdk(service_url, queue, "paused") is False, marker
        if marker == "curl-flow-control":
            lines = outputs.splitlines()
            assert lines[:2] == [
                f'{{"queue":"{queue}","paused":{state}}}' for state in ("true", "false")
            ]
            assert [json.loads(line)["count"] for line in lines if '"count"' in line] == [0, 1, 1]
        else:
            assert re.findall(r"^\d+$", outputs, flags=re.MULTILINE) == ["0", "0", "0"], outputs
