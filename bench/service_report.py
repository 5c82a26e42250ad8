"""The markdown report of bench_service.py: the environment and one table per measurement.

Values are medians over the runs; a ratio is the median of the per-run ratios (each run
measures both sides back to back), followed by the smallest and largest per-run ratio.
"""

import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from harness import package_version

PACKAGES = ("jobwire", "fastapi", "uvicorn", "uvloop", "httptools", "redis", "hiredis",
            "grpcio", "protobuf", "aiohttp")  # fmt: skip

RunValues = dict[str, float]


def describe_environment(redis_url: str) -> str:
    """Machine, load, versions and the exact command, as markdown lines."""
    server: dict[str, Any] = redis.Redis.from_url(redis_url).info("server")  # type: ignore[assignment]
    versions = ", ".join(f"{name} {package_version(name)}" for name in PACKAGES)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return "\n".join(
        [
            f"- machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}, "
            f"load average at start {load}",
            f"- python {platform.python_version()}, redis-server {server['redis_version']}, "
            f"{_wrk_version()}",
            f"- {versions}",
            f"- jobwire code measured: {_jobwire_source()}",
            f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        ]
    )


def _jobwire_source() -> str:
    """Where `jobwire` is imported from, and its git commit (+ "dirty" if changed)."""
    import jobwire

    folder = Path(jobwire.__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    changed = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "."],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
    if not commit:
        return str(folder)
    return f"{folder} at {commit}{' (with uncommitted changes)' if changed else ''}"


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    words = (done.stdout or done.stderr).split()
    return " ".join(words[:2]) if words else "wrk (unknown version)"


class Table:
    """Medians and paired ratios over the runs' values."""

    def __init__(self, runs: Sequence[RunValues]) -> None:
        self.runs = runs

    def median(self, key: str) -> float:
        """The median of ``key`` over the runs."""
        return statistics.median(run[key] for run in self.runs)

    def ratio(self, top: str, bottom: str) -> str:
        """``top / bottom``: median of the per-run ratios, then (min-max)."""
        ratios = [run[top] / run[bottom] for run in self.runs]
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        return f"**{statistics.median(ratios):.2f}**{spread}"


def _rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _rest(t: Table) -> list[str]:
    rows = [
        [str(c), f"{t.median(f'rest.jobwire.{c}'):,.0f}", f"{t.median(f'rest.bare.{c}'):,.0f}",
         t.ratio(f"rest.jobwire.{c}", f"rest.bare.{c}"),
         f"{t.median(f'rest_cpu.jobwire.{c}'):,.0f} / {t.median(f'rest_cpu.bare.{c}'):,.0f}",
         t.ratio(f"rest_cpu.jobwire.{c}", f"rest_cpu.bare.{c}")]
        for c in (1, 8, 32, 128)
    ]  # fmt: skip
    header = ["connections", "Jobwire (req/s)", "bare (req/s)", "Jobwire / bare",
              "server CPU µs/req, Jobwire / bare", "CPU/req ratio"]  # fmt: skip
    return ["### 1. REST enqueue capacity (wrk, `POST /v1/queues/bench/jobs`, Redis)", "",
            *_rows(header, rows)]  # fmt: skip


def _grpc(t: Table) -> list[str]:
    rows = [
        [str(n), f"{t.median(f'grpc.jobwire.{n}'):,.0f}", f"{t.median(f'grpc.bare.{n}'):,.0f}",
         t.ratio(f"grpc.jobwire.{n}", f"grpc.bare.{n}"),
         f"{t.median(f'grpc_client.jobwire.{n}'):.2f} / {t.median(f'grpc_client.bare.{n}'):.2f}",
         f"{t.median(f'grpc_cpu.jobwire.{n}'):,.0f} / {t.median(f'grpc_cpu.bare.{n}'):,.0f}",
         t.ratio(f"grpc_cpu.jobwire.{n}", f"grpc_cpu.bare.{n}")]
        for n in (1, 8, 32)
    ]  # fmt: skip
    header = ["in flight", "Jobwire (calls/s)", "bare echo (calls/s)", "Jobwire / bare",
              "load generator CPU (cores), Jobwire / bare",
              "server CPU µs/call, Jobwire / bare", "CPU/call ratio"]  # fmt: skip
    return ["### 2. gRPC `JobService/Enqueue` capacity (load_grpc.py, Redis)", "",
            *_rows(header, rows)]  # fmt: skip


def _sqlite(t: Table) -> list[str]:
    rows = [
        [str(c), f"{t.median(f'rest.sqlite.{c}'):,.0f}", f"{t.median(f'rest.jobwire.{c}'):,.0f}",
         t.ratio(f"rest.sqlite.{c}", f"rest.jobwire.{c}")]
        for c in (8, 32)
    ]  # fmt: skip
    header = ["connections", "Jobwire/SQLite (req/s)", "Jobwire/Redis (req/s)", "SQLite / Redis"]
    return ["### 3. The embedded default: REST enqueue capacity over SQLite", "",
            *_rows(header, rows)]  # fmt: skip


def _latency(t: Table) -> list[str]:
    rows = [
        [name, f"{t.median(f'{key}.jobwire.p50'):.2f}", f"{t.median(f'{key}.jobwire.p99'):.2f}",
         f"{t.median(f'{key}.bare.p50'):.2f}", f"{t.median(f'{key}.bare.p99'):.2f}",
         t.ratio(f"{key}.jobwire.p50", f"{key}.bare.p50")]
        for name, key in (("HTTP", "latency_http"), ("gRPC", "latency_grpc"))
    ]  # fmt: skip
    header = ["transport", "Jobwire p50 (ms)", "Jobwire p99 (ms)", "bare round trip p50 (ms)",
              "bare p99 (ms)", "Jobwire p50 / bare p50"]  # fmt: skip
    return ["### 4. Enqueue-to-start, idle SDK worker via the service (Redis), vs the bare "
            "round trip", "", *_rows(header, rows)]  # fmt: skip


def _sdk_sqlite(t: Table) -> list[str]:
    row = [f"{t.median('latency_sqlite.sdk.p50'):.2f}", f"{t.median('latency_sqlite.sdk.p99'):.2f}"]
    return ["### 5. Enqueue-to-start, the SDK straight on a SQLite file", "",
            *_rows(["p50 (ms)", "p99 (ms)"], [row])]  # fmt: skip


def report(runs: Sequence[RunValues], environment: str) -> str:
    """The whole markdown report."""
    table = Table(runs)
    sections = [_rest, _grpc, _sqlite, _latency, _sdk_sqlite]
    lines = [environment, ""]
    for section in sections:
        lines += [*section(table), ""]
    lines.append(
        f"Medians over {len(runs)} runs. Ratios: Jobwire over its bare limit, the median of "
        "the per-run ratios, (min-max) over the runs. Capacity: < 1 means Jobwire serves "
        "less than the bare app; CPU ratio: server CPU per request, Jobwire over bare (> 1: "
        "Jobwire spends more); latency: the enqueue-to-start p50 in bare round trips."
    )
    return "\n".join(lines)
