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
import math
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from harness import (
    WorkerProcess,
    describe_environment,
    jobwire_service,
    log,
    running_worker,
    throwaway_redis,
)
from systems import SYSTEMS, BenchError, System

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
DRAIN_CONCURRENCIES = (10, 100)
LATENCY_CONCURRENCY = 10
LATENCY_SAMPLES = 200
LATENCY_GAP_S = 0.010
IDLE_SETTLE_S = 0.5
POLL_S = 0.020
FINISH_TIMEOUT_S = 120.0


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
                log(f"run {run + 1}/{runs} {system.label:8} {name:8} " + _format_raw(result))
                for key, value in result.items():
                    samples.setdefault((key, system.key), []).append(value)
    return samples


async def profile_jobwire(ctx: Context) -> None:
    """One extra Jobwire drain per concurrency with the worker under pyinstrument."""
    for concurrency in DRAIN_CONCURRENCIES:
        stem = str(PROFILE_DIR / f"jobwire-drain-c{concurrency}")
        result = await measure_drain(ctx, SYSTEMS["jobwire"], concurrency, profile_to=stem)
        log(
            f"profiled Jobwire drain c{concurrency}: {result['drain']:,.0f} jobs/s "
            f"(under pyinstrument) -> {stem}.html / .txt"
        )


def report(samples: Samples, systems: list[System], runs: int, environment: str) -> str:
    """The markdown report: environment, command, and the table of medians.

    Each Jobwire column gets a ratio against SAQ (>1 = Jobwire better: Jobwire/SAQ for
    throughput, SAQ/Jobwire for latency).
    """
    peers = [s for s in systems if s.key != "saq"]
    header = ["metric", *(s.label for s in systems), *(f"{s.label} vs SAQ" for s in peers)]
    lines = [environment, "", "| " + " | ".join(header) + " |",
             "|---|" + "---:|" * (len(header) - 1)]  # fmt: skip
    for key, metric in METRICS.items():
        values = {s.key: _median(samples, key, s.key) for s in systems}
        cells = [_cell(values[s.key], metric) for s in systems]
        ratios = [_ratio(values.get("saq"), values[s.key], metric.higher_is_better) for s in peers]
        lines.append(f"| {metric.label} ({metric.unit}) | " + " | ".join(cells + ratios) + " |")
    lines += [
        "",
        "Ratios: >1 means Jobwire is better (Jobwire/SAQ for throughput, SAQ/Jobwire for latency).",
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
        default="saq,jobwire,jobwire-http,jobwire-grpc",
        help="comma-separated subset of: saq,jobwire,jobwire-http,jobwire-grpc (default all)",
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
    return report(samples, systems, args.runs, environment)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(throwaway_redis())
        if "jobwire-http" in args.systems or "jobwire-grpc" in args.systems:
            stack.enter_context(jobwire_service(url))
        try:
            print(asyncio.run(bench(url, args)))
        except BenchError as exc:
            log(f"benchmark failed: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
