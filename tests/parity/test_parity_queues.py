"""Queue views parity: job pages (filters, cursors), queues and their counts, workers.

Every test runs once per transport (``[rest]``, ``[grpc]``) with the same assertions.
"""

import asyncio
from typing import Any

from grpc_helpers import GrpcService
from parity_transport import (
    JOB_FIELDS,
    PARITY_DB,
    TRANSPORTS,
    Connect,
    Page,
    Transport,
    TransportError,
    lease_one,
)
from service_fixtures import redis_database

from jobwire import Queue, Worker

STATUSES = ("queued", "scheduled", "active", "aborting", "aborted", "failed", "complete")


async def _enqueue(transport: Transport, queue: str, functions: list[str]) -> list[str]:
    """Enqueue one job per function name (in order, one round trip each); their ids."""
    ids = []
    for i, function in enumerate(functions):
        ids.append(
            (await transport.enqueue(queue, {"function": function, "kwargs": {"i": i}})).job["id"]
        )
    return ids


async def _walk(transport: Transport, queue: str, page_size: int, **filters: Any) -> list[Page]:
    """Every page of ``queue``, following the cursors from the first (at most 20)."""
    pages = [await transport.list_jobs(queue, page_size=page_size, **filters)]
    while pages[-1].next is not None and len(pages) < 20:
        token = pages[-1].next
        pages.append(
            await transport.list_jobs(queue, page_size=page_size, page_token=token, **filters)
        )
    return pages


async def test_list_jobs_by_status(transport: Transport, queue_name: str) -> None:
    ids = await _enqueue(transport, queue_name, ["f", "f", "f"])
    leased = await lease_one(transport, queue_name)
    everything = await transport.list_jobs(queue_name)
    assert sorted(j["id"] for j in everything.jobs) == sorted(ids) and everything.next is None
    assert all(set(j) == JOB_FIELDS for j in everything.jobs)
    active = await transport.list_jobs(queue_name, status="active")
    assert [j["id"] for j in active.jobs] == [leased["id"]]
    assert active.jobs[0]["status"] == "active" and active.next is None
    queued = await transport.list_jobs(queue_name, status="queued")
    assert sorted(j["id"] for j in queued.jobs) == sorted(set(ids) - {leased["id"]})
    assert (await transport.list_jobs(queue_name, status="complete")).jobs == []


async def test_list_jobs_by_function_finds_matches_past_the_first_page(
    transport: Transport, queue_name: str
) -> None:
    """5 jobs of ``a`` then 2 of ``b``: the ``b`` page holds both, whatever comes first."""
    ids = await _enqueue(transport, queue_name, ["a"] * 5 + ["b"] * 2)
    page = await transport.list_jobs(queue_name, function="b", page_size=2)
    assert sorted(j["id"] for j in page.jobs) == sorted(ids[5:]), page
    assert all(j["function"] == "b" for j in page.jobs)
    assert page.next is None


async def test_list_jobs_by_function_pages_through_every_match_once(
    transport: Transport, queue_name: str
) -> None:
    ids = await _enqueue(transport, queue_name, ["a", "b", "a", "a", "b", "a", "a", "b", "a"])
    wanted = [job_id for job_id, f in zip(ids, "abaabaaba", strict=True) if f == "b"]
    pages = await _walk(transport, queue_name, page_size=2, function="b")
    found = [j["id"] for p in pages for j in p.jobs]
    assert [len(p.jobs) for p in pages] == [2, 1], [[j["function"] for j in p.jobs] for p in pages]
    assert sorted(found) == sorted(wanted) and len(set(found)) == len(found)


async def test_cursors_walk_every_job_exactly_once(
    transport: Transport, other: Transport, queue_name: str
) -> None:
    ids = await _enqueue(transport, queue_name, ["f"] * 7)
    pages = await _walk(transport, queue_name, page_size=3)
    assert [len(p.jobs) for p in pages] == [3, 3, 1]
    assert [p.next is None for p in pages] == [False, False, True]
    found = [j["id"] for p in pages for j in p.jobs]
    assert sorted(found) == sorted(ids) and len(set(found)) == 7
    # The same pages, in the same order, through the other transport.
    assert [[j["id"] for j in p.jobs] for p in await _walk(other, queue_name, page_size=3)] == [
        [j["id"] for j in p.jobs] for p in pages
    ]


async def test_a_cursor_the_service_never_gave_or_a_page_over_1000_is_invalid(
    transport: Transport, queue_name: str
) -> None:
    requests: dict[str, dict[str, Any]] = {
        f"token {t!r}": {"page_token": t} for t in ("abc", "-1", "1.5", "12345678")
    }
    requests["page_size 1001"] = {"page_size": 1001}
    problems = []
    for what, request in requests.items():
        try:
            page = await transport.list_jobs(queue_name, **request)
        except TransportError as error:
            if (error.kind, error.code) != ("invalid", "invalid_request"):
                problems.append(f"{what}: {error}")
        else:
            problems.append(f"{what}: answered {page}")
    assert not problems, problems


async def test_list_queues_names_each_queue_with_its_counts(
    transport: Transport, queue_name: str
) -> None:
    await _enqueue(transport, queue_name, ["f", "f", "f"])
    await lease_one(transport, queue_name)
    await transport.enqueue(queue_name, {"function": "f", "scheduled": 4_000_000_000})
    queues = await transport.list_queues()
    assert queue_name in queues, sorted(queues)
    expected = dict.fromkeys(STATUSES, 0) | {"queued": 2, "active": 1, "scheduled": 1}
    assert queues[queue_name] == expected


async def test_queue_info_counts(transport: Transport, other: Transport, queue_name: str) -> None:
    ids = await _enqueue(transport, queue_name, ["f", "f"])
    await transport.abort(ids[0])
    info = await transport.queue_info(queue_name)
    assert info["name"] == queue_name
    assert info["counts"] == dict.fromkeys(STATUSES, 0) | {"queued": 1, "aborted": 1}
    assert info["workers"] == []
    assert isinstance(info["finished_per_s"], float) and info["finished_per_s"] >= 0
    assert await other.queue_info(queue_name) == info


async def _workers(transport: Transport, queue: str, count: int) -> dict[str, dict[str, Any]]:
    """The queue's workers by id, once ``count`` are listed (waits up to 5 s)."""
    async with asyncio.timeout(5):
        while True:
            workers = {w["id"]: w for w in (await transport.queue_info(queue))["workers"]}
            if len(workers) >= count:
                return workers
            await asyncio.sleep(0.05)


async def test_a_worker_record_has_one_shape_whichever_transport_leased(
    transport: Transport, parity_service: GrpcService, connect: Connect, queue_name: str
) -> None:
    """A worker leasing through REST and one leasing through gRPC, read through each."""
    for name in TRANSPORTS:
        leaser = connect(name, parity_service)
        await leaser.lease(queue_name, f"w-{name}", max_jobs=2, functions=("f", "g"))
    workers = await _workers(transport, queue_name, 2)
    assert sorted(workers) == ["w-grpc", "w-rest"]
    shapes = {worker_id: sorted(worker) for worker_id, worker in workers.items()}
    assert shapes["w-rest"] == shapes["w-grpc"], workers
    assert all(w["functions"] == ["f", "g"] and w["seen"] > 0 for w in workers.values()), workers


async def test_an_sdk_worker_record_has_one_shape_whichever_url_it_uses(
    transport: Transport, parity_service: GrpcService, redis_url: str, queue_name: str
) -> None:
    """SDK Workers straight on the store, on ``http://`` and on ``grpc://``, read through
    each transport: one record shape, and each names its functions."""

    async def task(ctx: dict[str, Any]) -> None:
        return None

    urls = {
        "store": redis_database(redis_url, PARITY_DB),
        "rest": parity_service.http,
        "grpc": parity_service.url,
    }
    queues = {name: Queue.from_url(url, name=queue_name) for name, url in urls.items()}
    workers = {
        name: Worker(q, functions=[task], concurrency=3, handle_signals=False, id=f"sdk-{name}")
        for name, q in queues.items()
    }
    running = [asyncio.ensure_future(w.start()) for w in workers.values()]
    try:
        listed = await _workers(transport, queue_name, len(workers))
    finally:
        await asyncio.gather(*(w.stop() for w in workers.values()))
        await asyncio.gather(*running)
        await asyncio.gather(*(q.close() for q in queues.values()))
    assert sorted(listed) == sorted(f"sdk-{name}" for name in urls)
    shapes = {worker_id: sorted(worker) for worker_id, worker in listed.items()}
    problems = [f"{i}: fields {shape} != sdk-store's" for i, shape in shapes.items()
                if shape != shapes["sdk-store"]]  # fmt: skip
    problems += [f"{i}: functions {w.get('functions')}" for i, w in listed.items()
                 if w.get("functions") != ["task"]]  # fmt: skip
    assert not problems, (problems, listed)
