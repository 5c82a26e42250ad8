"""LISTEN/NOTIFY: wake-ups and job events reach other processes at once, and survive a
dropped LISTEN connection."""

import asyncio
import time
from typing import Any
from uuid import uuid4

import asyncpg

from jobwire import Queue, QueueSettings, Rate, Status, Worker
from jobwire.backends.base import Outcome
from jobwire.backends.postgres.backend import parse_url
from jobwire.backends.postgres.listen import channel_name

# Far longer than any wake-up may take: a test passing must not be the fallback timeout.
LONG_WAIT_S = 10.0
PROMPT_S = 1.0


async def add(ctx: dict[str, Any], *, a: int, b: int) -> int:
    return a + b


def _name() -> str:
    return f"notify-{uuid4().hex[:8]}"


async def test_enqueue_in_another_process_wakes_a_waiting_worker(postgres_url: str) -> None:
    name = _name()
    # Two Queue objects: two pools and two LISTEN connections, as two processes have.
    async with (
        Queue.from_url(postgres_url, name=name) as waiter,
        Queue.from_url(postgres_url, name=name) as producer,
    ):
        waiting = asyncio.create_task(waiter.backend.wait_for_work(LONG_WAIT_S))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        started = time.monotonic()
        await producer.enqueue("add", a=1, b=2)
        await asyncio.wait_for(waiting, PROMPT_S)
        assert time.monotonic() - started < PROMPT_S


async def test_other_queues_do_not_wake_the_worker(postgres_url: str) -> None:
    async with (
        Queue.from_url(postgres_url, name=_name()) as waiter,
        Queue.from_url(postgres_url, name=_name()) as other,
    ):
        await other.job("warm-up")  # connected: the enqueue below is one quick round trip
        waiting = asyncio.create_task(waiter.backend.wait_for_work(0.5))
        await other.enqueue("add", a=1, b=2)
        started = time.monotonic()
        await waiting
        assert time.monotonic() - started > 0.3, "woken by another queue's job"


async def test_wait_returns_when_another_process_settles(postgres_url: str) -> None:
    name = _name()
    async with (
        Queue.from_url(postgres_url, name=name) as client,
        Queue.from_url(postgres_url, name=name) as worker_side,
    ):
        job = await client.enqueue("add", a=1, b=2)
        assert job is not None
        waiting = asyncio.create_task(client.wait(job, timeout=LONG_WAIT_S))
        [leased], _ = await worker_side.lease("w", 1)
        await leased.update(progress=0.5)  # an event, but not the end: keeps waiting
        await asyncio.sleep(0.1)
        assert not waiting.done()
        started = time.monotonic()
        await worker_side.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE, result=3)])
        done = await asyncio.wait_for(waiting, PROMPT_S)
        assert time.monotonic() - started < PROMPT_S
    assert done.status is Status.COMPLETE
    assert done.result == 3


async def test_long_queue_names_get_hashed_channels(postgres_url: str) -> None:
    name = "q" * 120
    assert len(channel_name("events", name)) <= 63
    assert channel_name("wake", name) != channel_name("wake", name[:-1] + "x")
    async with (
        Queue.from_url(postgres_url, name=name) as waiter,
        Queue.from_url(postgres_url, name=name) as producer,
    ):
        waiting = asyncio.create_task(waiter.backend.wait_for_work(LONG_WAIT_S))
        await asyncio.sleep(0.1)
        job = await producer.enqueue("add", a=1, b=2)
        await asyncio.wait_for(waiting, PROMPT_S)
        assert job is not None
        await producer.abort(job)
        assert (await waiter.wait(job, timeout=PROMPT_S)).status is Status.ABORTED


async def _kill_listeners(postgres_url: str, queue_name: str) -> int:
    """Terminate the server sessions LISTENing for ``queue_name``; return how many."""
    admin = await asyncpg.connect(parse_url(postgres_url)[0])
    try:
        killed = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
            queue_name,
        )
        return len(killed)
    finally:
        await admin.close()


async def test_wake_ups_and_waits_survive_a_killed_listen_connection(postgres_url: str) -> None:
    queue = Queue.from_url(postgres_url, name=_name())
    # A long poll interval: if LISTEN did not come back, the job would wait 30 s.
    worker = Worker(queue, [add], poll_interval_s=30, handle_signals=False)
    running = asyncio.create_task(worker.start())
    try:
        assert await queue.apply("add", a=1, b=2, wait_timeout=5) == 3
        assert await _kill_listeners(postgres_url, queue.name) >= 1

        started = time.monotonic()
        assert await queue.apply("add", a=2, b=2, wait_timeout=5) == 4
        assert time.monotonic() - started < 3
    finally:
        await worker.stop()
        await running
        await queue.close()


async def test_a_wait_in_progress_survives_a_killed_listen_connection(postgres_url: str) -> None:
    name = _name()
    async with (
        Queue.from_url(postgres_url, name=name) as client,
        Queue.from_url(postgres_url, name=name) as worker_side,
    ):
        job = await client.enqueue("add", a=1, b=2)
        assert job is not None
        waiting = asyncio.create_task(client.wait(job, timeout=LONG_WAIT_S))
        await asyncio.sleep(0.1)
        assert await _kill_listeners(postgres_url, name) >= 1
        # Settled while the waiter is reconnecting: its NOTIFY is lost, the re-check is not.
        [leased], _ = await worker_side.lease("w", 1)
        await worker_side.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE, result=3)])
        done = await asyncio.wait_for(waiting, 3)
    assert done.result == 3


async def _wake_ups(postgres_url: str, queue: Queue, work: Any, expected: int = 0) -> list[str]:
    """The notifications on the queue's wake channel while ``work()`` runs: waits for
    ``expected`` of them (up to ``LONG_WAIT_S``), then 0.2 s for any more."""
    heard: list[str] = []
    arrived = asyncio.Event()
    listener = await asyncpg.connect(postgres_url)

    def hear(*args: Any) -> None:
        heard.append(args[3])
        if len(heard) >= expected:
            arrived.set()

    await listener.add_listener(channel_name("wake", queue.name), hear)
    try:
        await work()
        if expected:
            await asyncio.wait_for(arrived.wait(), LONG_WAIT_S)
        await asyncio.sleep(0.2)
    finally:
        await listener.close()
    return heard


async def test_a_freed_slot_wakes_leases_only_when_a_job_may_wait_for_it(
    postgres_url: str,
) -> None:
    """A settle wakes waiting leases if the queue has a concurrency limit and queued jobs
    (one may be held back for the slot), not at every settle of a limited queue: waiting
    leases of every process would each go to the store for nothing."""
    async with Queue.from_url(postgres_url, name=_name()) as queue:
        await queue.configure(QueueSettings(max_active=2))
        await queue.enqueue("add", a=1, b=1)
        [job], _ = await queue.lease("w", 5)  # nothing else queued: no one waits
        done = [Outcome(job.id, job.lease or "", Status.COMPLETE)]
        assert await _wake_ups(postgres_url, queue, lambda: queue.settle(done)) == []
        for n in range(3):
            await queue.enqueue("add", a=n, b=n)
        leased, _ = await queue.lease("w", 5)  # two; the third is held by max_active
        assert len(leased) == 2
        done = [Outcome(j.id, j.lease or "", Status.COMPLETE) for j in leased]
        assert await _wake_ups(postgres_url, queue, lambda: queue.settle(done), 1) == [""]
        await queue.configure(QueueSettings(rate=Rate(1000, 1.0)))  # no slots to free
        [job], _ = await queue.lease("w", 5)
        await queue.enqueue("add", a=9, b=9)
        done = [Outcome(job.id, job.lease or "", Status.COMPLETE)]
        assert await _wake_ups(postgres_url, queue, lambda: queue.settle(done)) == []


async def test_a_slot_freed_through_any_process_wakes_the_held_lease(postgres_url: str) -> None:
    """The settle that frees a slot may come from a process that never leased from the
    queue (another service replica, a sweeper): the lease held back elsewhere wakes."""
    name = _name()
    async with (
        Queue.from_url(postgres_url, name=name) as waiter,
        Queue.from_url(postgres_url, name=name) as other,
    ):
        await waiter.configure(QueueSettings(max_active=1))
        await waiter.enqueue("add", a=1, b=1)
        await waiter.enqueue("add", a=2, b=2)
        [job], _ = await waiter.lease("w", 5)  # the second is held by max_active
        assert (await waiter.lease("w", 5))[0] == []
        await asyncio.sleep(0.2)
        await waiter.backend.wait_for_work(0.0)  # drop the enqueues' wake-ups, heard by now
        waiting = asyncio.create_task(waiter.backend.wait_for_work(LONG_WAIT_S))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await other.settle([Outcome(job.id, job.lease or "", Status.COMPLETE)])
        await asyncio.wait_for(waiting, LONG_WAIT_S)
        assert time.monotonic() - started < PROMPT_S
        assert len((await waiter.lease("w", 5))[0]) == 1
