"""In-process waiters on one queue's notifications, fed by a store that pushes them."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

logger = logging.getLogger("jobwire.backend")


def tell_aborted(callbacks: Iterable[Callable[[str], None]], job_id: str) -> None:
    """Call each abort callback with ``job_id``; one that fails is logged, and the others
    are still called."""
    for callback in list(callbacks):
        try:
            callback(job_id)
        except Exception:
            logger.exception("abort callback failed for job %s", job_id)


class Waiters:
    """A "new work" event, per-job change events and abort callbacks, fed from a store's
    notifications.

    A store's listener calls ``wake_message`` and ``job_changed`` as messages come, and
    ``wake_watchers`` (or sets ``work``) after re-subscribing, when some may have been
    missed. (An abort missed then reaches its worker at the next renew.)
    """

    def __init__(self) -> None:
        self.work = asyncio.Event()
        self.abort_callbacks: list[Callable[[str], None]] = []
        self._jobs: dict[str, set[asyncio.Event]] = {}

    def job_changed(self, job_id: str) -> None:
        """Wake everyone watching ``job_id``."""
        for event in self._jobs.get(job_id, ()):
            event.set()

    def wake_message(self, payload: str) -> None:
        """A message on the queue's wake channel: empty, new work may be due (wake
        ``wait_for_work``); else the id of an active job just aborted."""
        if payload:
            tell_aborted(self.abort_callbacks, payload)
        else:
            self.work.set()

    def forget_abort_callback(self, callback: Callable[[str], None]) -> None:
        """Stop calling ``callback``."""
        with contextlib.suppress(ValueError):
            self.abort_callbacks.remove(callback)

    def wake_watchers(self) -> None:
        """Wake every job watcher (each re-reads its job)."""
        for events in self._jobs.values():
            for event in events:
                event.set()

    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when woken (or interrupted), or after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.work.wait()
        self.work.clear()

    @contextlib.contextmanager
    def watching(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``job_id`` changes, while the context is open."""
        event = asyncio.Event()
        self._jobs.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._jobs[job_id]
            watchers.discard(event)
            if not watchers:
                del self._jobs[job_id]
