"""Sibling backends: another queue on the same store, sharing the connections."""

from jobwire import Queue, Status


async def test_sibling_queue_is_isolated_and_closing_it_keeps_the_parent_working(
    queue: Queue,
) -> None:
    sibling = Queue(queue.backend.for_queue(queue.name + "-sibling"))
    assert sibling.name == queue.name + "-sibling"
    assert sibling.lease_s == queue.lease_s

    mine = await queue.enqueue("task", n=1)
    theirs = await sibling.enqueue("task", n=2)
    assert mine is not None and theirs is not None
    assert await sibling.job(mine.id) is None
    assert [job.id for job in await sibling.jobs(Status.QUEUED)] == [theirs.id]
    await sibling.close()

    assert (await queue.info())["counts"]["queued"] == 1
    stored = await queue.job(mine.id)
    assert stored is not None and stored.kwargs == {"n": 1}
