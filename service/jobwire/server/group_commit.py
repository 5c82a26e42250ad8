"""Group commit: writes that arrive together go to the store in one round trip.

While one batch is being written, the requests that arrive meanwhile wait for the next
one; a lone request is written at once (one event-loop turn later). Under load this turns
many small store calls into few large ones (one script call on Redis, one transaction on
PostgreSQL and SQLite) without delaying anything by a timer.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
MAX_BATCH = 1000  # items in one store call


class GroupCommit(Generic[Item, Result]):
    """Batches calls of ``write``, which answers one result per item, in order.

    Args:
        write: Stores items in one round trip.
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Result]]]) -> None:
        self._write = write
        self._pending: list[tuple[Sequence[Item], asyncio.Future[list[Result]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Write ``items`` with whatever else is pending; their results, in order.

        Raises:
            Exception: What the batch's write raised (every caller in it sees it).
        """
        answer: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        return await answer

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch = self._take_batch()
                items = [item for part, _ in batch for item in part]
                try:
                    results = await self._write(items)
                except Exception as exc:
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                start = 0
                for part, answer in batch:
                    if not answer.done():
                        answer.set_result(results[start : start + len(part)])
                    start += len(part)
        finally:
            self._writer = None

    def _take_batch(self) -> list[tuple[Sequence[Item], asyncio.Future[list[Result]]]]:
        """The oldest pending calls, up to ``MAX_BATCH`` items (at least one call)."""
        size = 0
        for count, (part, _) in enumerate(self._pending):
            size += len(part)
            if size > MAX_BATCH and count > 0:
                break
        else:
            count = len(self._pending)
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch
