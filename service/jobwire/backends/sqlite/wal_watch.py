"""Notice other processes' commits to a SQLite database as they happen (Linux inotify).

In WAL mode every commit appends to the ``<database>-wal`` file, so a write to that file
(or its re-creation) means another connection may have committed. Where inotify is not
to be had (another OS, or a filesystem without it), the watch says so and the waiters
fall back to polling.
"""

import asyncio
import contextlib
import logging
import os

logger = logging.getLogger("jobwire.sqlite")

try:
    from asyncinotify import Inotify, Mask

    HAVE_INOTIFY = True
except ImportError:  # not Linux, or the package is missing
    HAVE_INOTIFY = False


class WalWatch:
    """Sets ``changed`` whenever the database's WAL file is written.

    Args:
        database: The database file's path.
    """

    def __init__(self, database: str) -> None:
        self.changed = asyncio.Event()
        self._folder, name = os.path.split(os.path.abspath(database))
        self._wal = name + "-wal"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> bool:
        """Start watching; ``False`` if this system cannot (the caller polls instead)."""
        if not HAVE_INOTIFY:
            return False
        if self._task is None:
            try:
                inotify = Inotify()
                inotify.add_watch(self._folder, Mask.MODIFY | Mask.CREATE | Mask.MOVED_TO)
            except OSError as exc:
                logger.warning("cannot watch %s for commits (%s): polling", self._folder, exc)
                return False
            self._task = asyncio.create_task(self._read(inotify), name="jobwire-sqlite-wal")
        return True

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _read(self, inotify: "Inotify") -> None:
        with inotify:
            async for event in inotify:
                if event.name is not None and str(event.name) == self._wal:
                    self.changed.set()
