"""``Worker``: leases jobs from a queue and runs their functions concurrently."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from jobwire.backends.base import Outcome
from jobwire.cron import CronJob, TaskFunction
from jobwire.errors import Forbidden, JobwireError, Unauthenticated
from jobwire.job import ErrorInfo, Job, Status, check_json
from jobwire.queue import Queue

logger = logging.getLogger("jobwire.worker")

Hook = Callable[[dict[str, Any]], Awaitable[Any]]
CancelReason = Literal["abort", "shutdown", "lost"]
RENEW_INTERVAL_S = 0.5  # how often leases are renewed (and aborts noticed)
TOUCH_INTERVAL_S = 10.0  # how often the worker records itself as alive
HARD_STOP_S = 5.0  # after cancelling, how long to wait for tasks before giving up
BACKOFF_MAX_S = 10.0  # longest pause between lease tries while the service is unreachable


class _Trouble:
    """Logs a failing call once per change of state (failing, failing otherwise, working
    again), not once per try: a service that is down for a minute is two log lines."""

    __slots__ = ("failures", "state", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self.state = ""
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        state = f"{type(exc).__name__}: {exc}"
        if state != self.state:
            self.state = state
            logger.warning("%s failed (%s); retrying until it works", self.what, state)

    def worked(self) -> None:
        if self.failures:
            logger.info("%s works again after %d failed tries", self.what, self.failures)
        self.state, self.failures = "", 0

    def backoff_s(self, base_s: float) -> float:
        """The pause before the next try: doubling from ``base_s`` up to BACKOFF_MAX_S."""
        return float(min(base_s * 2 ** min(self.failures - 1, 16), BACKOFF_MAX_S))


class _Attempt:
    """One running attempt of a job, and why it was cancelled (if it was)."""

    __slots__ = ("cancel_reason", "job", "task")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.task: asyncio.Task[None] | None = None
        self.cancel_reason: CancelReason | None = None

    def cancel(self, reason: CancelReason) -> None:
        if self.cancel_reason is None and self.task is not None:
            self.cancel_reason = reason
            self.task.cancel()


class Worker:
    """Runs jobs of a queue with bounded concurrency.

    Args:
        queue: The queue to work.
        functions: Task functions (``async def fn(ctx, **kwargs)``), or
            ``(name, function)`` pairs to register them under another name.
        cron_jobs: Cron jobs to schedule; their functions are registered automatically.
        concurrency: Jobs run at once (default 10).
        startup: ``async def hook(ctx)`` run before the first job; may add to ``ctx``.
        shutdown: ``async def hook(ctx)`` run after the last job.
        before_process: ``async def hook(ctx)`` run before each job (``ctx["job"]`` set).
        after_process: ``async def hook(ctx)`` run after each job, with the job's outcome
            already on ``ctx["job"]``.
        burst: Stop once nothing is queued and nothing runs here (future scheduled
            jobs are left for later).
        shutdown_grace_s: On stop, seconds running jobs get to finish before they are
            cancelled and queued again.
        poll_interval_s: Longest idle wait before checking the queue without a wake-up
            event (a safety net; new work normally wakes the worker at once).
        sweep_interval_s: How often to reclaim jobs whose worker went silent.
        handle_signals: Stop gracefully on SIGTERM/SIGINT (main thread only).
        id: Worker id (default: host, pid and a random suffix).
    """

    def __init__(
        self,
        queue: Queue,
        functions: Iterable[TaskFunction | tuple[str, TaskFunction]],
        *,
        cron_jobs: Sequence[CronJob] = (),
        concurrency: int = 10,
        startup: Hook | None = None,
        shutdown: Hook | None = None,
        before_process: Hook | None = None,
        after_process: Hook | None = None,
        burst: bool = False,
        shutdown_grace_s: float = 10.0,
        poll_interval_s: float = 0.5,
        sweep_interval_s: float = 1.0,
        handle_signals: bool = True,
        id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.queue = queue
        self.functions = _register(functions, cron_jobs)
        self.cron_jobs = list(cron_jobs)
        self.concurrency = concurrency
        self.hooks = {
            "startup": startup,
            "shutdown": shutdown,
            "before_process": before_process,
            "after_process": after_process,
        }
        self.burst = burst
        self.shutdown_grace_s = shutdown_grace_s
        self.poll_interval_s = poll_interval_s
        self.sweep_interval_s = sweep_interval_s
        self.handle_signals = handle_signals
        self.id = id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.ctx: dict[str, Any] = {"queue": queue, "worker": self}
        self._running: dict[str, _Attempt] = {}
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._started = False
        self._closing = False
        self.refused: JobwireError | None = None  # the service refused the token: stopped
        self._lease_trouble = _Trouble("leasing jobs")
        self._renew_trouble = _Trouble("renewing leases")
        self._settle_trouble = _Trouble("reporting outcomes")

    async def start(self) -> None:
        """Run until ``stop()`` (or a signal, or an empty queue in burst mode).

        Raises:
            Unauthenticated: The service refused the worker's token (401) when it leased;
                the worker logged one line, handed back nothing and stopped.
            Forbidden: The token's role may not lease (403); likewise.
        """
        if self._started:
            raise RuntimeError("a Worker can be started once")
        self._started = True
        try:
            await self.queue.connect()
            await self._hook("startup", self.ctx)
        except BaseException:
            self._stopped.set()  # a stop() waiting on a worker that never ran returns
            raise
        await _logged(self.queue.touch_worker(self.id, self._describe()), "touch")
        await _logged(self.queue.on_abort(self._abort_now), "listening for aborts")
        logger.info(
            "worker %s started on queue %s: %s",
            self.id,
            self.queue.name,
            ", ".join(sorted(self.functions)),
        )
        background = [
            asyncio.create_task(self._renew_loop(), name="jobwire-renew"),
            *(
                asyncio.create_task(self._cron_loop(c), name=f"jobwire-cron-{c.name}")
                for c in self.cron_jobs
            ),
        ]
        if not self.queue.sweeps_itself:  # the service sweeps the queues it serves
            background.append(asyncio.create_task(self._sweep_loop(), name="jobwire-sweep"))
        settler = asyncio.create_task(self._settle_loop(), name="jobwire-settle")
        with self._signals_handled():
            try:
                await self._lease_loop()
            finally:
                await _logged(self.queue.stop_leasing(self.id), "handing back jobs")
                await self._drain(settler)
                await _cancel_all(background)
                self.queue.off_abort(self._abort_now)
                await self._hook("shutdown", self.ctx)
                self._stopped.set()
                logger.info("worker %s stopped", self.id)
        if self.refused is not None:
            raise self.refused

    async def stop(self) -> None:
        """Stop gracefully: take no more jobs, let running ones finish within the grace
        period, then cancel and requeue the rest. Safe to call more than once."""
        self._request_stop()
        if self._started:
            await self._stopped.wait()

    def _request_stop(self) -> None:
        self._stopping.set()
        self._slot_free.set()  # interrupt the lease loop's waits (a waiting lease sees _stopping)

    async def _lease_loop(self) -> None:
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            if free <= 0:
                await self._slot_free.wait()
                self._slot_free.clear()
                continue
            idle = self.burst and not self._running
            jobs, next_due_s = await self._lease(free, 0.0 if idle else self.poll_interval_s)
            if self._stopping.is_set():
                await self._hand_back(jobs)
                return
            for job in jobs:
                self._start_attempt(job)
            if idle and not jobs:
                if next_due_s is None or next_due_s > self.poll_interval_s:
                    return  # burst: nothing queued, nothing running, nothing due soon
                await asyncio.sleep(next_due_s)

    async def _lease(self, max_jobs: int, wait_s: float) -> tuple[list[Job], float | None]:
        trouble = self._lease_trouble
        try:
            leased = await self.queue.lease(self.id, max_jobs, wait_s=wait_s, stop=self._stopping)
        except (Unauthenticated, Forbidden) as exc:  # retrying cannot help: stop
            logger.error("worker %s stops: the service refused its token: %s", self.id, exc)
            self.refused = exc
            self._request_stop()
            return [], None
        except Exception as exc:  # unreachable, 503, ...: back off, log state changes only
            trouble.failed(exc)
            # (a wake-up from the store ends the pause: it answers again, with work)
            await self.queue.pause_until_work(
                trouble.backoff_s(self.poll_interval_s), self._stopping
            )
            return [], None
        trouble.worked()
        return leased

    def _abort_now(self, job_id: str) -> None:
        """The backend heard of an abort ahead of the next renew: cancel the job now."""
        attempt = self._running.get(job_id)
        if attempt is not None:
            attempt.cancel("abort")

    async def _hand_back(self, jobs: list[Job]) -> None:
        """Requeue jobs leased while a stop was requested (none of them started)."""
        outcomes = [Outcome.handed_back(job) for job in jobs]
        if outcomes:
            await _logged(self.queue.settle(outcomes), "handing back jobs")

    def _start_attempt(self, job: Job) -> None:
        attempt = _Attempt(job)
        self._running[job.id] = attempt
        attempt.task = asyncio.create_task(self._process(attempt), name=f"jobwire-job-{job.id}")

    async def _process(self, attempt: _Attempt) -> None:
        job = attempt.job
        ctx = {**self.ctx, "job": job}
        try:
            await self._hook("before_process", ctx)
            outcome = await self._execute(attempt, ctx)
            if outcome is not None:
                outcome = dataclasses.replace(outcome, function=job.function)
                _apply_outcome(job, outcome)
                self._outcomes.append(outcome)
                self._outcome_ready.set()
            await self._hook("after_process", ctx)
        finally:
            del self._running[job.id]
            self._slot_free.set()

    async def _execute(self, attempt: _Attempt, ctx: dict[str, Any]) -> Outcome | None:
        job = attempt.job
        assert job.lease is not None
        function = self.functions.get(job.function)
        if function is None:
            error = ErrorInfo(
                "UnknownFunction", f"worker {self.id} has no function {job.function!r}"
            )
            return Outcome.for_failure(job, error, retryable=False)
        started = time.monotonic()
        try:
            async with asyncio.timeout(job.timeout) as deadline:
                result = await function(ctx, **job.kwargs)
            check_json("result", result)  # fail here, visibly, if it cannot be stored
            return Outcome(
                job.id, job.lease, Status.COMPLETE, result=result, run_s=time.monotonic() - started
            )
        except asyncio.CancelledError:
            return self._cancelled(attempt)
        except TimeoutError as exc:
            error = ErrorInfo.from_exception(exc)
            if deadline.expired():
                error = ErrorInfo("TimeoutError", f"job timed out after {job.timeout:g} s")
            return self._failed(job, error)
        except Exception as exc:
            return self._failed(job, ErrorInfo.from_exception(exc))

    def _cancelled(self, attempt: _Attempt) -> Outcome | None:
        job, reason = attempt.job, attempt.cancel_reason
        assert job.lease is not None
        if reason is None:
            raise asyncio.CancelledError  # not ours: propagate
        logger.info("job %s cancelled (%s)", job.id, reason)
        if reason == "abort":
            return Outcome(job.id, job.lease, Status.ABORTED)
        if reason == "shutdown":  # it ran: the attempt counts (an error marks it so)
            stopped = ErrorInfo("WorkerStopped", "the worker stopped during this attempt")
            return Outcome(job.id, job.lease, Status.QUEUED, error=stopped)
        return None  # lease lost: a newer attempt owns the job

    def _failed(self, job: Job, error: ErrorInfo) -> Outcome:
        outcome = Outcome.for_failure(job, error)
        logger.warning(
            "job %s (%s) attempt %d failed: %s; %s",
            job.id,
            job.function,
            job.attempts,
            error,
            "will retry" if outcome.status == Status.QUEUED else "giving up",
        )
        return outcome

    async def _settle_loop(self) -> None:
        """Group commit: whatever finished while the last batch was in flight goes next."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            batch, self._outcomes = self._outcomes, []
            try:
                settled = await self.queue.settle(batch)
            except Exception as exc:
                self._settle_trouble.failed(exc)
                self._outcomes[:0] = batch
                self._outcome_ready.set()
                await asyncio.sleep(self._settle_trouble.backoff_s(self.poll_interval_s))
                continue
            self._settle_trouble.worked()
            for outcome, done in zip(batch, settled, strict=True):
                if not done:
                    logger.warning(
                        "job %s: lease lost; its %s outcome was discarded",
                        outcome.job_id,
                        outcome.status,
                    )
            if self._closing and not self._outcomes:
                return

    async def _renew_loop(self) -> None:
        last_touch = 0.0
        while True:
            await asyncio.sleep(self._renew_interval_s())
            if time.monotonic() - last_touch > TOUCH_INTERVAL_S:
                last_touch = time.monotonic()
                await _logged(self.queue.touch_worker(self.id, self._describe()), "touch")
            attempts = list(self._running.values())
            if not attempts:
                continue
            leases = [(a.job.id, a.job.lease or "") for a in attempts]
            try:
                states = await self.queue.renew(leases)
            except Exception as exc:
                self._renew_trouble.failed(exc)
                continue
            self._renew_trouble.worked()
            for attempt, state in zip(attempts, states, strict=True):
                if state == "aborting":
                    attempt.cancel("abort")
                elif state == "lost":
                    attempt.cancel("lost")

    def _renew_interval_s(self) -> float:
        leases = [a.job.lease_s(self.queue.lease_s) for a in self._running.values()]
        return min([RENEW_INTERVAL_S, *(lease / 3 for lease in leases)])

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            await _logged(self.queue.sweep(), "sweep")

    async def _cron_loop(self, cron: CronJob) -> None:
        while True:
            tick = cron.next_tick(time.time())
            await _logged(self.queue.enqueue(cron.job_for(tick, self.queue.name)), "cron enqueue")
            await asyncio.sleep(max(tick - time.time(), 0.0))

    async def _drain(self, settler: asyncio.Task[None]) -> None:
        """Let running jobs finish within the grace period, then cancel and requeue them."""
        attempts = list(self._running.values())
        tasks = [a.task for a in attempts if a.task is not None]
        if tasks:
            logger.info("waiting up to %g s for %d running jobs", self.shutdown_grace_s, len(tasks))
            await asyncio.wait(tasks, timeout=self.shutdown_grace_s)
            for attempt in attempts:
                attempt.cancel("shutdown")
            _, stuck = await asyncio.wait(tasks, timeout=HARD_STOP_S)
            if stuck:
                logger.error("%d jobs ignored cancellation; their leases will expire", len(stuck))
        self._closing = True
        self._outcome_ready.set()
        try:
            await asyncio.wait_for(settler, timeout=HARD_STOP_S)
        except TimeoutError:
            logger.error("could not settle %d outcomes before stopping", len(self._outcomes))

    async def _hook(self, name: str, ctx: dict[str, Any]) -> None:
        hook = self.hooks[name]
        if hook is None:
            return
        if name in ("startup", "shutdown"):
            await hook(ctx)  # a failing startup must stop the worker
        else:
            await _logged(hook(ctx), f"{name} hook")

    @contextlib.contextmanager
    def _signals_handled(self) -> Any:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        logger.info("worker %s got %s: stopping gracefully", self.id, sig.name)
        self._request_stop()

    def _describe(self) -> dict[str, Any]:
        return {
            "functions": sorted(self.functions),
            "concurrency": self.concurrency,
            "running": len(self._running),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "transport": "direct",
        }


def _register(
    functions: Iterable[TaskFunction | tuple[str, TaskFunction]], cron_jobs: Sequence[CronJob]
) -> dict[str, TaskFunction]:
    registry: dict[str, TaskFunction] = {}
    for entry in functions:
        name, function = entry if isinstance(entry, tuple) else (entry.__name__, entry)
        registry[name] = function
    for cron in cron_jobs:
        registry.setdefault(cron.name, cron.function)
    return registry


def _apply_outcome(job: Job, outcome: Outcome) -> None:
    """Reflect an outcome on the local Job (what ``after_process`` sees)."""
    job.status = outcome.status
    if outcome.status == Status.COMPLETE:
        job.result = outcome.result
        job.progress = 1.0
    if outcome.error is not None:
        job.error = outcome.error


async def _logged(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("%s failed", what)


async def _cancel_all(tasks: Iterable[asyncio.Task[Any] | asyncio.Future[Any]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
