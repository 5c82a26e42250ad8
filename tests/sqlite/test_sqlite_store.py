"""The SQLite store itself: URLs, WAL, the schema and its migration, :memory:, ttl rows."""

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from jobwire import Job, Queue, Status
from jobwire.backends.base import Outcome
from jobwire.backends.sqlite import SqliteBackend
from jobwire.backends.sqlite import store as store_module
from jobwire.backends.sqlite.store import MEMORY, database_of

MEMORY_URL = "sqlite://:memory:"


def _name() -> str:
    return f"s-{uuid4().hex[:10]}"


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("sqlite:///jobs.db", os.path.abspath("jobs.db")),
        ("sqlite:///data/jobs.db", os.path.abspath("data/jobs.db")),
        ("sqlite:////var/lib/jobs.db", "/var/lib/jobs.db"),
        ("SQLITE:////tmp/with%20space.db", "/tmp/with space.db"),
        ("sqlite://:memory:", MEMORY),
        ("sqlite:///:memory:", MEMORY),
    ],
)
def test_url_names_the_database(url: str, database: str) -> None:
    assert database_of(url) == database


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/jobs.db"])
def test_bad_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        Queue.from_url(url)


def test_from_url_picks_the_sqlite_backend(tmp_path: Path) -> None:
    queue = Queue.from_url(f"sqlite:///{tmp_path}/jobs.db", name="q")
    assert isinstance(queue.backend, SqliteBackend)


async def test_file_is_created_in_wal_mode_with_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "jobs.db"
    async with Queue.from_url(f"sqlite:///{path}", name="q") as queue:
        await queue.enqueue("task")
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            newest = len(list((Path(store_module.__file__).parent / "migrations").glob("*.sql")))
            assert raw.execute("PRAGMA user_version").fetchone() == (newest,)
            tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master")}
    assert {"jobwire_jobs", "jobwire_queues", "jobwire_workers", "jobwire_starts"} <= tables
    assert "jobwire_jobs_dequeue" in tables and "jobwire_jobs_live_key" in tables


async def test_status_is_check_constrained(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with Queue.from_url(f"sqlite:///{path}", name="q") as queue:
        await queue.connect()
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        raw.execute(
            "INSERT INTO jobwire_jobs (queue, id, function, kwargs, status)"
            " VALUES ('q', 'x', 'f', '{}', 'lost')"
        )


async def test_reopening_keeps_the_jobs_and_migrates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue.from_url(url, name="q") as queue:
        job = await queue.enqueue("task", n=1)
    assert job is not None
    async with Queue.from_url(url, name="q") as again:
        stored = await again.job(job.id)
    assert stored is not None and stored.kwargs == {"n": 1}


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    errors: list[BaseException] = []

    async def open_and_enqueue() -> None:
        async with Queue.from_url(url, name="q") as queue:
            await queue.enqueue("task")

    def thread_main() -> None:  # its own event loop: its own connection, as a process has
        try:
            asyncio.run(open_and_enqueue())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread_main) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with sqlite3.connect(tmp_path / "jobs.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM jobwire_jobs").fetchone() == (4,)


async def test_memory_database_is_shared_by_the_processs_queues() -> None:
    name = _name()
    async with Queue.from_url(MEMORY_URL, name=name) as first:
        job = await first.enqueue("task", n=1)
        assert job is not None
        async with Queue.from_url(MEMORY_URL, name=name) as second:
            [leased], _ = await second.lease("w", 5)
            assert leased.id == job.id
            await second.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE, result=2)])
            done = await first.wait(job, timeout=1)
    assert done.result == 2
    async with Queue.from_url(MEMORY_URL, name=name) as fresh:  # the last close dropped it
        assert await fresh.job(job.id) is None


async def test_memory_wakes_another_handle_at_once() -> None:
    name = _name()
    async with (
        Queue.from_url(MEMORY_URL, name=name) as waiter,
        Queue.from_url(MEMORY_URL, name=name) as producer,
    ):
        await waiter.connect()
        waiting = asyncio.create_task(waiter.backend.wait_for_work(5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await producer.enqueue("task")
        await asyncio.wait_for(waiting, 1)
    assert time.monotonic() - started < 0.1


@pytest.mark.slow
async def test_finished_job_past_its_ttl_is_invisible_then_deleted(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with Queue.from_url(f"sqlite:///{path}", name="q") as queue:
        job = await queue.enqueue("task", ttl=1)
        assert job is not None
        [leased], _ = await queue.lease("w", 1)
        await queue.settle([Outcome(job.id, leased.lease or "", Status.COMPLETE)])
        assert (await queue.job(job.id)) is not None
        await asyncio.sleep(1.1)
        assert await queue.job(job.id) is None
        assert (await queue.info())["counts"]["complete"] == 0
        assert await queue.jobs(Status.COMPLETE) == []
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT COUNT(*) FROM jobwire_jobs").fetchone() == (1,)
        again = await queue.enqueue(job)  # its id is free again, as on Redis
        assert again is not None
        await queue.abort(again)
        await asyncio.sleep(1.1)
        assert await queue.sweep() == 0  # expired() also drops the rows past their ttl
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT COUNT(*) FROM jobwire_jobs").fetchone() == (0,)


async def test_a_cancelled_transaction_leaves_the_connection_usable(tmp_path: Path) -> None:
    async with Queue.from_url(f"sqlite:///{tmp_path}/jobs.db", name="q") as queue:
        await queue.connect()
        for delay_s in (0, 0.001, 0.003, 0.01, 0.03):
            await _cancel_after(queue.enqueue_many([Job("task") for _ in range(2000)]), delay_s)
        queued = (await queue.info())["counts"]["queued"]
        assert queued % 2000 == 0, "a batch was half stored"
        assert await queue.enqueue("after") is not None
        assert (await queue.info())["counts"]["queued"] == queued + 1


async def _cancel_after(work: Coroutine[Any, Any, Any], delay_s: float) -> None:
    """Run ``work`` and cancel it after ``delay_s``, unless it finished first."""
    task = asyncio.ensure_future(work)
    await asyncio.sleep(delay_s)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_queues_find_job_delete_and_watch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db"
    async with Queue.from_url(url, name="a") as a, Queue.from_url(url, name="b") as b:
        job = await b.enqueue("task", key="k")
        assert job is not None and await a.enqueue("task") is not None
        assert await a.backend.queues() == ["a", "b"]
        found = await a.backend.find_job(job.id)
        assert found is not None and (found.queue, found.id) == ("b", job.id)
        assert await a.backend.find_job("no-such-job") is None

        seen: list[Status | None] = []

        async def watch() -> None:
            async for change in b.backend.watch(job.id):
                seen.append(change.status if change is not None else None)

        watching = asyncio.create_task(watch())
        await asyncio.sleep(0.05)
        assert await b.backend.delete(job.id) is True
        await asyncio.wait_for(watching, 1)
        assert seen == [Status.QUEUED, None]
        assert await b.backend.delete(job.id) is False
        assert await b.enqueue("task", key="k") is not None, "delete did not free the key"


async def test_a_call_cancelled_while_waiting_for_the_write_lock_leaves_no_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    async with Queue.from_url(f"sqlite:///{path}", name="q") as queue:
        await queue.connect()
        other = sqlite3.connect(path, isolation_level=None)  # another process, as it were
        other.execute("BEGIN IMMEDIATE")
        try:
            waiting = asyncio.create_task(queue.enqueue("cancelled"))
            await asyncio.sleep(0.2)  # its BEGIN IMMEDIATE waits in SQLite's busy handler
            waiting.cancel()
            following = asyncio.create_task(queue.enqueue("following"))
            await asyncio.sleep(0.2)
        finally:
            other.rollback()  # the cancelled BEGIN goes through now
            other.close()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert await asyncio.wait_for(following, 5) is not None
        assert [job.function for job in await queue.jobs(Status.QUEUED)] == ["following"]


async def test_a_wal_write_seen_before_its_commit_shows_is_looked_at_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    async with Queue.from_url(f"sqlite:///{path}", name="q") as queue:
        await queue.enqueue("first")  # the queue's counters exist
        backend = queue.backend
        assert isinstance(backend, SqliteBackend)
        wal = (await backend._store()).hub._wal
        assert wal is not None
        wal._wal = "not-the-wal"  # real writes go unseen: the test plays inotify itself
        backend._work.clear()
        waiting = asyncio.create_task(backend.wait_for_work(3.0))
        await asyncio.sleep(0.1)
        wal.changed.set()  # another process wrote its frames; its commit does not show yet
        await asyncio.sleep(0.03)
        with sqlite3.connect(path) as raw:  # now it does (and no further WAL event comes)
            raw.execute("UPDATE jobwire_queues SET work_version = work_version + 1")
        committed = time.monotonic()
        await waiting
    assert time.monotonic() - committed < 0.5  # not the next once-a-second poll
