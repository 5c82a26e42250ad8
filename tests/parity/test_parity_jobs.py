"""JobService parity: enqueue, batch, apply, get, watch, abort, retry, delete, roles.

Every test runs once per transport (``[rest]``, ``[grpc]``) with the same assertions.
"""

import asyncio
import time
from typing import Any

import pytest
from grpc_helpers import GrpcService, unique_name
from parity_transport import (
    JOB_FIELDS,
    TOKENS,
    TRANSPORTS,
    Connect,
    Transport,
    TransportError,
    lease_one,
    refused,
)


async def test_enqueue_answers_the_new_queued_job(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    spec = {"function": "send", "kwargs": {"to": "a"}, "retries": 2, "priority": 5, "timeout": 3.5}
    answer = await transport.enqueue(queue_name, spec)
    job = answer.job
    assert answer.duplicate is False
    assert set(job) == JOB_FIELDS, set(job) ^ JOB_FIELDS
    assert (job["queue"], job["function"], job["kwargs"]) == (queue_name, "send", {"to": "a"})
    assert (job["status"], job["attempts"], job["progress"], job["meta"]) == ("queued", 0, 0, {})
    assert (job["retries"], job["priority"], job["timeout"], job["ttl"]) == (2, 5, 3.5, 600)
    assert (job["key"], job["result"], job["error"], job["worker"]) == (None, None, None, None)
    assert job["retry_backoff"] is False and job["heartbeat"] == 0 and job["scheduled"] == 0
    assert job["created"] > 0 and job["id"]
    assert await transport.get(job["id"]) == job
    assert await other.get(job["id"]) == job  # the same job, whichever way it is read


async def test_enqueue_keeps_every_option(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    due = round(time.time() + 3600, 3)
    job_id = unique_name("opts")  # ids are unique per queue: get() without one looks anywhere
    spec = {
        "function": "f", "kwargs": {"nested": {"a": [1, None, "x"]}}, "id": job_id,
        "key": "opts", "timeout": 2.5, "retries": 4, "ttl": 0, "heartbeat": 7.5,
        "scheduled": due, "retry_delay": 1.5, "retry_backoff": 9.0, "priority": -3,
    }  # fmt: skip
    job = (await transport.enqueue(queue_name, spec)).job
    assert {name: job[name] for name in spec} == spec
    assert job["status"] == "scheduled"
    assert await other.get(job_id) == job == await transport.get(job_id)
    backoff = (await transport.enqueue(queue_name, {"function": "f", "retry_backoff": True})).job
    assert backoff["retry_backoff"] is True


async def test_enqueue_a_live_key_or_id_again_answers_the_existing_job(
    transport: Transport, queue_name: str
) -> None:
    first = await transport.enqueue(queue_name, {"function": "f", "kwargs": {"n": 1}, "key": "k"})
    again = await transport.enqueue(queue_name, {"function": "f", "kwargs": {"n": 2}, "key": "k"})
    assert again.duplicate is True
    assert again.job["id"] == first.job["id"] and again.job["kwargs"] == {"n": 1}
    assert again.job["key"] == "k"
    by_id = await transport.enqueue(queue_name, {"function": "f", "id": "fixed-1"})
    assert not by_id.duplicate and by_id.job["id"] == "fixed-1"
    twice = await transport.enqueue(queue_name, {"function": "g", "id": "fixed-1"})
    assert twice.duplicate and twice.job["function"] == "f"


BAD_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("function", {"function": ""}),
    ("function", {"function": "x" * 201}),
    ("kwargs", {"function": "f", "kwargs": [1, 2]}),
    ("priority", {"function": "f", "priority": 5000}),
    ("retries", {"function": "f", "retries": -1}),
    ("timeout", {"function": "f", "timeout": 0}),
    ("ttl", {"function": "f", "ttl": -2}),
    ("id", {"function": "f", "id": "not an id!"}),
    ("key", {"function": "f", "key": "k" * 513}),
]


async def test_enqueue_bad_input_is_invalid_and_names_the_field(
    transport: Transport, queue_name: str
) -> None:
    problems = []
    for field, spec in BAD_SPECS:
        try:
            await transport.enqueue(queue_name, spec)
        except TransportError as error:
            if (error.kind, error.code) != ("invalid", "invalid_request"):
                problems.append(f"{field}: {error}")
            elif field not in error.message:
                problems.append(f"{field} not named in {error.message!r}")
        else:
            problems.append(f"{field}: accepted {spec}")
    assert not problems, problems
    assert (await transport.list_jobs(queue_name)).jobs == []


async def test_enqueue_into_a_bad_queue_name_is_invalid(transport: Transport) -> None:
    error = await refused(transport.enqueue("-bad", {"function": "f"}))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "queue" in error.message, error


async def test_enqueue_batch_keeps_the_order_and_flags_duplicates(
    transport: Transport, queue_name: str
) -> None:
    existing = await transport.enqueue(queue_name, {"function": "f", "key": "k"})
    specs: list[dict[str, Any]] = [
        {"function": "f", "kwargs": {"i": 0}},
        {"function": "f", "kwargs": {"i": 1}, "key": "k"},
        {"function": "f", "kwargs": {"i": 2}},
        {"function": "f", "id": "batch-fixed"},
    ]
    answers = await transport.enqueue_batch(queue_name, specs)
    assert [a.duplicate for a in answers] == [False, True, False, False]
    assert [a.job["kwargs"].get("i") for a in answers] == [0, None, 2, None]
    assert answers[1].job["id"] == existing.job["id"]
    assert answers[3].job["id"] == "batch-fixed"
    assert all(set(a.job) == JOB_FIELDS for a in answers)
    again = await transport.enqueue_batch(queue_name, [{"function": "f", "id": "batch-fixed"}])
    assert [a.duplicate for a in again] == [True]
    assert len((await transport.list_jobs(queue_name)).jobs) == 4


async def test_enqueue_an_empty_batch_is_invalid(transport: Transport, queue_name: str) -> None:
    error = await refused(transport.enqueue_batch(queue_name, []))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "jobs" in error.message, error


async def test_a_batch_with_one_bad_job_enqueues_nothing(
    transport: Transport, queue_name: str
) -> None:
    specs = [{"function": "f"}, {"function": "f", "priority": 5000}]
    error = await refused(transport.enqueue_batch(queue_name, specs))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "priority" in error.message, error
    assert (await transport.list_jobs(queue_name)).jobs == []


async def test_apply_answers_once_a_worker_completes_the_job(
    transport: Transport, queue_name: str
) -> None:
    applying = asyncio.ensure_future(transport.apply(queue_name, {"function": "add"}, wait_s=10))
    try:
        await asyncio.sleep(0.1)
        assert not applying.done()
        leased = await lease_one(transport, queue_name)
        await transport.complete(queue_name, leased["id"], leased["lease"], 42)
        job = (await asyncio.wait_for(applying, 5)).job
    finally:
        applying.cancel()
    assert (job["id"], job["status"], job["result"], job["attempts"]) == (
        leased["id"], "complete", 42, 1,
    )  # fmt: skip
    assert set(job) == JOB_FIELDS


async def test_apply_whose_wait_runs_out_answers_the_job_as_it_is(
    transport: Transport, queue_name: str
) -> None:
    started = time.monotonic()
    job = (await transport.apply(queue_name, {"function": "slow"}, wait_s=0.5)).job
    elapsed = time.monotonic() - started
    assert job["status"] == "queued" and job["function"] == "slow"
    assert 0.4 <= elapsed < 3, elapsed
    assert (await transport.get(job["id"]))["status"] == "queued"


async def test_apply_with_a_live_key_waits_on_the_existing_job(
    transport: Transport, queue_name: str
) -> None:
    existing = (await transport.enqueue(queue_name, {"function": "f", "key": "k"})).job
    answer = await transport.apply(queue_name, {"function": "f", "key": "k"}, wait_s=0.2)
    assert (answer.job["id"], answer.job["status"]) == (existing["id"], "queued")
    assert answer.duplicate is True, answer  # ApplyReply.duplicate; REST's body has no flag


async def test_apply_bad_input_is_invalid(transport: Transport, queue_name: str) -> None:
    error = await refused(transport.apply(queue_name, {"function": "f", "priority": -5000}, 1))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert "priority" in error.message, error


async def test_get_a_job_anywhere_in_its_queue_or_nowhere(
    transport: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    assert await transport.get(job["id"]) == job
    assert await transport.get(job["id"], queue=queue_name) == job
    error = await refused(transport.get(job["id"], queue=unique_name("elsewhere")))
    assert (error.kind, error.code) == ("not_found", "not_found"), error
    error = await refused(transport.get(unique_name("nope")))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


async def test_get_an_invalid_id_or_queue_is_invalid(transport: Transport) -> None:
    for job_id, queue in (("not an id!", None), ("some-id", "-bad")):
        error = await refused(transport.get(job_id, queue=queue))
        assert (error.kind, error.code) == ("invalid", "invalid_request"), error


async def test_a_negative_wait_is_invalid(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    error = await refused(transport.get(job["id"], wait_s=-1))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    error = await refused(transport.lease(queue_name, "w", wait_s=-1))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error


async def test_get_with_wait_answers_when_the_job_finishes(
    transport: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    waiting = asyncio.ensure_future(transport.get(job["id"], wait_s=10))
    try:
        await asyncio.sleep(0.1)
        assert not waiting.done()
        leased = await lease_one(transport, queue_name)
        await transport.complete(queue_name, leased["id"], leased["lease"], "done")
        finished = await asyncio.wait_for(waiting, 5)
    finally:
        waiting.cancel()
    assert (finished["status"], finished["result"]) == ("complete", "done")


async def test_get_with_a_wait_that_runs_out_answers_the_job_as_it_is(
    transport: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    started = time.monotonic()
    current = await transport.get(job["id"], wait_s=0.3)
    assert current["status"] == "queued"
    assert 0.25 <= time.monotonic() - started < 3


async def _watching(
    transport: Transport, job_id: str
) -> tuple[asyncio.Task[None], list[dict[str, Any] | None], asyncio.Queue[dict[str, Any] | None]]:
    """Watch ``job_id`` in the background: every event, in a list and a queue."""
    seen: list[dict[str, Any] | None] = []
    arrivals: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def collect() -> None:
        async for event in transport.watch(job_id):
            seen.append(event)
            arrivals.put_nowait(event)

    return asyncio.ensure_future(collect()), seen, arrivals


async def _until(arrivals: asyncio.Queue[dict[str, Any] | None], status: str | None) -> None:
    """Wait for an event with ``status`` (``None``: the deletion) to arrive."""
    async with asyncio.timeout(5):
        while True:
            event = await arrivals.get()
            if (event["status"] if event is not None else None) == status:
                return


async def test_watch_sees_queued_active_complete(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    watching, seen, arrivals = await _watching(transport, job["id"])
    try:
        await _until(arrivals, "queued")
        leased = await lease_one(transport, queue_name)
        # A progress change is an event on every store (a lease alone is not, on Redis).
        await transport.heartbeat(queue_name, leased["id"], leased["lease"], progress=0.5)
        await _until(arrivals, "active")
        await transport.complete(queue_name, leased["id"], leased["lease"], "done")
        await asyncio.wait_for(watching, 5)
    finally:
        watching.cancel()
    assert all(event is not None for event in seen), seen
    statuses = [event["status"] for event in seen if event is not None]
    assert statuses == ["queued", "active", "complete"], statuses
    active, last = seen[1], seen[-1]
    assert active is not None and active["progress"] == 0.5
    assert last is not None and last["result"] == "done" and set(last) == JOB_FIELDS


async def test_watch_ends_when_the_job_is_deleted(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    watching, seen, arrivals = await _watching(transport, job["id"])
    try:
        await _until(arrivals, "queued")
        await transport.delete(job["id"])
        await asyncio.wait_for(watching, 5)
    finally:
        watching.cancel()
    assert seen[0] is not None and seen[-1] is None, seen
    assert all(e["status"] == "queued" for e in seen if e is not None), seen  # no other change


async def test_watch_a_finished_job_gives_it_once(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    aborted = await transport.abort(job["id"], "no")
    async with asyncio.timeout(5):
        seen = [event async for event in transport.watch(job["id"], queue=queue_name)]
    assert seen == [aborted]


async def test_watch_an_unknown_job_is_not_found(transport: Transport) -> None:
    events = transport.watch(unique_name("nope"))
    with pytest.raises(TransportError) as caught:
        async with asyncio.timeout(10):
            await anext(events)
    assert (caught.value.kind, caught.value.code) == ("not_found", "not_found")


async def test_abort_a_queued_job_at_once(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    aborted = await transport.abort(job["id"], "changed my mind")
    assert aborted["status"] == "aborted"
    assert aborted["error"] == {"type": "Aborted", "message": "changed my mind", "traceback": ""}
    assert await transport.get(job["id"]) == aborted
    assert (await transport.lease(queue_name, "w")).jobs == []
    plain = (await transport.enqueue(queue_name, {"function": "f"})).job
    assert (await transport.abort(plain["id"]))["error"]["message"] == "aborted"


async def test_abort_an_active_job_makes_it_aborting(transport: Transport, queue_name: str) -> None:
    await transport.enqueue(queue_name, {"function": "f"})
    leased = await lease_one(transport, queue_name)
    aborting = await transport.abort(leased["id"], "stop", queue=queue_name)
    assert aborting["status"] == "aborting"
    state = await transport.heartbeat(queue_name, leased["id"], leased["lease"])
    assert state == "aborting"


async def test_abort_an_unknown_job_is_not_found(transport: Transport) -> None:
    error = await refused(transport.abort(unique_name("nope"), "why"))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


async def test_an_abort_reason_over_10000_characters_is_invalid(
    transport: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    error = await refused(transport.abort(job["id"], "x" * 10_001))
    assert (error.kind, error.code) == ("invalid", "invalid_request"), error
    assert (await transport.get(job["id"]))["status"] == "queued"


async def test_retry_a_finished_job_queues_it_and_a_live_one_is_refused(
    transport: Transport, queue_name: str
) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    error = await refused(transport.retry(job["id"]))
    assert (error.kind, error.code) == ("conflict", "invalid_state"), error
    await transport.abort(job["id"])
    again = await transport.retry(job["id"], queue=queue_name)
    assert (again["id"], again["status"]) == (job["id"], "queued")
    assert (await lease_one(transport, queue_name))["id"] == job["id"]
    error = await refused(transport.retry(unique_name("nope")))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


async def test_delete_then_the_job_is_gone(transport: Transport, queue_name: str) -> None:
    job = (await transport.enqueue(queue_name, {"function": "f"})).job
    await transport.delete(job["id"], queue=queue_name)
    error = await refused(transport.get(job["id"]))
    assert (error.kind, error.code) == ("not_found", "not_found"), error
    error = await refused(transport.delete(job["id"]))
    assert (error.kind, error.code) == ("not_found", "not_found"), error


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_roles_on_a_service_with_tokens(
    name: str, guarded_service: GrpcService, connect: Connect
) -> None:
    queue = unique_name("par")
    client = connect(name, guarded_service, TOKENS["client"])
    worker = connect(name, guarded_service, TOKENS["worker"])
    admin = connect(name, guarded_service, TOKENS["admin"])
    job = (await client.enqueue(queue, {"function": "f"})).job
    for anonymous in (connect(name, guarded_service), connect(name, guarded_service, "nope")):
        error = await refused(anonymous.get(job["id"]))
        assert (error.kind, error.code) == ("unauthenticated", "unauthenticated"), error
    error = await refused(client.delete(job["id"]))
    assert (error.kind, error.code) == ("forbidden", "forbidden"), error
    followup = (await worker.enqueue(queue, {"function": "f"})).job  # workers may enqueue
    error = await refused(worker.abort(followup["id"]))
    assert (error.kind, error.code) == ("forbidden", "forbidden"), error
    error = await refused(client.lease(queue, "w"))
    assert (error.kind, error.code) == ("forbidden", "forbidden"), error
    error = await refused(worker.abort(job["id"]))
    assert (error.kind, error.code) == ("forbidden", "forbidden"), error
    assert (await worker.get(job["id"]))["status"] == "queued"
    await admin.delete(job["id"])
    error = await refused(admin.get(job["id"]))
    assert error.kind == "not_found", error
