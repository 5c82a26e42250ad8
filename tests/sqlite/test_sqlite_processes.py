"""Several processes on one SQLite file: no job runs twice, and waiters hear each other."""

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlite_children

from jobwire import Job, Queue, QueueSettings, Status

pytestmark = pytest.mark.slow

SPAWN = multiprocessing.get_context("spawn")
JOBS = 200
CROSS_PROCESS_LAG_S = 0.3  # the poll is every 50 ms; the rest is slack for a busy machine


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh database file."""
    return f"sqlite:///{tmp_path}/jobs.db"


@pytest.fixture
async def queue(db_url: str) -> AsyncIterator[Queue]:
    """A queue on that file."""
    async with Queue.from_url(db_url, name=f"p-{uuid4().hex[:10]}") as q:
        yield q


@pytest.fixture
def children() -> Iterator[list[multiprocessing.process.BaseProcess]]:
    """Child processes, killed at the end if still running."""
    started: list[multiprocessing.process.BaseProcess] = []
    yield started
    for child in started:
        if child.is_alive():
            child.kill()
        child.join(5)


async def _until(timeout_s: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"{check.__name__} still false after {timeout_s} s"
        await asyncio.sleep(0.05)


async def test_two_worker_processes_run_each_job_exactly_once(
    queue: Queue, db_url: str, tmp_path: Path, children: list[multiprocessing.process.BaseProcess]
) -> None:
    runs_path = str(tmp_path / "runs.db")
    with sqlite3.connect(runs_path) as runs:
        runs.execute("CREATE TABLE runs (job_id TEXT NOT NULL, pid INTEGER NOT NULL)")
    stop = SPAWN.Event()
    for _ in range(2):
        child = SPAWN.Process(
            target=sqlite_children.run_worker, args=(db_url, queue.name, runs_path, stop)
        )
        child.start()
        children.append(child)

    async def both_workers_up() -> bool:
        return len((await queue.info())["workers"]) == 2

    await _until(30, both_workers_up)
    jobs = await queue.enqueue_many([Job("record", kwargs={"n": n}) for n in range(JOBS)])

    async def all_complete() -> bool:
        return (await queue.info())["counts"]["complete"] == JOBS

    await _until(30, all_complete)
    stop.set()
    for child in children:
        await asyncio.to_thread(child.join, 15)
        assert child.exitcode == 0

    with sqlite3.connect(runs_path) as runs:
        recorded = runs.execute("SELECT job_id, pid FROM runs").fetchall()
    ids = [job_id for job_id, _ in recorded]
    assert len(ids) == JOBS, "a job ran twice" if len(ids) > JOBS else "a job never ran"
    assert sorted(ids) == sorted(job.id for job in jobs if job is not None)
    assert len({pid for _, pid in recorded}) == 2, "one process did all the work"
    for job in jobs:
        assert job is not None
        stored = await queue.job(job.id)
        assert stored is not None
        assert (stored.status, stored.attempts) == (Status.COMPLETE, 1)
        assert stored.result == job.kwargs["n"]


async def test_racing_leases_in_two_processes_never_hand_out_a_job_twice(
    queue: Queue, db_url: str, children: list[multiprocessing.process.BaseProcess]
) -> None:
    jobs = await queue.enqueue_many([Job("task") for _ in range(300)])
    start = SPAWN.Barrier(3)
    results = SPAWN.Queue()
    for _ in range(2):
        child = SPAWN.Process(
            target=sqlite_children.lease_until_empty, args=(db_url, queue.name, start, results)
        )
        child.start()
        children.append(child)
    await asyncio.to_thread(start.wait, 30)
    first, second = [await asyncio.to_thread(results.get, True, 30) for _ in range(2)]

    assert not set(first) & set(second), "a job was leased by both processes"
    assert len(first) + len(second) == len(jobs)
    assert set(first) | set(second) == {job.id for job in jobs if job is not None}
    assert first and second, "one process took every job: no race happened"
    assert (await queue.info())["counts"]["complete"] == len(jobs)


async def test_enqueue_in_another_process_wakes_a_waiting_worker(
    queue: Queue, db_url: str, children: list[multiprocessing.process.BaseProcess]
) -> None:
    await queue.connect()
    results = SPAWN.Queue()
    child = SPAWN.Process(
        target=sqlite_children.enqueue_later, args=(db_url, queue.name, 1.0, results)
    )
    child.start()
    children.append(child)
    deadline = time.monotonic() + 30
    while not (await queue.info())["counts"]["queued"]:
        await queue.backend.wait_for_work(5.0)
        woke_at = time.time()
        assert time.monotonic() < deadline
    created = await asyncio.to_thread(results.get, True, 10)
    assert woke_at - created < CROSS_PROCESS_LAG_S


async def test_wait_hears_a_job_finished_by_another_process(
    queue: Queue, db_url: str, children: list[multiprocessing.process.BaseProcess]
) -> None:
    job = await queue.enqueue("anything")
    assert job is not None
    child = SPAWN.Process(target=sqlite_children.complete_one, args=(db_url, queue.name))
    child.start()
    children.append(child)
    done = await queue.wait(job, timeout=30)
    returned_at = time.time()
    assert done.status is Status.COMPLETE
    assert done.result == "done"
    assert returned_at - done.completed < CROSS_PROCESS_LAG_S


async def test_max_active_holds_across_worker_processes(
    queue: Queue, db_url: str, tmp_path: Path, children: list[multiprocessing.process.BaseProcess]
) -> None:
    await queue.configure(QueueSettings(max_active=3))
    runs_path = str(tmp_path / "runs.db")
    with sqlite3.connect(runs_path) as runs:
        runs.execute("CREATE TABLE runs (job_id TEXT NOT NULL, started REAL, ended REAL)")
    await queue.enqueue_many([Job("timed") for _ in range(60)])
    stop = SPAWN.Event()
    for _ in range(2):
        child = SPAWN.Process(
            target=sqlite_children.run_timed_worker, args=(db_url, queue.name, runs_path, stop)
        )
        child.start()
        children.append(child)

    async def all_complete() -> bool:
        return (await queue.info())["counts"]["complete"] == 60

    await _until(60, all_complete)
    stop.set()
    for child in children:
        await asyncio.to_thread(child.join, 15)
        assert child.exitcode == 0
    with sqlite3.connect(runs_path) as runs:
        spans = runs.execute("SELECT started, ended FROM runs").fetchall()
    assert len(spans) == 60
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:  # at equal times an end sorts first
        running += step
        peak = max(peak, running)
    assert peak == 3


async def test_resume_in_another_process_wakes_a_waiting_lease(
    queue: Queue, db_url: str, children: list[multiprocessing.process.BaseProcess]
) -> None:
    await queue.pause()
    await queue.enqueue("anything")
    results = SPAWN.Queue()
    child = SPAWN.Process(
        target=sqlite_children.resume_later, args=(db_url, queue.name, 1.0, results)
    )
    child.start()
    children.append(child)
    deadline = time.monotonic() + 30
    while not (await queue.lease("here", 1))[0]:
        await queue.backend.wait_for_work(5.0)
        assert time.monotonic() < deadline
    leased_at = time.time()
    resumed_at = await asyncio.to_thread(results.get, True, 10)
    assert leased_at - resumed_at < CROSS_PROCESS_LAG_S


async def test_slot_freed_in_another_process_wakes_a_waiting_lease(
    queue: Queue, db_url: str, children: list[multiprocessing.process.BaseProcess]
) -> None:
    await queue.configure(QueueSettings(max_active=1))
    first = await queue.enqueue("anything")
    assert first is not None and await queue.enqueue("anything") is not None
    child = SPAWN.Process(target=sqlite_children.complete_one, args=(db_url, queue.name))
    child.start()
    children.append(child)

    async def first_taken() -> bool:
        return (await queue.info())["counts"]["active"] == 1

    await _until(30, first_taken)
    deadline = time.monotonic() + 30
    while not (await queue.lease("here", 1))[0]:
        await queue.backend.wait_for_work(5.0)
        assert time.monotonic() < deadline
    leased_at = time.time()
    done = await queue.job(first.id)
    assert done is not None and done.status is Status.COMPLETE
    assert leased_at - done.completed < CROSS_PROCESS_LAG_S
