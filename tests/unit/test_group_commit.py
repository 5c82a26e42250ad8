"""GroupCommit: concurrent submissions share store calls, each gets its own results."""

import asyncio

import pytest

from jobwire.server.group_commit import MAX_BATCH, GroupCommit


class Store:
    """Records each write; doubles every item, or fails when told to."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []
        self.fail_next = False

    async def write(self, items: list[int]) -> list[int]:
        self.writes.append(items)
        await asyncio.sleep(0.01)  # a round trip, during which more submissions arrive
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("store down")
        return [item * 2 for item in items]


async def test_concurrent_submissions_share_one_write() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    results = await asyncio.gather(*(commit.submit([i, i + 100]) for i in range(10)))
    assert results == [[2 * i, 2 * (i + 100)] for i in range(10)]
    assert len(store.writes) == 1 and len(store.writes[0]) == 20


async def test_what_arrives_during_a_write_goes_in_the_next() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    first = asyncio.ensure_future(commit.submit([1]))
    await asyncio.sleep(0.002)  # the first write is under way
    later = await asyncio.gather(*(commit.submit([n]) for n in (2, 3, 4)))
    assert await first == [2] and later == [[4], [6], [8]]
    assert store.writes == [[1], [2, 3, 4]]


async def test_a_failed_write_fails_only_its_own_batch() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    store.fail_next = True
    first = asyncio.ensure_future(commit.submit([1]))
    await asyncio.sleep(0.002)
    second = asyncio.ensure_future(commit.submit([2]))
    with pytest.raises(ConnectionError):
        await first
    assert await second == [4]


async def test_batches_stay_within_the_limit() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    parts = [list(range(400)) for _ in range(5)]
    results = await asyncio.gather(*(commit.submit(part) for part in parts))
    assert results == [[2 * n for n in part] for part in parts]
    assert all(len(items) <= MAX_BATCH for items in store.writes)
    assert sum(len(items) for items in store.writes) == 2000
