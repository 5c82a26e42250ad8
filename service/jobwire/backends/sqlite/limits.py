"""A lease under a queue's limits, inside the lease's write transaction (SQLite lets one
writer in at a time, so no other lease, here or in another process, sees a half-taken
slot: the limits hold across every worker).

Concurrency limits count the queue's active and aborting jobs from the rows themselves
(the ``jobwire_jobs_lease`` index covers that count), so every transition in or out of
those statuses is accounted for without counters to keep in step. Rate limits keep a
sliding-window log in ``jobwire_starts``: at most ``limit`` starts in any ``period_s``.
The lease looks through at most ``SCAN_WINDOW`` queued jobs of the queue's head, in
priority/FIFO order, and takes those no limit holds back (no head-of-line blocking).
"""

import collections
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from jobwire.backends.sqlite.rows import HELD_SQL, LEASE_HEAD, LEASE_SET, LeaseState
from jobwire.backends.sqlite.store import Row, Tx
from jobwire.flow import FunctionLimits, QueueSettings, Rate

SCAN_WINDOW = 1000  # queued jobs of the head one lease looks through at most
_QUEUE = ""  # the scope of the queue's own limits


def function_scope(function: str) -> str:
    """The scope of a function's limits."""
    return "f:" + function


def key_scope(key: str) -> str:
    """The scope of a concurrency key's limits."""
    return "k:" + key


@dataclasses.dataclass(slots=True)
class Window:
    """One scope's rate window as this lease sees it.

    Attributes:
        rate: The limit.
        used: Starts within the window before this lease.
        taken: Starts this lease adds.
        held: Whether the window held a job back (its reopening bounds the next lease).
    """

    rate: Rate
    used: int
    taken: int = 0
    held: bool = False

    @property
    def full(self) -> bool:
        return self.used + self.taken >= self.rate.limit


class LimitedLease:
    """Picks the jobs one lease may start under the queue's limits, and records them.

    Args:
        tx: The lease's write transaction.
        settings: The queue's limits.
        max_jobs: Jobs wanted at most.
        state: What the lease read first (the queue's active count and rate window, if
            a queue-wide limit had them read).
    """

    def __init__(
        self, tx: Tx, settings: QueueSettings, max_jobs: int, state: LeaseState | None = None
    ) -> None:
        self.tx = tx
        self.settings = settings
        self.max_jobs = max_jobs
        self.active: collections.Counter[str] = collections.Counter()  # by scope
        self._counted = state is not None and state.active is not None
        if state is not None and state.active is not None:
            self.active[_QUEUE] = state.active
        self.windows: dict[str, Window] = {}
        if settings.rate is not None and state is not None and state.rate_used is not None:
            self.windows[_QUEUE] = Window(settings.rate, state.rate_used)
        # limits on some jobs only (a function's, a key's): the head is sifted
        self.scoped = (
            settings.max_active_per_key is not None
            or settings.rate_per_key is not None
            or any(f != FunctionLimits() for f in settings.functions.values())
        )

    async def run(self, params: dict[str, Any]) -> tuple[list[Row], float | None]:
        """Lease the jobs the limits let start now.

        Args:
            params: The lease statement's parameters (token, worker, lease_s, now).

        Returns:
            Their rows, and the seconds until a rate window that held a job back admits
            one (``None``: no window held one).
        """
        room = await self._queue_room()
        rows: list[Row] = []
        if room > 0 and not (self.scoped and self._scopes_may_hold(room)):  # take the head
            rows = list(await self.tx.db.execute_fetchall(LEASE_HEAD, {**params, "limit": room}))
            if _QUEUE in self.windows:
                self.windows[_QUEUE].taken = len(rows)
        elif room > 0:
            await self._count_active()
            rows = await self._lease(await self._pick(room), params)
        if rows:
            await self._record_starts()
        queue = self.windows.get(_QUEUE)
        if queue is not None and queue.full:
            queue.held = True  # more may be queued: the next lease waits for the window
        return rows, await self._reopens_s()

    def _scopes_may_hold(self, room: int) -> bool:
        """Whether a function's or a key's limit may hold back a job of this lease. Not
        while none of them is a rate and each concurrency limit is above the queue's
        active jobs plus ``room`` (no function or key can have more): then the lease
        takes the head, as without limits."""
        settings = self.settings
        if settings.rate_per_key is not None or any(
            limits.rate is not None for limits in settings.functions.values()
        ):
            return True
        if not self._counted:
            return True
        bounds = [f.max_active for f in settings.functions.values() if f.max_active is not None]
        if settings.max_active_per_key is not None:
            bounds.append(settings.max_active_per_key)
        return bool(bounds) and self.active[_QUEUE] + room > min(bounds)

    async def _lease(self, picked: list[str], params: dict[str, Any]) -> list[Row]:
        if not picked:
            return []
        ids = {f"id{index}": job_id for index, job_id in enumerate(picked)}
        return list(
            await self.tx.db.execute_fetchall(
                f"UPDATE jobwire_jobs SET {LEASE_SET} WHERE queue = :queue"
                f" AND id IN ({', '.join(':' + name for name in ids)}) RETURNING *",
                {**params, **ids},
            )
        )

    async def _pick(self, room: int) -> list[str]:
        """Ids of up to ``room`` jobs of the head that no function or key limit holds."""
        picked: list[str] = []
        async with contextlib.aclosing(self._head(room)) as pages:
            async for page in pages:
                await self._load_windows(s for row in page for s in self._rate_scopes(row))
                for job_id, function, key in page:
                    if self._admit(function, key):
                        picked.append(job_id)
                        if len(picked) == room:
                            return picked
        return picked

    async def _queue_room(self) -> int:
        """How many jobs the queue's own limits let start now."""
        settings = self.settings
        if settings.max_active is not None and not self._counted:
            await self._count_active()
        room = self.max_jobs
        if settings.max_active is not None:
            room = min(room, settings.max_active - self.active[_QUEUE])
        if settings.rate is not None and room > 0:
            await self._load_windows([_QUEUE])
            window = self.windows[_QUEUE]
            room = min(room, window.rate.limit - window.used)
            window.held = room <= 0
        return room

    async def _count_active(self) -> None:
        """Count the active jobs by the scopes a concurrency limit counts (skipped when
        none is set, or only the queue's, whose count the lease has read already)."""
        settings = self.settings
        by_function = any(f.max_active is not None for f in settings.functions.values())
        by_key = settings.max_active_per_key is not None
        if by_function or by_key or (settings.max_active is not None and not self._counted):
            self.active = await count_active(self.tx, by_function=by_function, by_key=by_key)

    async def _head(self, room: int) -> AsyncGenerator[list[tuple[str, str, str | None]], None]:
        """The queue's head in lease order, in pages growing from ``room`` (most leases
        take the first ``room`` jobs and read no further)."""
        size, scanned = room, 0
        async with self.tx.db.execute(
            "SELECT id, function, concurrency_key FROM jobwire_jobs"
            " WHERE queue = ? AND status = 'queued' ORDER BY priority DESC, seq LIMIT ?",
            (self.tx.queue, SCAN_WINDOW),
        ) as cursor:
            while scanned < SCAN_WINDOW:
                page = list(await cursor.fetchmany(min(size, SCAN_WINDOW - scanned)))
                if not page:
                    return
                scanned += len(page)
                yield [(row[0], row[1], row[2]) for row in page]
                size *= 4

    def _rate_scopes(self, row: tuple[str, str, str | None]) -> list[str]:
        _, function, key = row
        scopes = []
        limits = self.settings.functions.get(function)
        if limits is not None and limits.rate is not None:
            scopes.append(function_scope(function))
        if key is not None and self.settings.rate_per_key is not None:
            scopes.append(key_scope(key))
        return scopes

    def _rate_of(self, scope: str) -> Rate:
        if scope == _QUEUE:
            rate = self.settings.rate
        elif scope.startswith("f:"):
            rate = self.settings.functions[scope[2:]].rate
        else:
            rate = self.settings.rate_per_key
        assert rate is not None, scope
        return rate

    async def _load_windows(self, scopes: Iterable[str]) -> None:
        """Read the rate windows of these scopes that this lease has not read yet."""
        wanted = {scope: self._rate_of(scope) for scope in scopes if scope not in self.windows}
        if not wanted:
            return
        values = ", ".join("(?, ?)" for _ in wanted)
        since = [v for scope, rate in wanted.items() for v in (scope, self.tx.now - rate.period_s)]
        rows = await self.tx.db.execute_fetchall(
            f"WITH wanted(scope, since) AS (VALUES {values})"
            " SELECT w.scope, SUM(s.n) FROM wanted w JOIN jobwire_starts s"
            " ON s.queue = ? AND s.scope = w.scope AND s.at > w.since GROUP BY w.scope",
            (*since, self.tx.queue),
        )
        used = {scope: int(n) for scope, n in rows}
        for scope, rate in wanted.items():
            self.windows[scope] = Window(rate, used.get(scope, 0))

    def _admit(self, function: str, key: str | None) -> bool:
        """Whether a job of this function and key may start; if so, count it."""
        settings = self.settings
        limits = settings.functions.get(function)
        slots: list[tuple[str, int]] = []  # (scope, its concurrency limit)
        if limits is not None and limits.max_active is not None:
            slots.append((function_scope(function), limits.max_active))
        if key is not None and settings.max_active_per_key is not None:
            slots.append((key_scope(key), settings.max_active_per_key))
        if any(self.active[scope] >= limit for scope, limit in slots):
            return False
        windows = [self.windows[scope] for scope in self._rate_scopes(("", function, key))]
        for window in windows:
            if window.full:
                window.held = True
                return False
        for scope, _ in slots:
            self.active[scope] += 1
        for window in windows:
            window.taken += 1
        if _QUEUE in self.windows:
            self.windows[_QUEUE].taken += 1
        return True

    async def _record_starts(self) -> None:
        """Log this lease's starts in each rate window they count in."""
        started = [(self.tx.queue, s, self.tx.now, w.taken) for s, w in self.windows.items()]
        started = [entry for entry in started if entry[3] > 0]
        if started:  # none without a rate limit: skip the round trip
            await self.tx.db.executemany(
                "INSERT INTO jobwire_starts (queue, scope, at, n) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (queue, scope, at) DO UPDATE SET n = n + excluded.n",
                started,
            )

    async def _reopens_s(self) -> float | None:
        """Seconds until the first window that held a job back admits one again: when
        enough of its logged starts have aged out of it."""
        held = [(scope, w) for scope, w in self.windows.items() if w.held]
        if not held:
            return None
        values = ", ".join("(?, ?, ?, ?)" for _ in held)
        wanted = [
            v
            for scope, w in held
            for v in (scope, self.tx.now - w.rate.period_s, w.used + w.taken - w.rate.limit + 1,
                      w.rate.period_s)
        ]  # fmt: skip
        [(reopens_at,)] = await self.tx.db.execute_fetchall(
            f"WITH wanted(scope, since, need, period) AS (VALUES {values})"
            " SELECT MIN(at + period) FROM (SELECT s.at, w.need, w.period,"
            " SUM(s.n) OVER (PARTITION BY s.scope ORDER BY s.at) AS aged"
            " FROM wanted w JOIN jobwire_starts s"
            " ON s.queue = ? AND s.scope = w.scope AND s.at > w.since) WHERE aged >= need",
            (*wanted, self.tx.queue),
        )
        return None if reopens_at is None else max(float(reopens_at) - self.tx.now, 0.0)


async def count_active(tx: Tx, *, by_function: bool, by_key: bool) -> collections.Counter[str]:
    """The queue's active and aborting jobs by scope: the queue's (``""``), and each
    function's and key's if asked. Counted from the rows, so every way in or out of those
    statuses (lease, settle, sweep, delete, abort) is accounted for."""
    rows = await tx.db.execute_fetchall(
        f"SELECT {'function' if by_function else 'NULL'},"
        f" {'concurrency_key' if by_key else 'NULL'}, COUNT(*) FROM jobwire_jobs"
        f" WHERE queue = ? AND status IN {HELD_SQL} GROUP BY 1, 2",
        (tx.queue,),
    )
    active: collections.Counter[str] = collections.Counter()
    for function, key, count in rows:
        active[_QUEUE] += count
        if function is not None:
            active[function_scope(function)] += count
        if key is not None:
            active[key_scope(key)] += count
    return active


async def prune_starts(tx: Tx, settings: QueueSettings) -> None:
    """Drop the rate logs' entries older than the queue's longest window (all of them
    once no rate limit is left)."""
    rates = [settings.rate, settings.rate_per_key, *(f.rate for f in settings.functions.values())]
    longest_s = max((rate.period_s for rate in rates if rate is not None), default=0.0)
    await tx.db.execute(
        "DELETE FROM jobwire_starts WHERE queue = ? AND at <= ?", (tx.queue, tx.now - longest_s)
    )
