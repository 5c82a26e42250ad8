"""Enqueueing: stored fields, queue defaults, option validation, batches and priority."""

import time
from typing import Any

import pytest

from jobwire import Job, JobNotFound, Queue, Status


async def test_enqueue_stores_a_queued_job(queue: Queue) -> None:
    before = time.time()
    job = await queue.enqueue("add", a=1, b="two", c=[1, {"d": None}])
    assert job is not None
    assert job.status is Status.QUEUED
    assert job.function == "add"
    assert job.kwargs == {"a": 1, "b": "two", "c": [1, {"d": None}]}
    assert job.queue == queue.name
    assert job.attempts == 0

    stored = await queue.job(job.id)
    assert stored is not None
    assert stored.id == job.id
    assert stored.status is Status.QUEUED
    assert stored.function == "add"
    assert stored.kwargs == {"a": 1, "b": "two", "c": [1, {"d": None}]}
    assert stored.queue == queue.name
    assert before - 1 <= stored.created <= time.time() + 1


async def test_each_enqueue_creates_a_distinct_job(queue: Queue) -> None:
    first = await queue.enqueue("fn")
    second = await queue.enqueue("fn")
    assert first is not None and second is not None
    assert first.id != second.id
    assert (await queue.info())["counts"]["queued"] == 2


async def test_queue_name_is_exposed(make_queue: Any) -> None:
    q = make_queue(name="some-queue-name")
    assert q.name == "some-queue-name"


async def test_enqueue_options_are_stored(queue: Queue) -> None:
    job = await queue.enqueue(
        "fn",
        timeout=5,
        retries=3,
        ttl=60,
        key="k1",
        heartbeat=4,
        retry_delay=0.5,
        retry_backoff=True,
        priority=7,
        x=1,
    )
    assert job is not None
    stored = await queue.job(job.id)
    assert stored is not None
    assert stored.timeout == 5
    assert stored.retries == 3
    assert stored.ttl == 60
    assert stored.key == "k1"
    assert stored.heartbeat == 4
    assert stored.retry_delay == 0.5
    assert stored.retry_backoff is True
    assert stored.priority == 7
    assert stored.kwargs == {"x": 1}


async def test_queue_defaults_fill_unset_options(make_queue: Any) -> None:
    q = make_queue(timeout=7, retries=2, ttl=50)
    defaulted = await q.enqueue("fn")
    explicit = await q.enqueue("fn", timeout=1, retries=0, ttl=5)
    assert defaulted is not None and explicit is not None
    stored = await q.job(defaulted.id)
    assert stored is not None
    assert (stored.timeout, stored.retries, stored.ttl) == (7, 2, 50)
    stored = await q.job(explicit.id)
    assert stored is not None
    assert (stored.timeout, stored.retries, stored.ttl) == (1, 0, 5)


async def test_enqueue_a_job_instance(queue: Queue) -> None:
    job = await queue.enqueue(Job("fn", kwargs={"x": 1}, timeout=5, priority=3))
    assert job is not None
    stored = await queue.job(job.id)
    assert stored is not None
    assert stored.kwargs == {"x": 1}
    assert stored.timeout == 5
    assert stored.priority == 3
    assert stored.queue == queue.name
    assert stored.status is Status.QUEUED


async def test_enqueue_many_keeps_order(queue: Queue) -> None:
    jobs = await queue.enqueue_many(
        [Job("fn", kwargs={"i": 0}), Job("fn", kwargs={"i": 1}), Job("fn", kwargs={"i": 2})]
    )
    assert len(jobs) == 3
    assert all(j is not None for j in jobs)
    assert [j.kwargs["i"] for j in jobs if j is not None] == [0, 1, 2]
    for j in jobs:
        assert j is not None
        stored = await queue.job(j.id)
        assert stored is not None and stored.status is Status.QUEUED
    assert (await queue.info())["counts"]["queued"] == 3


async def test_job_lookup_of_unknown_id_is_none(queue: Queue) -> None:
    assert await queue.job("no-such-job") is None


async def test_abort_and_retry_of_unknown_id_raise_not_found(queue: Queue) -> None:
    with pytest.raises(JobNotFound):
        await queue.abort("no-such-job")
    with pytest.raises(JobNotFound):
        await queue.retry("no-such-job")


def test_unknown_url_scheme_raises_value_error_naming_schemes() -> None:
    with pytest.raises(ValueError, match="redis"):
        Queue.from_url("nosuchscheme://localhost/0", name="x")


class _Opaque:
    """A value JSON cannot encode."""

    def __repr__(self) -> str:  # the same test id in every process (pytest-xdist)
        return "_Opaque()"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": "5"}, TypeError),
        ({"retries": "1"}, TypeError),
        ({"priority": 1.5}, TypeError),
        ({"key": 3}, TypeError),
        ({"payload": {1, 2}}, TypeError),
        ({"payload": _Opaque()}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"retries": -1}, ValueError),
        ({"priority": 1001}, ValueError),
        ({"priority": -1001}, ValueError),
        ({"ttl": -5}, ValueError),
        ({"heartbeat": -1}, ValueError),
        ({"retry_delay": -0.1}, ValueError),
        ({"scheduled": -10}, ValueError),
    ],
    ids=repr,
)
async def test_invalid_options_are_rejected_and_nothing_is_stored(
    queue: Queue, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await queue.enqueue("fn", **options)
    info = await queue.info()
    assert sum(info["counts"].values()) == 0


async def test_empty_function_name_is_rejected(queue: Queue) -> None:
    with pytest.raises(ValueError):
        await queue.enqueue("")
    with pytest.raises(ValueError):
        await queue.enqueue(Job(""))
    assert sum((await queue.info())["counts"].values()) == 0


async def test_invalid_job_in_a_batch_is_rejected(queue: Queue) -> None:
    with pytest.raises(ValueError):
        await queue.enqueue_many([Job("ok"), Job("bad", retries=-1)])
    assert sum((await queue.info())["counts"].values()) == 0


async def test_higher_priority_runs_first_then_fifo(
    queue: Queue, running_worker: Any, eventually: Any
) -> None:
    order: list[str] = []

    async def record(ctx: dict[str, Any], *, name: str) -> None:
        order.append(name)

    await queue.enqueue("record", name="low", priority=-5)
    await queue.enqueue("record", name="mid-1")
    await queue.enqueue("record", name="high", priority=10)
    await queue.enqueue("record", name="mid-2")
    last = await queue.enqueue("record", name="top", priority=1000)
    assert last is not None
    async with running_worker(queue, [record], concurrency=1):
        await eventually(lambda: len(order) == 5)
    assert order == ["top", "high", "mid-1", "mid-2", "low"]
