"""SIGTERM: in-flight long polls are answered or cut, the process exits 0, nothing is lost."""

import asyncio
import signal
import time

import httpx
import pytest
from service_fixtures import start_service, stop_service
from service_helpers import enqueue, http_client, kill, read_log, unique_name

pytestmark = pytest.mark.slow

GRACE_S = 2.0
EXIT_SLACK_S = 3.0  # beyond the grace: closing connections, the interpreter's exit


def _long_poll_problem(outcome: httpx.Response | BaseException, job_id: str) -> str | None:
    """What is wrong with how the in-flight long poll ended (``None``: answered or cut)."""
    if isinstance(outcome, httpx.TransportError):
        return None  # cut: the connection was closed
    if isinstance(outcome, BaseException):
        return f"long poll ended with {outcome!r}"
    try:
        body = outcome.json()
    except ValueError:
        return f"long poll got a non-JSON {outcome.status_code}: {outcome.text!r}"
    if outcome.status_code == 200 and body.get("id") == job_id:
        return None
    if outcome.status_code == 503 and "error" in body:
        return None
    return f"long poll got {outcome.status_code}: {outcome.text!r}"


async def test_sigterm_with_a_long_poll_in_flight_then_restart(redis_url: str) -> None:
    proc, url, log_path = start_service(redis_url, env={"JOBWIRE_SHUTDOWN_GRACE_S": str(GRACE_S)})
    queue = unique_name("shutdown")
    try:
        async with http_client(url) as http:
            job = await enqueue(http, queue, kwargs={"keep": "me"}, key="survivor")
            poll = asyncio.create_task(http.get(f"/v1/jobs/{job['id']}", params={"wait": 30}))
            await asyncio.sleep(0.3)
            assert not poll.done(), "the long poll should still be waiting"

            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await asyncio.to_thread(proc.wait, GRACE_S + 10)
            exit_s = time.monotonic() - started
            outcome: httpx.Response | BaseException
            try:
                outcome = await asyncio.wait_for(poll, timeout=5)
            except Exception as exc:
                outcome = exc
    finally:
        kill(proc)
    log = read_log(log_path)

    # A new service on the same Redis still has the acknowledged job (and its key).
    proc, url, _ = start_service(redis_url)
    try:
        async with http_client(url) as http:
            response = await http.get(f"/v1/jobs/{job['id']}")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "queued"
            assert response.json()["kwargs"] == {"keep": "me"}
            again = await http.post(
                f"/v1/queues/{queue}/jobs", json={"function": "f", "key": "survivor"}
            )
            assert again.status_code == 200 and again.json()["id"] == job["id"]
            leased = await http.post(f"/v1/queues/{queue}/leases", json={"worker_id": "w"})
            assert [j["id"] for j in leased.json()["jobs"]] == [job["id"]]
    finally:
        stop_service(proc)

    problems = []
    if code != 0:
        problems.append(f"exit code {code}, expected 0")
    if exit_s >= GRACE_S + EXIT_SLACK_S:
        problems.append(f"took {exit_s:.1f} s to exit (grace {GRACE_S} s)")
    if problem := _long_poll_problem(outcome, job["id"]):
        problems.append(problem)
    if "Traceback" in log:
        problems.append("a traceback in the log")
    assert not problems, "; ".join(problems) + f"\nservice log:\n{log}"
