"""Benchmark Jobwire against SAQ on the same Redis server.

Measures, for each system, interleaved in one run and repeated ``--runs`` times:

* drain throughput: N no-op jobs already queued, one worker process at
  concurrency 10 and 100, time from "go" until all N are complete;
* enqueue throughput: N jobs enqueued one at a time, and in one batch;
* enqueue-to-start latency: 200 jobs enqueued ~10 ms apart to an idle worker.

Prints a markdown table of the medians. See bench/README.md.

Usage:
    python bench/bench_redis.py [--jobs 10000] [--runs 3] [--redis-url URL] [--profile]
"""

import argparse
import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
DRAIN_CONCURRENCIES = (10, 100)
LATENCY_CONCURRENCY = 10
LATENCY_SAMPLES = 200
LATENCY_GAP_S = 0.010
IDLE_SETTLE_S = 0.5
POLL_S = 0.020
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
FINISH_TIMEOUT_S = 120.0


class BenchError(RuntimeError):
    """A system under test misbehaved (crashed, stalled, failed jobs)."""


# --- task functions (both systems call them with a ctx dict) -----------------


async def noop(ctx: dict[str, Any]) -> None:
    """Do nothing; the job of the drain and enqueue measurements."""
    return None


async def stamp(ctx: dict[str, Any]) -> float:
    """Return the wall-clock time the task started; the latency job."""
    return time.time()


# --- the two systems behind one interface ------------------------------------


class System(Protocol):
    """What the benchmark needs from a job queue library."""

    key: str
    label: str

    def queue(self, url: str, name: str) -> Any:
        """Create a queue object for ``name`` on the Redis at ``url``."""

    async def connect(self, queue: Any) -> None:
        """Open the queue's connection so later calls do not pay for it."""

    async def enqueue(self, queue: Any, function: str) -> str:
        """Enqueue one job; return the reference :meth:`results` takes."""

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        """Enqueue ``count`` jobs the fastest way the library offers."""

    async def finished(self, queue: Any, total: int) -> int:
        """How many of the ``total`` jobs put on this queue have finished."""

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        """Results of the jobs ``refs``, in order."""

    async def close(self, queue: Any) -> None:
        """Release the queue's connections."""

    def worker(self, queue: Any, concurrency: int) -> Any:
        """A worker (with ``start()``/``stop()``) running noop and stamp."""


class Saq:
    """SAQ 0.26.x adapter."""

    key = "saq"
    label = "SAQ"

    def queue(self, url: str, name: str) -> Any:
        from saq import Queue

        return Queue.from_url(url, name=name)

    async def connect(self, queue: Any) -> None:
        await queue.connect()
        await queue.version()

    async def enqueue(self, queue: Any, function: str) -> str:
        job = await queue.enqueue(function)
        return str(job.key)

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        # SAQ has no batch enqueue; concurrent enqueues (what its Queue.map does,
        # capped by the queue's max_concurrent_ops=20) are its fastest way.
        await asyncio.gather(*(queue.enqueue(function) for _ in range(count)))

    async def finished(self, queue: Any, total: int) -> int:
        # A job leaves the "incomplete" set only when it finishes.
        return total - int(await queue.count("incomplete"))

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        return [job.result for job in await queue.jobs(refs)]

    async def close(self, queue: Any) -> None:
        await queue.disconnect()

    def worker(self, queue: Any, concurrency: int) -> Any:
        from saq import Worker

        # stop() with the default grace period of 0 cancels the idle dequeue loops
        # and logs a warning about it every time; that is expected here.
        logging.getLogger("saq").setLevel(logging.ERROR)
        return Worker(queue, functions=[noop, stamp], concurrency=concurrency)


class Jobwire:
    """Jobwire adapter."""

    key = "jobwire"
    label = "Jobwire"

    def queue(self, url: str, name: str) -> Any:
        from jobwire import Queue

        return Queue.from_url(url, name=name)

    async def connect(self, queue: Any) -> None:
        await queue.connect()

    async def enqueue(self, queue: Any, function: str) -> str:
        job = await queue.enqueue(function)
        return str(job.id)

    async def enqueue_batch(self, queue: Any, function: str, count: int) -> None:
        from jobwire import Job

        await queue.enqueue_many([Job(function) for _ in range(count)])

    async def finished(self, queue: Any, total: int) -> int:
        counts = (await queue.info())["counts"]
        if counts["failed"] or counts["aborted"]:
            raise BenchError(f"Jobwire: jobs did not complete: {counts}")
        return int(counts["complete"])

    async def results(self, queue: Any, refs: list[str]) -> list[Any]:
        return [(await queue.job(ref)).result for ref in refs]

    async def close(self, queue: Any) -> None:
        await queue.close()

    def worker(self, queue: Any, concurrency: int) -> Any:
        from jobwire import Worker

        return Worker(queue, functions=[noop, stamp], concurrency=concurrency)


SYSTEMS: dict[str, System] = {s.key: s for s in (Saq(), Jobwire())}


# --- the worker process -------------------------------------------------------


def worker_main(
    system_key: str,
    url: str,
    queue_name: str,
    concurrency: int,
    conn: Connection,
    profile_to: str | None,
) -> None:
    """Entry point of a spawned worker process.

    Connects, sends ``"ready"``, waits for ``"go"`` before starting the worker,
    and stops it on ``"stop"``.

    Args:
        system_key: Key into :data:`SYSTEMS`.
        url: Redis URL.
        queue_name: Queue to work on.
        concurrency: Worker concurrency.
        conn: Pipe end to the parent.
        profile_to: Path stem for pyinstrument ``.html``/``.txt`` output, or None.
    """
    asyncio.run(_serve(SYSTEMS[system_key], url, queue_name, concurrency, conn, profile_to))


async def _serve(
    system: System,
    url: str,
    queue_name: str,
    concurrency: int,
    conn: Connection,
    profile_to: str | None,
) -> None:
    queue = system.queue(url, queue_name)
    await system.connect(queue)
    worker = system.worker(queue, concurrency)
    commands = _command_queue(conn)
    conn.send("ready")
    await _expect(commands, "go")
    profiler = _start_profiler() if profile_to else None
    running = asyncio.create_task(worker.start())
    stopping = asyncio.create_task(_expect(commands, "stop"))
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()
        raise BenchError(f"{system.label}: worker.start() returned before stop()")
    await worker.stop()
    await running
    if profiler is not None and profile_to is not None:
        _write_profile(profiler, profile_to)
    await system.close(queue)


def _command_queue(conn: Connection) -> "asyncio.Queue[str]":
    commands: asyncio.Queue[str] = asyncio.Queue()
    asyncio.get_running_loop().add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    return commands


async def _expect(commands: "asyncio.Queue[str]", expected: str) -> None:
    got = await commands.get()
    if got != expected:
        raise BenchError(f"worker expected {expected!r} from the parent, got {got!r}")


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    # async_mode="disabled": sample whatever the event loop thread runs, across all tasks.
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    return profiler


def _write_profile(profiler: Any, stem: str) -> None:
    profiler.stop()
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.html").write_text(profiler.output_html())
    Path(f"{stem}.txt").write_text(profiler.output_text(unicode=True, color=False))


@dataclass
class WorkerProcess:
    """Parent-side handle on a spawned worker process.

    Attributes:
        system: The system the worker runs.
        url: Redis URL.
        queue_name: Queue the worker works on.
        concurrency: Worker concurrency.
        profile_to: Path stem for a pyinstrument profile, or None.
    """

    system: System
    url: str
    queue_name: str
    concurrency: int
    profile_to: str | None = None
    _conn: Connection | None = field(default=None, init=False)
    _process: Any = field(default=None, init=False)

    async def start(self) -> None:
        """Spawn the process and wait until it is connected and ready."""
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        args = (
            self.system.key,
            self.url,
            self.queue_name,
            self.concurrency,
            child_conn,
            self.profile_to,
        )
        self._process = context.Process(target=worker_main, args=args, daemon=True)
        self._process.start()
        child_conn.close()
        if not await asyncio.to_thread(self._conn.poll, READY_TIMEOUT_S):
            self.check_alive()
            raise BenchError(f"{self.system.label}: worker not ready after {READY_TIMEOUT_S}s")
        ready = self._conn.recv()
        if ready != "ready":
            raise BenchError(f"{self.system.label}: worker sent {ready!r} instead of 'ready'")

    def go(self) -> None:
        """Tell the worker to start its Worker."""
        self._send("go")

    def check_alive(self) -> None:
        """Raise if the worker process has exited."""
        if not self._process.is_alive():
            raise BenchError(
                f"{self.system.label}: worker process exited with code {self._process.exitcode}"
            )

    async def stop(self) -> None:
        """Ask the worker to stop gracefully and wait for the process to exit."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._send("stop")
            await asyncio.to_thread(self._process.join, STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            raise BenchError(f"{self.system.label}: worker did not stop within {STOP_TIMEOUT_S}s")
        if self._process.exitcode != 0:
            raise BenchError(
                f"{self.system.label}: worker process exited with code {self._process.exitcode}"
            )

    def _send(self, command: str) -> None:
        assert self._conn is not None
        self._conn.send(command)


@contextlib.asynccontextmanager
async def running_worker(worker: WorkerProcess) -> AsyncIterator[WorkerProcess]:
    """Start ``worker`` (up to ready, not go) and stop it on exit."""
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


# --- measurements ---------------------------------------------------------------


@dataclass
class Context:
    """What every measurement needs.

    Attributes:
        url: Redis URL.
        jobs: N, the number of jobs for the throughput measurements.
        admin: Client used to FLUSHDB before each measurement.
    """

    url: str
    jobs: int
    admin: aioredis.Redis


@contextlib.asynccontextmanager
async def fresh_queue(ctx: Context, system: System, label: str) -> AsyncIterator[Any]:
    """Flush the database and yield a connected queue with a never-used name."""
    await ctx.admin.flushdb()
    queue = system.queue(ctx.url, f"bench-{label}-{uuid.uuid4().hex[:8]}")
    await system.connect(queue)
    try:
        yield queue
    finally:
        await system.close(queue)


async def wait_finished(system: System, queue: Any, total: int, worker: WorkerProcess) -> None:
    """Poll every ``POLL_S`` until ``total`` jobs have finished.

    Raises:
        BenchError: The worker died or the jobs did not finish in time.
    """
    deadline = time.perf_counter() + FINISH_TIMEOUT_S
    while (done := await system.finished(queue, total)) < total:
        worker.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"{system.label}: {done}/{total} jobs finished after {FINISH_TIMEOUT_S}s"
            )
        await asyncio.sleep(POLL_S)


async def measure_drain(
    ctx: Context, system: System, concurrency: int, profile_to: str | None = None
) -> dict[str, float]:
    """Batch-enqueue N no-op jobs, then time one worker process draining them.

    Returns:
        ``{"batch": jobs/s of the batch enqueue, "drain": jobs/s of the drain}``.
    """
    async with fresh_queue(ctx, system, f"drain{concurrency}") as queue:
        started = time.perf_counter()
        await system.enqueue_batch(queue, "noop", ctx.jobs)
        batch_s = time.perf_counter() - started
        worker = WorkerProcess(system, ctx.url, queue.name, concurrency, profile_to)
        async with running_worker(worker):
            started = time.perf_counter()
            worker.go()
            await wait_finished(system, queue, ctx.jobs, worker)
            drain_s = time.perf_counter() - started
    return {"batch": ctx.jobs / batch_s, "drain": ctx.jobs / drain_s}


async def measure_enqueue(ctx: Context, system: System) -> dict[str, float]:
    """Time N sequential ``enqueue`` calls, no worker running.

    Returns:
        ``{"enqueue": jobs/s}``.
    """
    async with fresh_queue(ctx, system, "enqueue") as queue:
        started = time.perf_counter()
        for _ in range(ctx.jobs):
            await system.enqueue(queue, "noop")
        elapsed = time.perf_counter() - started
    return {"enqueue": ctx.jobs / elapsed}


async def measure_latency(ctx: Context, system: System) -> dict[str, float]:
    """Enqueue jobs ~10 ms apart to an idle worker; time enqueue to task start.

    Returns:
        ``{"p50": ms, "p99": ms}``.
    """
    async with fresh_queue(ctx, system, "latency") as queue:
        worker = WorkerProcess(system, ctx.url, queue.name, LATENCY_CONCURRENCY)
        async with running_worker(worker):
            worker.go()
            await asyncio.sleep(IDLE_SETTLE_S)
            sent = await _enqueue_spaced(system, queue)
            await wait_finished(system, queue, len(sent), worker)
        starts = await system.results(queue, [ref for ref, _ in sent])
    latencies = sorted((start - at) * 1000 for (_, at), start in zip(sent, starts, strict=True))
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


async def _enqueue_spaced(system: System, queue: Any) -> list[tuple[str, float]]:
    sent = []
    for _ in range(LATENCY_SAMPLES):
        at = time.time()
        sent.append((await system.enqueue(queue, "stamp"), at))
        await asyncio.sleep(LATENCY_GAP_S)
    return sent


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


# --- the run loop and the report --------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One row of the report.

    Attributes:
        label: Row label.
        unit: Unit shown in the row label.
        higher_is_better: True for throughputs, False for latencies.
    """

    label: str
    unit: str
    higher_is_better: bool


METRICS = {
    "drain10": Metric("drain, concurrency 10", "jobs/s", True),
    "drain100": Metric("drain, concurrency 100", "jobs/s", True),
    "enqueue": Metric("enqueue one by one", "jobs/s", True),
    "batch": Metric("batch enqueue", "jobs/s", True),
    "p50": Metric("enqueue-to-start latency p50", "ms", False),
    "p99": Metric("enqueue-to-start latency p99", "ms", False),
}

Measurement = Callable[[Context, System], Awaitable[dict[str, float]]]


def measurements() -> list[tuple[str, Measurement]]:
    """The measurements of one run, as (name, function) in run order.

    Each returns metric keys of :data:`METRICS`; a drain returns ``drain<concurrency>``
    and ``batch`` (its prefill is the batch-enqueue sample).
    """
    drains: list[tuple[str, Measurement]] = [
        (f"drain{c}", _drain_at(c)) for c in DRAIN_CONCURRENCIES
    ]
    return [*drains, ("enqueue", measure_enqueue), ("latency", measure_latency)]


def _drain_at(concurrency: int) -> Measurement:
    async def drain(ctx: Context, system: System) -> dict[str, float]:
        result = await measure_drain(ctx, system, concurrency)
        return {f"drain{concurrency}": result["drain"], "batch": result["batch"]}

    return drain


Samples = dict[tuple[str, str], list[float]]


async def run_all(ctx: Context, systems: list[System], runs: int) -> Samples:
    """Run every measurement for every system, interleaved, ``runs`` times.

    The order of the systems alternates between runs so neither always goes first.
    """
    samples: Samples = {}
    for run in range(runs):
        order = systems if run % 2 == 0 else systems[::-1]
        for name, measurement in measurements():
            for system in order:
                result = await measurement(ctx, system)
                _log(f"run {run + 1}/{runs} {system.label:8} {name:8} " + _format_raw(result))
                for key, value in result.items():
                    samples.setdefault((key, system.key), []).append(value)
    return samples


async def profile_jobwire(ctx: Context) -> None:
    """One extra Jobwire drain per concurrency with the worker under pyinstrument."""
    for concurrency in DRAIN_CONCURRENCIES:
        stem = str(PROFILE_DIR / f"jobwire-drain-c{concurrency}")
        result = await measure_drain(ctx, SYSTEMS["jobwire"], concurrency, profile_to=stem)
        _log(
            f"profiled Jobwire drain c{concurrency}: {result['drain']:,.0f} jobs/s "
            f"(under pyinstrument) -> {stem}.html / .txt"
        )


def report(samples: Samples, runs: int, environment: str) -> str:
    """The markdown report: environment, command, and the table of medians."""
    header = (
        "| metric | SAQ | Jobwire | Jobwire vs SAQ (>1 = Jobwire better: "
        "Jobwire/SAQ for throughput, SAQ/Jobwire for latency) |"
    )
    lines = [environment, "", header, "|---|---:|---:|---:|"]
    for key, metric in METRICS.items():
        saq = _median(samples, key, "saq")
        jobwire = _median(samples, key, "jobwire")
        ratio = _ratio(saq, jobwire, metric.higher_is_better)
        lines.append(
            f"| {metric.label} ({metric.unit}) | {_cell(saq, metric)} | "
            f"{_cell(jobwire, metric)} | {ratio} |"
        )
    lines += [
        "",
        f"Medians over {runs} runs (batch enqueue: over {len(DRAIN_CONCURRENCIES) * runs}"
        " samples, the drain prefills).",
    ]
    return "\n".join(lines)


def _median(samples: Samples, key: str, system_key: str) -> float | None:
    values = samples.get((key, system_key))
    return statistics.median(values) if values else None


def _ratio(saq: float | None, jobwire: float | None, higher_is_better: bool) -> str:
    if not saq or not jobwire:
        return "—"
    return f"{(jobwire / saq) if higher_is_better else (saq / jobwire):.2f}"


def _cell(value: float | None, metric: Metric) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if metric.unit == "jobs/s" else f"{value:.1f}"


def _format_raw(result: dict[str, float]) -> str:
    return "  ".join(f"{key}={value:,.1f}" for key, value in result.items())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- environment -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """Run a non-persisting redis-server on a free port; yield its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            _wait_for_redis(port, server)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_redis(port: int, server: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()


async def describe_environment(admin: aioredis.Redis, systems: list[System]) -> str:
    """Machine, versions and the exact command, as markdown lines."""
    server = await admin.info("server")
    versions = ", ".join(f"{s.label} {_version(s.key)}" for s in systems)
    return "\n".join(
        [
            f"- machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}",
            f"- python {platform.python_version()}, redis-server {server['redis_version']}, "
            f"{versions}",
            f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        ]
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


# --- entry point -------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=10_000,
        help="N, jobs per throughput measurement (default 10000)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="repetitions; the report shows medians (default 3)"
    )
    parser.add_argument(
        "--redis-url",
        help="use this Redis (its database is FLUSHDB'd "
        "before every measurement!) instead of a throwaway redis-server",
    )
    parser.add_argument(
        "--systems",
        default="saq,jobwire",
        help="comma-separated subset of: saq,jobwire (default both)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, one extra Jobwire drain per concurrency with the "
        f"worker under pyinstrument; profiles go to {PROFILE_DIR}",
    )
    return parser.parse_args(argv)


async def bench(url: str, args: argparse.Namespace) -> str:
    """Run the whole benchmark against the Redis at ``url``; return the report."""
    systems = [SYSTEMS[key.strip()] for key in args.systems.split(",")]
    admin = aioredis.from_url(url)
    try:
        ctx = Context(url=url, jobs=args.jobs, admin=admin)
        environment = await describe_environment(admin, systems)
        samples = await run_all(ctx, systems, args.runs)
        if args.profile:
            await profile_jobwire(ctx)
        await admin.flushdb()
    finally:
        await admin.aclose()
    return report(samples, args.runs, environment)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(throwaway_redis())
        try:
            print(asyncio.run(bench(url, args)))
        except BenchError as exc:
            _log(f"benchmark failed: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
