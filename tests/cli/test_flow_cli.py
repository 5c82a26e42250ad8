"""Flow control from the command line (`jobwire pause|resume|limits|retry-jobs|delete-jobs|
abort-jobs`, `enqueue --concurrency-key`, `jobs --key-prefix`), on a store URL and on a
service URL: the commands go through Queue, so both must give the same answers."""

import asyncio
import json
import subprocess
import time
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
