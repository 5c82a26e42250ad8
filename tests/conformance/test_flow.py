"""Flow control on every implementation: pause and resume, limits held across workers,
rate limits, and bulk operations by filter."""

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

import pytest
from timing import seconds

from jobwire import ErrorInfo, FunctionLimits, Job, JobFilter, Queue, QueueSettings, Rate, Status
from jobwire.backends.base import Outcome


class Gauge:
    """Counts jobs running now, overall and per label, and keeps the peaks."""

    def __init__(self) -> None:
        self.now: collections.Counter[str] = collections.Counter()
        self.peak: collections.Counter[str] = collections.Counter()
        self.starts: list[float] = []

    def task(self, hold_s: float) -> Callable[..., Any]:
        async def limited(ctx: dict[str, Any], *, label: str = "") -> None:
            self.starts.append(time.monotonic())
            for name in ("*", label):
                self.now[name] += 1
                self.peak[name] = max(self.peak[name], self.now[name])
            try:
                await asyncio.sleep(hold_s)
            finally:
                for name in ("*", label):
                    self.now[name] -= 1

        return limited


# Pause and resume.


async def test_paused_queue_leases_nothing_but_takes_enqueues(queue: Queue) -> None:
    await queue.pause()
    assert await queue.paused() is True
    job = await queue.enqueue("f")
    assert job is not None
    jobs, _ = await queue.lease("w1", 10)
    assert jobs == []
    assert (await queue.job(job.id)).status is Status.QUEUED  # type: ignore[union-attr]
    await queue.resume()
    assert await queue.paused() is False
    jobs, _ = await queue.lease("w1", 10)
    assert [j.id for j in jobs] == [job.id]


async def test_pause_is_stored_for_every_handle(queue: Queue, make_queue: Any) -> None:
    other = make_queue(queue.name)
    await queue.pause()
    assert await other.paused() is True
    info = await other.info()
    assert info["paused"] is True
    await other.resume()
    assert await queue.paused() is False


async def test_pause_stops_a_running_worker_and_resume_wakes_it(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    async def noop(ctx: dict[str, Any]) -> None:
        pass

    async with running_worker(queue, [noop], poll_interval_s=5):
        first = await queue.enqueue("noop")
        await wait_status(queue, first, Status.COMPLETE)
        await queue.pause()
        held = await queue.enqueue("noop")
        await asyncio.sleep(seconds(0.6))
        assert (await queue.job(held.id)).status is Status.QUEUED  # type: ignore[union-attr]
        started = time.monotonic()
        await queue.resume()
        await wait_status(queue, held, Status.COMPLETE, timeout=3)
        # a resume wakes the waiting worker: well within its 5 s poll
        assert time.monotonic() - started < 2.0


async def test_paused_queue_lets_running_jobs_finish(
    queue: Queue, running_worker: Any, wait_status: Any
) -> None:
    gate = asyncio.Event()

    async def gated(ctx: dict[str, Any]) -> str:
        await gate.wait()
        return "done"

    async with running_worker(queue, [gated]):
        job = await queue.enqueue("gated")
        await wait_status(queue, job, Status.ACTIVE)
        await queue.pause()
        gate.set()
        done = await wait_status(queue, job, Status.COMPLETE)
    assert done.result == "done"


# Settings.


async def test_settings_round_trip_and_show_in_info(queue: Queue, make_queue: Any) -> None:
    assert await queue.settings() == QueueSettings()
    settings = QueueSettings(
        max_active=5,
        max_active_per_key=1,
        rate=Rate(100, 1.0),
        rate_per_key=Rate(10, 2.0),
        functions={"f": FunctionLimits(max_active=2, rate=Rate(50, 1.0))},
    )
    await queue.configure(settings)
    assert await make_queue(queue.name).settings() == settings
    info = await queue.info()
    assert info["settings"] == settings.to_dict()
    await queue.configure(QueueSettings())
    assert await queue.settings() == QueueSettings()


async def test_from_url_limits_are_stored_on_connect(queue: Queue, make_queue: Any) -> None:
    limited = make_queue(queue.name, max_active=3, rate=Rate(20, 1.0))
    await limited.connect()
    assert await queue.settings() == QueueSettings(max_active=3, rate=Rate(20, 1.0))


@pytest.mark.parametrize(
    "bad",
    [
        QueueSettings(max_active=0),
        QueueSettings(rate=Rate(0, 1.0)),
        QueueSettings(rate=Rate(5, 0.0)),
        QueueSettings(functions={"f": FunctionLimits(max_active=-1)}),
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(
    queue: Queue, bad: QueueSettings
) -> None:
    with pytest.raises(ValueError):
        await queue.configure(bad)
    assert await queue.settings() == QueueSettings()


# Concurrency limits across workers.


async def test_max_active_holds_across_four_workers(
    queue: Queue, make_queue: Any, running_worker: Any
) -> None:
    await queue.configure(QueueSettings(max_active=5))
    gauge = Gauge()
    n = 60
    await queue.enqueue_many([Job("limited") for _ in range(n)])
    handles = [make_queue(queue.name) for _ in range(4)]
    async with (
        running_worker(handles[0], [gauge.task(0.05)], concurrency=50),
        running_worker(handles[1], [gauge.task(0.05)], concurrency=50),
        running_worker(handles[2], [gauge.task(0.05)], concurrency=50),
        running_worker(handles[3], [gauge.task(0.05)], concurrency=50),
    ):
        deadline = time.monotonic() + 20
        while (await queue.counts())[Status.COMPLETE] < n:
            assert time.monotonic() < deadline, await queue.counts()
            await asyncio.sleep(0.05)
    assert gauge.peak["*"] == 5


async def test_per_key_limit_runs_each_key_once_at_a_time(
    queue: Queue, make_queue: Any, running_worker: Any
) -> None:
    await queue.configure(QueueSettings(max_active_per_key=1))
    gauge = Gauge()
    keys = [f"tenant-{i}" for i in range(10)]
    # three jobs per key, keys interleaved after a run of one key's jobs (head of line)
    jobs = [
        Job("limited", kwargs={"label": key}, concurrency_key=key)
        for key in [keys[0]] * 3 + keys[1:] * 3
    ]
    await queue.enqueue_many(jobs)
    async with (
        running_worker(make_queue(queue.name), [gauge.task(0.3)], concurrency=50),
        running_worker(make_queue(queue.name), [gauge.task(0.3)], concurrency=50),
    ):
        deadline = time.monotonic() + 20
        while (await queue.counts())[Status.COMPLETE] < len(jobs):
            assert time.monotonic() < deadline, await queue.counts()
            await asyncio.sleep(0.05)
    assert all(gauge.peak[key] == 1 for key in keys), gauge.peak
    assert gauge.peak["*"] == 10  # every key ran at once: no key waited behind another


async def test_function_limit_does_not_block_other_functions(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    await queue.configure(QueueSettings(functions={"slow": FunctionLimits(max_active=1)}))
    release = asyncio.Event()
    running: collections.Counter[str] = collections.Counter()

    async def slow(ctx: dict[str, Any]) -> None:
        running["slow"] += 1
        await release.wait()

    async def quick(ctx: dict[str, Any]) -> None:
        running["quick"] += 1
        await release.wait()

    for _ in range(5):
        await queue.enqueue("slow")
    for _ in range(5):
        await queue.enqueue("quick")
    async with running_worker(queue, [slow, quick], concurrency=20):
        await eventually(lambda: running["quick"] == 5, timeout=5)
        await asyncio.sleep(seconds(0.4))
        assert running["slow"] == 1
        release.set()
        await eventually(lambda: running["slow"] == 5, timeout=10)


async def test_freed_slot_is_taken_without_polling_delay(queue: Queue, running_worker: Any) -> None:
    await queue.configure(QueueSettings(max_active=1))

    async def noop(ctx: dict[str, Any]) -> None:
        pass

    jobs = [await queue.enqueue("noop") for _ in range(20)]
    started = time.monotonic()
    async with running_worker(queue, [noop], concurrency=10, poll_interval_s=5):
        for job in jobs:
            await queue.wait(job, timeout=10)
        # measured before the worker stops: an http:// worker's stop waits for its
        # pending long poll to answer (up to the 5 s poll), which is not a freed slot
        ran_s = time.monotonic() - started
    # one at a time, each started as the previous one ended (not after a 5 s poll)
    assert ran_s < 5.0


async def test_limits_apply_to_plain_leases(queue: Queue) -> None:
    await queue.configure(QueueSettings(max_active=2))
    for _ in range(5):
        await queue.enqueue("f")
    first, _ = await queue.lease("w1", 10)
    second, _ = await queue.lease("w2", 10)
    assert (len(first), len(second)) == (2, 0)
    await queue.configure(QueueSettings(max_active=3))
    third, _ = await queue.lease("w2", 10)
    assert len(third) == 1


async def test_function_and_key_limits_hold_to_the_last_slot(queue: Queue) -> None:
    """Leases far from a function's or a key's limit take the head; the one that would
    pass it takes only what fits (a store may shortcut the first kind)."""
    await queue.configure(
        QueueSettings(max_active_per_key=4, functions={"f": FunctionLimits(max_active=3)})
    )
    await queue.enqueue_many([Job("f") for _ in range(6)])
    taken = [len((await queue.lease("w", 2))[0]) for _ in range(3)]
    assert taken == [2, 1, 0], taken
    await queue.enqueue_many([Job("g", concurrency_key="k") for _ in range(6)])
    taken = [len((await queue.lease("w", 3))[0]) for _ in range(3)]  # past the held f jobs
    assert taken == [3, 1, 0], taken
    active = await queue.jobs(Status.ACTIVE, 100)
    assert collections.Counter(job.function for job in active) == {"f": 3, "g": 4}


# Rate limits.


async def test_rate_holds_over_a_window_without_initial_burst(
    queue: Queue, make_queue: Any, running_worker: Any
) -> None:
    # 50 jobs/s for 10 s straight on a store; through a service the same store keeps
    # the limit, so a shorter window shows the pass-through
    run_s = 3.0 if queue.sweeps_itself else 10.0
    limit = 50
    await queue.configure(QueueSettings(rate=Rate(limit, 1.0)))
    gauge = Gauge()
    await queue.enqueue_many([Job("limited") for _ in range(int(limit * run_s * 1.5))])
    async with (
        running_worker(make_queue(queue.name), [gauge.task(0)], concurrency=50),
        running_worker(make_queue(queue.name), [gauge.task(0)], concurrency=50),
    ):
        await asyncio.sleep(run_s)
        started = list(gauge.starts)
    expected = limit * run_s
    assert expected * 0.95 <= len(started) <= expected * 1.05 + 1, len(started)
    # a sliding window: no second holds more than the limit, by the store's own lease
    # times (a task's start here lags its lease by a loaded machine's delay)
    leased = sorted(job.started for job in await queue.jobs(limit=1000) if job.started)
    for i, t in enumerate(leased):
        in_window = sum(1 for u in leased[i:] if u - t < 0.999)
        assert in_window <= limit, (i, in_window)


async def test_rate_reports_when_the_window_admits_more(queue: Queue) -> None:
    await queue.configure(QueueSettings(rate=Rate(2, 1.0)))
    for _ in range(5):
        await queue.enqueue("f")
    jobs, _ = await queue.lease("w1", 10)
    assert len(jobs) == 2
    more, next_s = await queue.lease("w1", 10)
    assert more == []
    assert next_s is not None and 0 < next_s <= 1.0
    await asyncio.sleep(next_s + 0.05)
    later, _ = await queue.lease("w1", 10)
    assert len(later) == 2


async def test_function_rate_leaves_other_functions_free(queue: Queue) -> None:
    await queue.configure(QueueSettings(functions={"f": FunctionLimits(rate=Rate(1, 60.0))}))
    for function in ("f", "f", "g", "g"):
        await queue.enqueue(function)
    jobs, _ = await queue.lease("w1", 10)
    assert sorted(j.function for j in jobs) == ["f", "g", "g"]


async def test_per_key_rate(queue: Queue) -> None:
    await queue.configure(QueueSettings(rate_per_key=Rate(1, 60.0)))
    for key in ("a", "a", "b", "b"):
        await queue.enqueue("f", concurrency_key=key)
    await queue.enqueue("f")  # no key: no per-key limit
    jobs, _ = await queue.lease("w1", 10)
    assert sorted(str(j.concurrency_key) for j in jobs) == ["None", "a", "b"]


# Bulk operations.


async def _finished(queue: Queue, status: Status, n: int, **options: Any) -> list[str]:
    """``n`` jobs that end ``status`` (failed or complete) without a worker."""
    jobs = [Job("f", **options) for _ in range(n)]
    await queue.enqueue_many(jobs)
    ids = []
    while len(ids) < n:
        leased, _ = await queue.lease("w-setup", 500)
        error = ErrorInfo("E", "x") if status is Status.FAILED else None
        await queue.settle(
            [Outcome(job.id, job.lease or "", status, result=1, error=error) for job in leased]
        )
        ids += [job.id for job in leased]
    return ids


async def test_bulk_retry_reruns_each_failed_job_once(queue: Queue, running_worker: Any) -> None:
    n = 2000 if queue.sweeps_itself else 10_000
    failed = await _finished(queue, Status.FAILED, n)
    await _finished(queue, Status.COMPLETE, 10)
    runs: collections.Counter[str] = collections.Counter()

    async def f(ctx: dict[str, Any]) -> None:
        runs[ctx["job"].id] += 1

    assert await queue.retry_jobs(status="failed") == n
    async with running_worker(queue, [f], concurrency=100):
        deadline = time.monotonic() + 60
        while (await queue.counts())[Status.COMPLETE] < n + 10:
            assert time.monotonic() < deadline, await queue.counts()
            await asyncio.sleep(0.1)
    assert set(runs) == set(failed)
    assert set(runs.values()) == {1}
    assert await queue.retry_jobs(status="failed") == 0


async def test_bulk_filters(queue: Queue) -> None:
    old = await queue.enqueue("f", key="k-1")
    await asyncio.sleep(0.05)
    cut = time.time()
    await asyncio.sleep(0.05)
    new_f = await queue.enqueue("f", key="k-2")
    new_g = await queue.enqueue("g", key="other")
    assert old and new_f and new_g
    assert await queue.abort_jobs(function="g") == 1
    assert (await queue.job(new_g.id)).status is Status.ABORTED  # type: ignore[union-attr]
    assert await queue.abort_jobs(key_prefix="k-", enqueued_before=cut) == 1
    assert (await queue.job(old.id)).status is Status.ABORTED  # type: ignore[union-attr]
    assert (await queue.job(new_f.id)).status is Status.QUEUED  # type: ignore[union-attr]
    assert await queue.retry_jobs(status="aborted", enqueued_after=cut) == 1
    assert (await queue.job(new_g.id)).status is Status.QUEUED  # type: ignore[union-attr]
    assert await queue.delete_jobs(key_prefix="k-") == 2
    assert await queue.job(old.id) is None
    assert await queue.job(new_f.id) is None
    assert await queue.job(new_g.id) is not None


async def test_bulk_abort_marks_active_jobs_aborting(queue: Queue) -> None:
    for _ in range(3):
        await queue.enqueue("f")
    leased, _ = await queue.lease("w1", 2)
    assert await queue.abort_jobs() == 3
    states = await queue.renew([(j.id, j.lease or "") for j in leased])
    assert states == ["aborting", "aborting"]
    assert (await queue.counts())[Status.ABORTED] == 1


async def test_bulk_retry_skips_live_jobs_and_delete_takes_any(queue: Queue) -> None:
    await _finished(queue, Status.COMPLETE, 3)
    await queue.enqueue("f")
    leased, _ = await queue.lease("w1", 1)
    assert len(leased) == 1
    await queue.enqueue("f")
    assert await queue.retry_jobs() == 3
    assert await queue.delete_jobs() == 5
    assert sum((await queue.counts()).values()) == 0


async def test_bulk_on_an_empty_filter_match_changes_nothing(queue: Queue) -> None:
    await queue.enqueue("f")
    assert await queue.delete_jobs(function="nope") == 0
    assert await queue.bulk("abort", JobFilter(status=Status.COMPLETE)) == 0
    assert (await queue.counts())[Status.QUEUED] == 1
