"""Benchmark Jobwire's stores: Postgres vs SAQ's Postgres queue, and backlog sensitivity.

Two measurements, each repeated ``--runs`` times (medians reported):

* **postgres drain**: N no-op jobs batch-enqueued, then one worker process at
  concurrency 10 drains them; Jobwire-on-Postgres vs SAQ-on-Postgres, same server.
* **backlog**: on each Jobwire store (redis, postgres, sqlite), the time one worker
  process (concurrency 10) takes to start M = 5,000 jobs when M are queued vs when
  100,000 are queued. The ratio (rate with the big backlog / rate with the small one,
  paired within a run, median over runs) shows whether dequeue cost grows with the
  backlog: 1.0 means flat. (M is 5,000 rather than 1,000: timing 1,000 no-op jobs takes
  0.2-0.4 s, too short to rise above this machine's noise.)

Timing happens inside the worker process (from "go" to the M-th task start), so no
polling competes with the store. Every measurement gets a fresh store: a new Postgres
database, a flushed Redis, a new SQLite file.

Usage:
    python bench/bench_stores.py [--runs 3] [--jobs 10000] [--backlog 100000]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--measure both]
"""

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import asyncpg
import redis
import redis.asyncio as aioredis
from harness import describe_environment, log, throwaway_redis
from systems import SYSTEMS

from jobwire import Job, Queue, Worker

CONCURRENCY = 10
BACKLOG_MEASURED = 5_000  # jobs started in each backlog case (the small backlog's size)
FILL_CHUNK = 10_000
READY_TIMEOUT_S = 60.0


def worker_main(system: str, url: str, name: str, target: int, conn: Connection) -> None:
    """Spawned worker: connect, say ready, on "go" start the worker, report the seconds
    until ``target`` tasks have started, then stop."""
    logging.getLogger("saq").setLevel(logging.ERROR)
    asyncio.run(_work(system, url, name, target, conn))


async def _work(system: str, url: str, name: str, target: int, conn: Connection) -> None:
    started = 0
    reached = asyncio.Event()

    async def noop(ctx: dict[str, Any]) -> None:
        nonlocal started
        started += 1
        if started == target:
            reached.set()

    queue, worker = await _open_worker(system, url, name, noop)
    conn.send("ready")
    await asyncio.to_thread(conn.recv)  # "go"
    clock = time.perf_counter()
    running = asyncio.create_task(worker.start())
    await reached.wait()
    conn.send(time.perf_counter() - clock)
    await worker.stop()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await (queue.disconnect() if system == "saq" else queue.close())


async def _open_worker(system: str, url: str, name: str, noop: Any) -> tuple[Any, Any]:
    if system == "saq":
        import saq

        saq_queue = saq.Queue.from_url(url, name=name)
        await saq_queue.connect()
        return saq_queue, saq.Worker(saq_queue, functions=[("noop", noop)], concurrency=CONCURRENCY)
    queue = Queue.from_url(url, name=name)
    await queue.connect()
    return queue, Worker(queue, [noop], concurrency=CONCURRENCY, handle_signals=False)


async def timed_drain(
    system: str, url: str, name: str, target: int, cpu: list[float] | None = None
) -> float:
    """Seconds a fresh worker process needs to start ``target`` jobs of ``name``; with
    ``cpu``, the machine's busy CPU seconds over the drain are appended to it."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=worker_main, args=(system, url, name, target, child))
    process.start()
    child.close()
    try:
        if not await asyncio.to_thread(parent.poll, READY_TIMEOUT_S):
            raise RuntimeError(f"{system} worker not ready")
        parent.recv()
        busy = busy_cpu_s()
        parent.send("go")
        seconds = float(await asyncio.to_thread(parent.recv))
        if cpu is not None:
            cpu.append(busy_cpu_s() - busy)
        return seconds
    finally:
        await asyncio.to_thread(process.join, 60)


def busy_cpu_s() -> float:
    """CPU seconds every core of this machine has spent busy since boot (Linux
    ``/proc/stat``: user, nice, system, irq and softirq time; idle, I/O wait and steal
    left out): the worker, the store's server and anything else running."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


async def fill(system: str, url: str, name: str, count: int) -> None:
    """Enqueue ``count`` no-op jobs as fast as the system allows."""
    if system == "saq":
        import saq

        saq_queue = saq.Queue.from_url(url, name=name)
        await saq_queue.connect()
        for start in range(0, count, 500):
            await asyncio.gather(
                *(saq_queue.enqueue("noop") for _ in range(min(500, count - start)))
            )
        await saq_queue.disconnect()
        return
    async with Queue.from_url(url, name=name) as queue:
        for start in range(0, count, FILL_CHUNK):
            await queue.enqueue_many([Job("noop") for _ in range(min(FILL_CHUNK, count - start))])


@contextlib.asynccontextmanager
async def fresh_postgres(admin_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped afterwards."""
    name = f"jobwire_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_store(store: str, urls: dict[str, str]) -> AsyncIterator[str]:
    """A fresh, empty store of kind ``store``; yields its URL."""
    if store == "postgres":
        async with fresh_postgres(urls["postgres"]) as url:
            yield url
    elif store == "redis":
        redis.Redis.from_url(urls["redis"]).flushdb()
        yield urls["redis"]
    else:
        with tempfile.TemporaryDirectory(prefix="jobwire-bench-") as folder:
            yield f"sqlite:///{folder}/jobs.db"


async def measure_postgres_drain(urls: dict[str, str], jobs: int) -> dict[str, float]:
    """Jobs/s draining ``jobs`` queued no-ops on Postgres: SAQ vs Jobwire."""
    rates = {}
    for system in ("saq", "jobwire"):
        async with fresh_store("postgres", urls) as url:
            await fill(system, url, "drain", jobs)
            rates[system] = jobs / await timed_drain(system, url, "drain", jobs)
    return rates


async def measure_backlog(urls: dict[str, str], store: str, backlog: int) -> dict[str, float]:
    """Jobs/s starting the first ``BACKLOG_MEASURED`` jobs with a small and a big backlog."""
    rates = {}
    for label, queued in (("small", BACKLOG_MEASURED), ("big", backlog)):
        async with fresh_store(store, urls) as url:
            await fill("jobwire", url, "backlog", queued)
            seconds = await timed_drain("jobwire", url, "backlog", BACKLOG_MEASURED)
            rates[label] = BACKLOG_MEASURED / seconds
    return rates


async def run(args: argparse.Namespace, urls: dict[str, str]) -> list[str]:
    """Every measurement, ``args.runs`` times; the report's lines."""
    drains: dict[str, list[float]] = {"saq": [], "jobwire": []}
    backlogs: dict[str, dict[str, list[float]]] = {s: {"small": [], "big": []} for s in args.stores}
    for run_number in range(1, args.runs + 1):
        if args.measure in ("both", "drain"):
            for system, rate in (await measure_postgres_drain(urls, args.jobs)).items():
                drains[system].append(rate)
                log(f"run {run_number}: postgres drain {system} {rate:,.0f} jobs/s")
        if args.measure in ("both", "backlog"):
            for store in args.stores:
                for label, rate in (await measure_backlog(urls, store, args.backlog)).items():
                    backlogs[store][label].append(rate)
                    log(f"run {run_number}: backlog {store} {label} {rate:,.0f} jobs/s")
    return _report(args, drains, backlogs)


def _report(
    args: argparse.Namespace,
    drains: dict[str, list[float]],
    backlogs: dict[str, dict[str, list[float]]],
) -> list[str]:
    lines = []
    if drains["saq"]:
        saq, jobwire = statistics.median(drains["saq"]), statistics.median(drains["jobwire"])
        title = (
            f"Postgres drain, {args.jobs:,} jobs, one worker process, concurrency {CONCURRENCY}:"
        )
        lines += [
            title,
            "",
            "| SAQ (jobs/s) | Jobwire (jobs/s) | Jobwire / SAQ |",
            "|---:|---:|---:|",
            f"| {saq:,.0f} | {jobwire:,.0f} | {jobwire / saq:.2f} |",
            "",
        ]
    if any(b["small"] for b in backlogs.values()):
        lines += [f"Backlog: jobs/s starting the first {BACKLOG_MEASURED:,} jobs, with "
                  f"{BACKLOG_MEASURED:,} vs {args.backlog:,} queued:", "",
                  f"| store | {BACKLOG_MEASURED:,} queued | {args.backlog:,} queued | ratio |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for store, rates in backlogs.items():
            small, big = statistics.median(rates["small"]), statistics.median(rates["big"])
            paired = statistics.median(
                b / s for s, b in zip(rates["small"], rates["big"], strict=True)
            )
            lines.append(f"| {store} | {small:,.0f} | {big:,.0f} | {paired:.2f} |")
    lines += ["", f"Medians over {args.runs} runs."]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the Postgres drain")
    parser.add_argument("--backlog", type=int, default=100_000, help="the big backlog")
    parser.add_argument("--measure", choices=["both", "drain", "backlog"], default="both")
    add_store_options(parser)
    return parser.parse_args(argv)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--stores`` and ``--postgres-url``, shared with the benchmarks built on this one."""
    parser.add_argument(
        "--stores", type=lambda s: s.split(","), default=["redis", "postgres", "sqlite"]
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server where this user may create and drop databases",
    )


def report_on_stores(
    args: argparse.Namespace,
    run_all: Callable[[argparse.Namespace, dict[str, str]], Awaitable[list[str]]],
) -> int:
    """Run ``run_all`` with a throwaway Redis and ``args.postgres_url``; print its report
    under the environment's description."""
    with throwaway_redis() as redis_url:
        urls = {"redis": redis_url, "postgres": args.postgres_url}
        lines = asyncio.run(run_all(args, urls))
        environment = asyncio.run(_environment(redis_url))
    print("\n".join([environment, "", *lines]))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    return report_on_stores(parse_args(argv), run)


async def _environment(redis_url: str) -> str:
    admin = aioredis.from_url(redis_url)
    try:
        return await describe_environment(admin, [SYSTEMS["saq"], SYSTEMS["jobwire"]])
    finally:
        await admin.aclose()


if __name__ == "__main__":
    sys.exit(main())
