"""Benchmark what flow-control limits cost: drain throughput with limits set far above the
load vs no limits, side by side on each store, in one run.

On each store (redis, postgres, sqlite) and in each run, N no-op jobs are enqueued on a
fresh store and one worker process (concurrency 10) drains them, timed inside the worker
(as in bench_stores.py), under three settings:

* **none**: no limits (the stores' fast lease path);
* **max_active**: ``max_active=1_000_000`` and a per-function ``max_active`` as large
  (the limited lease path: counting and checking, never holding a job back);
* **rate**: a queue rate of 1,000,000,000 jobs/s (the sliding-window log).

The ratio limited/none (jobs/s) is paired within a run; the report gives the median over
runs. The issue's target: limits far above the load cost < 10% (ratio >= 0.90). On a
small shared machine the throughput of one drain swings by 20-30% from run to run, so
the report also gives the cost in CPU: the machine's busy CPU time per job over each
drain (worker, store server and all; ``/proc/stat``), limited against none, which
contention moves far less than wall time.

Usage:
    python bench/bench_limits.py [--runs 3] [--jobs 5000] [--stores redis,postgres,sqlite]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import statistics
import sys

from bench_stores import add_store_options, fill, fresh_store, report_on_stores, timed_drain
from harness import log

from jobwire import FunctionLimits, Queue, QueueSettings, Rate

SETTINGS = {
    "none": QueueSettings(),
    "max_active": QueueSettings(
        max_active=1_000_000, functions={"noop": FunctionLimits(max_active=1_000_000)}
    ),
    "rate": QueueSettings(rate=Rate(1_000_000_000, 1.0)),
}
NAME = "limits"


async def drain(
    store: str, urls: dict[str, str], settings: QueueSettings, jobs: int
) -> tuple[float, float]:
    """Jobs/s one worker process drains ``jobs`` no-ops at under ``settings``, and the
    machine's busy CPU microseconds per job meanwhile."""
    async with fresh_store(store, urls) as url:
        await fill("jobwire", url, NAME, jobs)
        async with Queue.from_url(url, name=NAME) as queue:
            await queue.configure(settings)
        cpu: list[float] = []
        seconds = await timed_drain("jobwire", url, NAME, jobs, cpu)
        return jobs / seconds, cpu[0] / jobs * 1e6


Samples = dict[str, dict[str, list[tuple[float, float]]]]  # store -> setting -> runs


async def run(args: argparse.Namespace, urls: dict[str, str]) -> list[str]:
    """Every store and setting, ``args.runs`` times (order rotated per run); the report."""
    samples: Samples = {s: {label: [] for label in SETTINGS} for s in args.stores}
    labels = list(SETTINGS)
    for run_number in range(args.runs):
        order = labels[run_number % len(labels) :] + labels[: run_number % len(labels)]
        for store in args.stores:
            for label in order:
                rate, cpu_us = await drain(store, urls, SETTINGS[label], args.jobs)
                samples[store][label].append((rate, cpu_us))
                log(
                    f"run {run_number + 1}: {store} {label} {rate:,.0f} jobs/s, {cpu_us:.0f} us/job"
                )
    return _report(args, samples)


def _report(args: argparse.Namespace, samples: Samples) -> list[str]:
    lines = [
        f"{args.jobs:,} no-op jobs drained by one worker process (concurrency 10), "
        f"median of {args.runs} runs; ratio = limited / none (jobs/s, paired within a run); "
        "CPU = the machine's busy CPU per job, and its cost = limited / none - 1 (medians).",
        "",
        "| store | none (jobs/s, CPU/job) | max_active 1e6 (jobs/s) | ratio | CPU cost "
        "| rate 1e9/s (jobs/s) | ratio | CPU cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for store, per_label in samples.items():
        none_rates = [rate for rate, _ in per_label["none"]]
        none_cpu = statistics.median(cpu for _, cpu in per_label["none"])
        cells = [store, f"{statistics.median(none_rates):,.0f}, {none_cpu:.0f} us"]
        for label in ("max_active", "rate"):
            rates = [rate for rate, _ in per_label[label]]
            ratios = [limited / free for limited, free in zip(rates, none_rates, strict=True)]
            cpu = statistics.median(cpu for _, cpu in per_label[label])
            cells += [
                f"{statistics.median(rates):,.0f}",
                f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}-{max(ratios):.2f})",
                f"{(cpu / none_cpu - 1) * 100:+.0f}%",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5_000)
    add_store_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    return report_on_stores(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
