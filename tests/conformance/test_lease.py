"""Leases: renewal by live workers, reclaim of dead workers' jobs, stale-lease refusal."""

import asyncio
from typing import Any

import pytest
from timing import QUEUE_LEASE_S, seconds

from jobwire import ErrorInfo, Queue, StaleLease, Status
from jobwire.backends.base import Outcome

HEARTBEAT_S = seconds(1)
EXPIRY_SLACK_S = seconds(0.2)  # a sleep this much past a lease's end sees it expired


async def _lease_as_dead_worker(queue: Queue, **options: Any) -> Any:
    """Enqueue a job and lease it as a worker that will never renew; return the leased Job."""
    job = await queue.enqueue("task", heartbeat=HEARTBEAT_S, **options)
    assert job is not None
    leased, _ = await queue.lease("dead-worker", 1)
    assert [j.id for j in leased] == [job.id]
    return leased[0]


async def test_lease_marks_the_job_active(queue: Queue) -> None:
    leased = await _lease_as_dead_worker(queue)
    assert leased.lease
    assert leased.status is Status.ACTIVE
    assert leased.attempts == 1
    stored = await queue.job(leased.id)
    assert stored is not None
    assert stored.status is Status.ACTIVE
    assert stored.attempts == 1
    assert stored.started > 0
    # A leased job is not handed out twice.
    again, _ = await queue.lease("other-worker", 10)
    assert again == []


async def test_dead_workers_job_is_failed_after_heartbeat(queue: Queue) -> None:
    leased = await _lease_as_dead_worker(queue)
    assert await queue.sweep() == 0, "lease reclaimed before it expired"
    assert (await queue.job(leased.id)).status is Status.ACTIVE  # type: ignore[union-attr]

    await asyncio.sleep(HEARTBEAT_S + EXPIRY_SLACK_S)
    assert await queue.sweep() == 1
    done = await queue.job(leased.id)
    assert done is not None
    assert done.status is Status.FAILED
    assert done.error is not None
    assert done.error.type == "LeaseExpired"
    assert done.attempts == 1
    assert await queue.sweep() == 0, "a reclaimed job was reclaimed twice"


async def test_dead_workers_job_is_retried_when_retries_left(queue: Queue) -> None:
    leased = await _lease_as_dead_worker(queue, retries=1)
    await asyncio.sleep(HEARTBEAT_S + EXPIRY_SLACK_S)
    assert await queue.sweep() == 1
    requeued = await queue.job(leased.id)
    assert requeued is not None
    assert requeued.status is Status.QUEUED
    assert requeued.attempts == 1

    second, _ = await queue.lease("live-worker", 1)
    assert [j.id for j in second] == [leased.id]
    assert second[0].attempts == 2
    assert second[0].lease != leased.lease


@pytest.mark.slow
async def test_heartbeat_zero_uses_the_queues_lease(queue: Queue) -> None:
    # The queue fixture's lease is QUEUE_LEASE_S.
    job = await queue.enqueue("task")
    assert job is not None
    await queue.lease("dead-worker", 1)
    await asyncio.sleep(0.6 * QUEUE_LEASE_S)
    assert await queue.sweep() == 0, f"reclaimed within 60% of the {QUEUE_LEASE_S} s lease"
    await asyncio.sleep(0.5 * QUEUE_LEASE_S)
    assert await queue.sweep() == 1
    done = await queue.job(job.id)
    assert done is not None
    assert done.status is Status.FAILED
    assert done.error is not None and done.error.type == "LeaseExpired"


async def test_renewed_lease_is_not_reclaimed(queue: Queue) -> None:
    leased = await _lease_as_dead_worker(queue)
    for _ in range(4):
        await asyncio.sleep(0.4 * HEARTBEAT_S)
        assert await queue.renew([(leased.id, leased.lease)]) == ["active"]
        assert await queue.sweep() == 0
    # 1.6 heartbeats in: well past the heartbeat, but renewed all along.
    stored = await queue.job(leased.id)
    assert stored is not None and stored.status is Status.ACTIVE


async def test_stale_lease_is_refused(queue: Queue) -> None:
    old = await _lease_as_dead_worker(queue, retries=1)
    old_token = old.lease
    await asyncio.sleep(HEARTBEAT_S + EXPIRY_SLACK_S)
    assert await queue.sweep() == 1

    [new], _ = await queue.lease("new-worker", 1)
    assert new.id == old.id
    assert new.lease != old_token

    # The late worker's heartbeat, result and progress are all refused.
    assert await queue.renew([(old.id, old_token)]) == ["lost"]
    assert await queue.settle([Outcome(old.id, old_token, Status.COMPLETE, result="stale")]) == [
        False
    ]
    with pytest.raises(StaleLease):
        await old.update(progress=0.9)
    stored = await queue.job(old.id)
    assert stored is not None
    assert stored.status is Status.ACTIVE
    assert stored.result is None
    assert stored.progress == 0
    assert stored.attempts == 2

    # The current attempt still owns the job.
    assert await queue.renew([(new.id, new.lease)]) == ["active"]
    assert await queue.settle([Outcome(new.id, new.lease, Status.COMPLETE, result="fresh")]) == [
        True
    ]
    done = await queue.job(new.id)
    assert done is not None
    assert done.status is Status.COMPLETE
    assert done.result == "fresh"

    # Settling twice with the (now spent) token changes nothing either.
    assert await queue.settle([Outcome(new.id, new.lease, Status.FAILED)]) == [False]
    assert (await queue.job(new.id)).status is Status.COMPLETE  # type: ignore[union-attr]


async def test_renew_reports_each_lease_state(queue: Queue) -> None:
    a = await queue.enqueue("task", heartbeat=5)
    b = await queue.enqueue("task", heartbeat=5)
    assert a is not None and b is not None
    leased, _ = await queue.lease("w", 2)
    tokens = {j.id: j.lease for j in leased}
    assert set(tokens) == {a.id, b.id}
    aborting = await queue.abort(b, error="stop")
    assert aborting.status is Status.ABORTING
    states = await queue.renew(
        [(a.id, tokens[a.id]), (b.id, tokens[b.id]), (a.id, "not-a-real-token"), ("nope", "x")]
    )
    assert states == ["active", "aborting", "lost", "lost"]


@pytest.mark.slow
async def test_running_worker_renews_its_leases(queue: Queue, running_worker: Any) -> None:
    async def long_task(ctx: dict[str, Any]) -> str:
        await asyncio.sleep(2.5 * HEARTBEAT_S)
        return "survived"

    async with running_worker(queue, [long_task]):
        job = await queue.enqueue("long_task", heartbeat=HEARTBEAT_S)
        assert job is not None
        done = await queue.wait(job, timeout=8)
    assert done.status is Status.COMPLETE
    assert done.result == "survived"
    assert done.attempts == 1


async def test_worker_sweeper_reclaims_a_dead_workers_job(
    queue: Queue, running_worker: Any, owner_sweeping: Any
) -> None:
    runs: list[int] = []

    async def task(ctx: dict[str, Any]) -> str:
        runs.append(ctx["job"].attempts)
        return "rescued"

    leased = await _lease_as_dead_worker(queue, retries=1)
    async with running_worker(queue, [task]), owner_sweeping(queue):
        done = await queue.wait(leased, timeout=6)
    assert done.status is Status.COMPLETE
    assert done.result == "rescued"
    assert done.attempts == 2
    assert runs == [2]


async def test_worker_sweeper_fails_a_dead_workers_job_without_retries(
    queue: Queue, running_worker: Any, owner_sweeping: Any
) -> None:
    runs: list[int] = []

    async def task(ctx: dict[str, Any]) -> None:
        runs.append(1)

    leased = await _lease_as_dead_worker(queue)
    async with running_worker(queue, [task]), owner_sweeping(queue):
        done = await queue.wait(leased, timeout=6)
    assert done.status is Status.FAILED
    assert done.error is not None and done.error.type == "LeaseExpired"
    assert runs == []


async def test_a_handed_back_job_keeps_its_attempts(queue: Queue) -> None:
    """A job leased but never started (a stopping worker hands it back) does not use up an
    attempt; a retry after a failure does."""
    leased = await _lease_as_dead_worker(queue, retries=2)
    assert await queue.settle([Outcome.handed_back(leased)]) == [True]
    stored = await queue.job(leased.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (Status.QUEUED, 0)
    again, _ = await queue.lease("w", 1)
    assert [(j.id, j.attempts) for j in again] == [(leased.id, 1)]
    retry = Outcome.for_failure(again[0], ErrorInfo("E", "boom"))
    assert retry.status is Status.QUEUED
    assert await queue.settle([retry]) == [True]
    stored = await queue.job(leased.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (Status.QUEUED, 1)
