"""WorkerService parity: lease, heartbeat, complete, fail, settle, sweep.

Every test runs once per transport (``[rest]``, ``[grpc]``) with the same assertions.
"""

import asyncio
import time
from typing import Any

import pytest
from grpc_helpers import unique_name
from parity_transport import JOB_FIELDS, Transport, lease_one, refused

BOOM = {"type": "ValueError", "message": "boom", "traceback": "Traceback: ..."}


async def test_lease_takes_up_to_max_due_jobs(transport: Transport, queue_name: str) -> None:
    ids = [(await transport.enqueue(queue_name, {"function": "f"})).job["id"] for _ in range(3)]
    first = await transport.lease(queue_name, "w1", max_jobs=2)
    assert [j["id"] for j in first.jobs] == ids[:2]  # FIFO
    for job in first.jobs:
        assert set(job) == JOB_FIELDS | {"lease"}, set(job) ^ JOB_FIELDS
        assert (job["status"], job["attempts"], job["worker"]) == ("active", 1, "w1")
        assert job["lease"] and job["started"] > 0
    assert first.jobs[0]["lease"] != first.jobs[1]["lease"]
    assert first.next_due_s is None
    second = await transport.lease(queue_name, "w2", max_jobs=5)
    assert [j["id"] for j in second.jobs] == ids[2:]
    assert (await transport.lease(queue_name, "w3", max_jobs=5)).jobs == []
    stored = await transport.get(ids[0])
    assert "lease" not in stored and stored["status"] == "active" and stored["worker"] == "w1"


async def test_lease_reports_when_the_next_scheduled_job_is_due(
    transport: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f", "scheduled": time.time() + 30})
    leased = await transport.lease(queue_name, "w")
    assert leased.jobs == []
    assert leased.next_due_s is not None and 25 < leased.next_due_s <= 30


async def test_lease_by_priority(transport: Transport, queue_name: str) -> None:
    low = (await transport.enqueue(queue_name, {"function": "f", "priority": -5})).job
    high = (await transport.enqueue(queue_name, {"function": "f", "priority": 7})).job
    plain = (await transport.enqueue(queue_name, {"function": "f"})).job
    leased = await transport.lease(queue_name, "w", max_jobs=3)
    assert [j["id"] for j in leased.jobs] == [high["id"], plain["id"], low["id"]]


async def test_a_waiting_lease_is_woken_by_an_enqueue_through_the_other_transport(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    waiting = asyncio.ensure_future(transport.lease(queue_name, "w", max_jobs=1, wait_s=10))
    try:
        await asyncio.sleep(0.15)
        assert not waiting.done()
        job = (await other.enqueue(queue_name, {"function": "f"})).job
        enqueued = time.monotonic()
        leased = await asyncio.wait_for(waiting, 5)
        woken_after_s = time.monotonic() - enqueued
    finally:
        waiting.cancel()
    assert [j["id"] for j in leased.jobs] == [job["id"]]
    assert woken_after_s < 1.0, woken_after_s


async def test_a_lease_wait_that_runs_out_answers_no_jobs(
    transport: Transport, queue_name: str
) -> None:
    started = time.monotonic()
    leased = await transport.lease(queue_name, "w", max_jobs=1, wait_s=0.3)
    assert leased.jobs == [] and 0.25 <= time.monotonic() - started < 3


async def test_lease_bad_input_is_invalid(transport: Transport, queue_name: str) -> None:
    for queue, worker, max_jobs in (
        (queue_name, "", 1),
        (queue_name, "w", 1001),
        (queue_name, "w", -1),
        ("-bad", "w", 1),
    ):
        error = await refused(transport.lease(queue, worker, max_jobs=max_jobs))
        assert (error.kind, error.code) == ("invalid", "invalid_request"), error


async def test_heartbeat_keeps_the_lease_and_stores_progress_and_meta(
    transport: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    state = await transport.heartbeat(queue_name, job["id"], job["lease"], 0.5, {"step": 1})
    assert state == "active"
    assert await transport.heartbeat(queue_name, job["id"], job["lease"], meta={"n": 2}) == "active"
    stored = await transport.get(job["id"])
    assert (stored["progress"], stored["meta"]) == (0.5, {"step": 1, "n": 2})
    assert await transport.heartbeat(queue_name, job["id"], job["lease"]) == "active"


async def test_heartbeat_after_an_abort_says_aborting(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    await other.abort(job["id"], "enough")
    assert await transport.heartbeat(queue_name, job["id"], job["lease"]) == "aborting"
    assert await transport.renew(queue_name, [(job["id"], job["lease"])]) == ["aborting"]


async def test_a_stale_lease_is_lost(transport: Transport, queue_name: str) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    assert await transport.heartbeat(queue_name, job["id"], "not-the-lease") == "lost"
    assert await transport.heartbeat(queue_name, job["id"], "not-the-lease", progress=0.9) == "lost"
    assert (await transport.get(job["id"]))["progress"] == 0  # a stale lease stores nothing
    await transport.complete(queue_name, job["id"], job["lease"], None)
    assert await transport.heartbeat(queue_name, job["id"], job["lease"]) == "lost"


async def test_a_heartbeat_for_a_deleted_job_is_lost(transport: Transport, queue_name: str) -> None:
    """The proto: LOST is "no longer yours (expired and re-leased, or deleted)"."""
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    await transport.delete(job["id"])
    assert await transport.renew(queue_name, [(job["id"], job["lease"])]) == ["lost"]
    assert await transport.heartbeat(queue_name, job["id"], job["lease"]) == "lost"


async def test_heartbeat_progress_out_of_range_is_invalid(
    transport: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    error = await refused(transport.heartbeat(queue_name, job["id"], job["lease"], 1.5))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert (await transport.get(job["id"]))["progress"] == 0


async def test_result_and_meta_beyond_the_json_limit_are_invalid(
    transport: Transport, queue_name: str
) -> None:
    """result and meta keep the kwargs' limit (512 KiB as JSON): nothing is recorded."""
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    large = {"a": "x" * 600_000}
    error = await refused(transport.heartbeat(queue_name, job["id"], job["lease"], meta=large))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "meta" in error.message, error
    error = await refused(transport.complete(queue_name, job["id"], job["lease"], large))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "result" in error.message, error
    stored = await transport.get(job["id"])
    assert (stored["status"], stored["meta"], stored["result"]) == ("active", {}, None)


async def test_renew_answers_one_state_per_lease(transport: Transport, queue_name: str) -> None:
    for _ in range(3):
        await transport.enqueue(queue_name, {"function": "f"})
    a, b, c = (await transport.lease(queue_name, "w", max_jobs=3)).jobs
    await transport.abort(b["id"])
    await transport.complete(queue_name, c["id"], c["lease"], 1)
    leases = [(a["id"], a["lease"]), (b["id"], b["lease"]), (c["id"], c["lease"])]
    leases.append((unique_name("gone"), "x"))
    assert await transport.renew(queue_name, leases) == ["active", "aborting", "lost", "lost"]
    assert await transport.renew(queue_name, []) == []


async def test_complete_records_the_result(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    done = await transport.complete(queue_name, job["id"], job["lease"], {"sum": [1, 2]})
    assert set(done) == JOB_FIELDS
    assert (done["status"], done["result"], done["attempts"]) == ("complete", {"sum": [1, 2]}, 1)
    assert done["completed"] >= done["started"] > 0
    assert await transport.get(job["id"]) == done == await other.get(job["id"])


async def test_complete_with_a_stale_lease_or_an_unknown_job_is_refused(
    transport: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    error = await refused(transport.complete(queue_name, job["id"], "not-the-lease", 1))
    assert (error.kind, error.code) == ("conflict", "stale_lease"), error
    assert (await transport.get(job["id"]))["status"] == "active"
    await transport.complete(queue_name, job["id"], job["lease"], 1)
    error = await refused(transport.complete(queue_name, job["id"], job["lease"], 2))
    assert (error.kind, error.code) == ("conflict", "stale_lease"), error
    assert (await transport.get(job["id"]))["result"] == 1
    error = await refused(transport.complete(queue_name, unique_name("nope"), "x", 1))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


async def test_fail_retries_while_retries_are_left_then_fails(
    transport: Transport, queue_name: str
) -> None:
    await transport.enqueue(queue_name, {"function": "f", "retries": 1})
    first = await lease_one(transport, queue_name)
    retried = await transport.fail(queue_name, first["id"], first["lease"], BOOM)
    assert (retried["status"], retried["attempts"]) == ("queued", 1)
    assert retried["error"] == BOOM
    second = await lease_one(transport, queue_name)
    assert (second["id"], second["attempts"]) == (first["id"], 2)
    failed = await transport.fail(queue_name, second["id"], second["lease"], BOOM)
    assert (failed["status"], failed["error"], failed["attempts"]) == ("failed", BOOM, 2)
    assert await transport.get(first["id"]) == failed


async def test_fail_without_retry_fails_at_once(transport: Transport, queue_name: str) -> None:
    await transport.enqueue(queue_name, {"function": "f", "retries": 3})
    job = await lease_one(transport, queue_name)
    failed = await transport.fail(queue_name, job["id"], job["lease"], BOOM, retry=False)
    assert (failed["status"], failed["attempts"], failed["error"]) == ("failed", 1, BOOM)


async def test_fail_with_a_stale_lease_is_refused(transport: Transport, queue_name: str) -> None:
    await transport.enqueue(queue_name, {"function": "f", "retries": 1})
    job = await lease_one(transport, queue_name)
    error = await refused(transport.fail(queue_name, job["id"], "not-the-lease", BOOM))
    assert (error.kind, error.code) == ("conflict", "stale_lease"), error
    assert (await transport.get(job["id"]))["status"] == "active"
    error = await refused(transport.fail(queue_name, unique_name("nope"), "x", BOOM))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


async def test_fail_with_an_over_long_error_is_invalid(
    transport: Transport, queue_name: str
) -> None:
    """Error type/message/traceback have limits (200 / 10 000 / 100 000 characters)."""
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    error = await refused(
        transport.fail(queue_name, job["id"], job["lease"], {**BOOM, "type": "E" * 201})
    )
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert (await transport.get(job["id"]))["status"] == "active"


async def test_settle_reports_many_outcomes_and_refuses_stale_ones(
    transport: Transport, queue_name: str
) -> None:
    for _ in range(4):
        await transport.enqueue(queue_name, {"function": "f", "retries": 2})
    done, broken, again, stopped = (await transport.lease(queue_name, "w", max_jobs=4)).jobs
    outcomes = [
        {"job_id": done["id"], "lease": done["lease"], "status": "complete", "result": [1]},
        {"job_id": broken["id"], "lease": broken["lease"], "status": "failed", "error": BOOM},
        {"job_id": again["id"], "lease": again["lease"], "status": "queued", "delay_s": 0},
        {"job_id": stopped["id"], "lease": stopped["lease"], "status": "aborted", "error": BOOM},
        {"job_id": done["id"], "lease": "not-the-lease", "status": "complete", "result": [2]},
    ]
    assert await transport.settle(queue_name, outcomes) == [True, True, True, True, False]
    jobs = {o["job_id"]: await transport.get(o["job_id"]) for o in outcomes[:4]}
    assert (jobs[done["id"]]["status"], jobs[done["id"]]["result"]) == ("complete", [1])
    assert (jobs[broken["id"]]["status"], jobs[broken["id"]]["error"]) == ("failed", BOOM)
    assert jobs[again["id"]]["status"] == "queued"
    assert jobs[stopped["id"]]["status"] == "aborted"
    # Settling the same leases again changes nothing.
    assert await transport.settle(queue_name, outcomes[:2]) == [False, False]
    assert (await lease_one(transport, queue_name))["id"] == again["id"]


async def test_sweep_reclaims_expired_leases(transport: Transport, queue_name: str) -> None:
    retried = (await transport.enqueue(queue_name, {"function": "f", "retries": 1})).job
    final = (await transport.enqueue(queue_name, {"function": "f"})).job
    leased = (await transport.lease(queue_name, "w", max_jobs=2, lease_s=0.2)).jobs
    assert [j["id"] for j in leased] == [retried["id"], final["id"]]
    assert await transport.sweep(queue_name) == 0  # not expired yet
    await asyncio.sleep(0.35)
    assert await transport.sweep(queue_name) == 2
    assert await transport.sweep(queue_name) == 0
    assert (await transport.get(retried["id"]))["status"] == "queued"
    gone = await transport.get(final["id"])
    assert gone["status"] == "failed" and gone["error"]["type"] == "LeaseExpired"
    assert await transport.heartbeat(queue_name, leased[0]["id"], leased[0]["lease"]) == "lost"
    assert await transport.sweep(unique_name("empty")) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"status": "active"},
        {"status": "failed", "error": {**BOOM, "type": "E" * 201}},
        {"status": "queued", "delay_s": -1},
    ],
    ids=["status-active", "error-type-too-long", "negative-delay"],
)
async def test_settle_a_malformed_outcome_is_invalid(
    transport: Transport, queue_name: str, change: dict[str, Any]
) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    job = await lease_one(transport, queue_name)
    outcome = {"job_id": job["id"], "lease": job["lease"], "status": "complete"} | change
    error = await refused(transport.settle(queue_name, [outcome]))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert (await transport.get(job["id"]))["status"] == "active"
