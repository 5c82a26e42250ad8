"""Flow control on the SQLite store itself: what the limits count across every transition,
the wake-ups a freed slot gives, the rate logs, the bounded head scan, bulk passes, and
the migration of a version-1 database."""

import asyncio
import collections
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobwire import ErrorInfo, FunctionLimits, Job, JobFilter, Queue, QueueSettings, Rate, Status
from jobwire.backends.base import Outcome
from jobwire.backends.sqlite import SqliteBackend, limits
from jobwire.backends.sqlite.rows import lease_state
from jobwire.flow import BulkAction

# Limits far above what the tests reach: they make the store count, and hold nothing.
COUNTING = QueueSettings(
    max_active=1000, max_active_per_key=1000, functions={"f": FunctionLimits(max_active=1000)}
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
async def queue(db_path: Path) -> AsyncIterator[Queue]:
    async with Queue.from_url(f"sqlite:///{db_path}", name="q", lease_s=30) as q:
        yield q


def _backend(queue: Queue) -> SqliteBackend:
    assert isinstance(queue.backend, SqliteBackend)
    return queue.backend


async def _active(queue: Queue) -> dict[str, int]:
    """What the concurrency limits see: active jobs by scope, and the queue's count the
    lease reads in its first statement (they must agree)."""
    async with _backend(queue)._writing() as tx:
        counted = await limits.count_active(tx, by_function=True, by_key=True)
        state = await lease_state(tx)
    assert state.active == counted[""], (state.active, counted)
    return {scope: n for scope, n in counted.items() if n}


def _done(job: Job, status: Status = Status.COMPLETE, **options: object) -> Outcome:
    return Outcome(job.id, job.lease or "", status, **options)  # type: ignore[arg-type]


async def test_active_counts_follow_every_transition(queue: Queue, db_path: Path) -> None:
    await queue.configure(COUNTING)
    jobs = [Job("f", concurrency_key="a") for _ in range(6)]
    jobs += [Job("g", concurrency_key="b") for _ in range(4)] + [Job("g")]
    await queue.enqueue_many(jobs)
    assert await _active(queue) == {}
    leased, _ = await queue.lease("w", 20)
    assert len(leased) == 11
    by_id = {job.id: job for job in leased}
    a = [by_id[job.id] for job in jobs[:6]]
    b = [by_id[job.id] for job in jobs[6:10]]
    assert await _active(queue) == {"": 11, "f:f": 6, "f:g": 5, "k:a": 6, "k:b": 4}

    error = ErrorInfo("E", "x")
    await queue.settle([_done(a[0]), _done(a[1], Status.FAILED, error=error)])
    await queue.settle([_done(a[2], Status.ABORTED, error=error)])
    await queue.settle([_done(a[3], Status.QUEUED, error=error)])  # a retry, due now
    await queue.settle([_done(b[0], Status.QUEUED, delay_s=60)])  # a retry, scheduled
    await queue.settle([_done(b[1], Status.QUEUED)])  # a worker's hand-back
    assert await _active(queue) == {"": 5, "f:f": 2, "f:g": 3, "k:a": 2, "k:b": 2}

    await queue.abort(a[4])  # aborting: counted until its worker settles it
    assert await queue.abort_jobs(function="g", status="active") == 3  # b[2], b[3], keyless
    assert await _active(queue) == {"": 5, "f:f": 2, "f:g": 3, "k:a": 2, "k:b": 2}
    assert await queue.settle([_done(a[4], Status.ABORTED)]) == [True]
    assert await _active(queue) == {"": 4, "f:f": 1, "f:g": 3, "k:a": 1, "k:b": 2}

    assert await _backend(queue).delete(a[5].id)  # deleted while active
    assert await _active(queue) == {"": 3, "f:g": 3, "k:b": 2}
    assert await queue.delete_jobs(status="aborting") == 3
    assert await _active(queue) == {}

    # the retried and handed-back jobs count again once leased (b[0] is still scheduled)
    again, _ = await queue.lease("w", 20)
    assert sorted(j.id for j in again) == sorted([a[3].id, b[1].id])
    assert await _active(queue) == {"": 2, "f:f": 1, "f:g": 1, "k:a": 1, "k:b": 1}
    # a sweep reclaims jobs whose lease expired (backdated: no waiting for it)
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE jobwire_jobs SET lease_expires = 0 WHERE status = 'active'")
    assert await queue.sweep() == 2
    assert await _active(queue) == {}


async def test_a_lease_reads_only_what_the_limits_need_first(queue: Queue) -> None:
    await queue.enqueue_many([Job("f"), Job("f")])
    async with _backend(queue)._writing() as tx:
        state = await lease_state(tx)
    assert (state.settings, state.active, state.rate_used, state.paused) == (None,) * 3 + (False,)
    await queue.configure(QueueSettings(rate=Rate(5, 1.0)))  # no concurrency limit
    async with _backend(queue)._writing() as tx:
        state = await lease_state(tx)
    assert state.settings is not None and (state.active, state.rate_used) == (None, 0)
    await queue.lease("w", 1)
    await queue.configure(QueueSettings(max_active=5, rate=Rate(5, 1.0)))
    async with _backend(queue)._writing() as tx:
        state = await lease_state(tx)
    assert (state.active, state.rate_used) == (1, 1)


async def test_concurrency_key_round_trips(queue: Queue) -> None:
    keyed = await queue.enqueue("f", concurrency_key="tenant-1")
    plain = await queue.enqueue("f")
    assert keyed is not None and plain is not None
    assert (await queue.job(keyed.id)).concurrency_key == "tenant-1"  # type: ignore[union-attr]
    assert (await queue.job(plain.id)).concurrency_key is None  # type: ignore[union-attr]
    listed = {job.id: job.concurrency_key for job in await queue.jobs(Status.QUEUED)}
    assert listed == {keyed.id: "tenant-1", plain.id: None}
    leased, _ = await queue.lease("w", 5)
    assert {job.id: job.concurrency_key for job in leased} == listed


@pytest.mark.parametrize(("limited", "queued"), [(True, 1), (True, 0), (False, 1)])
async def test_a_freed_slot_wakes_leases_where_a_limit_may_hold_a_queued_job(
    queue: Queue, limited: bool, queued: int
) -> None:
    if limited:
        await queue.configure(QueueSettings(max_active=1))
    await queue.enqueue_many([Job("f") for _ in range(1 + queued)])
    [job], _ = await queue.lease("w", 1)
    backend = _backend(queue)
    backend._work.clear()
    waiting = asyncio.create_task(backend.wait_for_work(2.0))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await queue.settle([_done(job)])
    await waiting
    woke_s = time.monotonic() - started
    if limited and queued:
        assert woke_s < 0.5
    else:
        assert woke_s > 1.5  # nothing waits for the slot: no wake-up per finished job


async def test_resume_and_new_limits_wake_waiting_leases(queue: Queue) -> None:
    backend = _backend(queue)
    await queue.connect()
    for change in (queue.resume(), queue.configure(QueueSettings(max_active=3))):
        backend._work.clear()
        waiting = asyncio.create_task(backend.wait_for_work(2.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await change
        await waiting
        assert time.monotonic() - started < 0.5


async def test_paused_lease_promotes_due_jobs_but_takes_none(queue: Queue) -> None:
    job = await queue.enqueue("f", scheduled=time.time() + 0.05)
    assert job is not None
    await queue.pause()
    await asyncio.sleep(0.1)
    assert await queue.lease("w", 5) == ([], None)
    assert (await queue.job(job.id)).status is Status.QUEUED  # type: ignore[union-attr]


async def test_rate_log_keeps_one_entry_per_lease_and_sweeps_prune_it(
    queue: Queue, db_path: Path
) -> None:
    await queue.configure(QueueSettings(rate=Rate(100, 0.2), rate_per_key=Rate(100, 0.2)))
    await queue.enqueue_many([Job("f", concurrency_key="k") for _ in range(5)])
    leased, _ = await queue.lease("w", 5)
    assert len(leased) == 5
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT scope, n FROM jobwire_starts ORDER BY scope").fetchall() == [
            ("", 5),
            ("k:k", 5),
        ]
    await asyncio.sleep(0.25)
    await queue.sweep()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM jobwire_starts").fetchone() == (0,)


async def test_lowered_rate_waits_until_enough_starts_age_out(queue: Queue) -> None:
    await queue.enqueue_many([Job("f") for _ in range(10)])
    await queue.configure(QueueSettings(rate=Rate(4, 1.0)))
    first, _ = await queue.lease("w", 10)
    assert len(first) == 4
    await queue.configure(QueueSettings(rate=Rate(2, 1.0)))  # 4 in the window, 2 allowed
    more, next_s = await queue.lease("w", 10)
    assert more == [] and next_s is not None and 0.9 < next_s <= 1.0
    await asyncio.sleep(next_s + 0.05)
    later, _ = await queue.lease("w", 10)
    assert len(later) == 2


async def test_head_scan_is_bounded(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "SCAN_WINDOW", 5)
    await queue.configure(QueueSettings(functions={"slow": FunctionLimits(max_active=1)}))
    await queue.enqueue_many([Job("slow") for _ in range(6)] + [Job("quick")])
    leased, _ = await queue.lease("w", 10)
    assert [job.function for job in leased] == ["slow"]  # "quick" is past the window
    await queue.delete_jobs(function="slow", status="queued")
    leased, _ = await queue.lease("w", 10)
    assert [job.function for job in leased] == ["quick"]


async def test_bulk_pass_visits_each_job_once_in_bounded_steps(queue: Queue) -> None:
    jobs = [Job("f") for _ in range(10)]
    await queue.enqueue_many(jobs)
    leased, _ = await queue.lease("w", 10)
    await queue.settle([_done(job, Status.FAILED, error=ErrorInfo("E", "x")) for job in leased])
    backend = _backend(queue)
    where = JobFilter(status=Status.FAILED)
    cursor: str | None = None
    steps: list[int] = []
    while True:
        changed, cursor = await backend.bulk(BulkAction.RETRY, where, cursor, 3)
        steps.append(changed)
        if cursor is None:
            break
    assert steps == [3, 3, 3, 1]
    counts = await queue.counts()
    assert (counts[Status.QUEUED], counts[Status.FAILED]) == (10, 0)
    stored = [await queue.job(job.id) for job in jobs]
    assert collections.Counter(job.attempts for job in stored if job) == {1: 10}


async def test_bulk_retry_keeps_one_live_job_per_dedup_key(queue: Queue) -> None:
    first = await queue.enqueue("f", key="k")
    assert first is not None
    [leased], _ = await queue.lease("w", 1)
    await queue.settle([_done(leased)])
    second = await queue.enqueue("f", key="k")  # the key is free again
    assert second is not None
    [leased], _ = await queue.lease("w", 1)
    await queue.settle([_done(leased)])
    assert await queue.retry_jobs(key_prefix="k") == 1  # both finished: only one is live after
    assert await queue.retry_jobs() == 0  # the other's key is held now
    assert (await queue.counts())[Status.QUEUED] == 1


async def test_bulk_skips_rows_past_their_ttl(queue: Queue, db_path: Path) -> None:
    job = await queue.enqueue("f", ttl=60)
    assert job is not None
    [leased], _ = await queue.lease("w", 1)
    await queue.settle([_done(leased)])
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE jobwire_jobs SET expires_at = 1")
    assert await queue.delete_jobs() == 0
    assert await queue.retry_jobs() == 0


async def test_version_1_database_is_migrated_in_place(db_path: Path) -> None:
    migrations = Path(limits.__file__).parent / "migrations"
    with sqlite3.connect(db_path) as raw:
        raw.executescript((migrations / "001_initial.sql").read_text())
        raw.execute("PRAGMA user_version = 1")
        raw.execute(
            "INSERT INTO jobwire_jobs (queue, id, function, kwargs, status, seq, created,"
            " queued) VALUES ('q', 'old', 'f', '{}', 'queued', 1, 1, 1)"
        )
        raw.execute("INSERT INTO jobwire_queues (queue, seq) VALUES ('q', 1)")
    async with Queue.from_url(f"sqlite:///{db_path}", name="q") as queue:
        old = await queue.job("old")
        assert old is not None and old.concurrency_key is None
        assert await queue.settings() == QueueSettings()
        assert await queue.paused() is False
        await queue.configure(QueueSettings(max_active=1))
        leased, _ = await queue.lease("w", 5)
        assert [job.id for job in leased] == ["old"]
    with sqlite3.connect(db_path) as raw:
        newest = len(list(migrations.glob("*.sql")))
        assert raw.execute("PRAGMA user_version").fetchone() == (newest,)


async def test_many_keys_in_one_lease(queue: Queue) -> None:
    # a window's worth of distinct keys: every rate window is read (and reported) in one
    # statement, within SQLite's limits on bound parameters
    await queue.configure(QueueSettings(max_active_per_key=1, rate_per_key=Rate(1, 60.0)))
    keys = [f"tenant-{n}" for n in range(limits.SCAN_WINDOW)]
    await queue.enqueue_many([Job("f", concurrency_key=key) for key in keys * 2])
    leased, _ = await queue.lease("w", 2 * len(keys))  # the second round is past the window
    assert sorted(str(job.concurrency_key) for job in leased) == sorted(keys)
    await queue.settle([_done(job) for job in leased])
    more, next_s = await queue.lease("w", 10)
    assert more == [] and next_s is not None and 45 < next_s <= 60  # slack for a busy machine
