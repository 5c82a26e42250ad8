"""The service's own cost (issue 12): `jobwire serve` against the bare limits, side by side.

Every run starts the servers (one process each, on loopback: `jobwire serve` over a
throwaway Redis, `jobwire serve` over SQLite, the bare REST app, the bare gRPC echo) and
loads one at a time, the servers of each comparison back to back at each level:

1. REST enqueue capacity: wrk POSTs a small job at 1, 8, 32, 128 connections to
   `jobwire serve` over a throwaway Redis, and to the bare REST app (bare_rest.py:
   FastAPI + uvicorn + one LPUSH);
2. gRPC ``JobService/Enqueue`` capacity at 1, 8, 32 calls in flight (load_grpc.py, its own
   process) against the same service and against the bare echo (bare_grpc.py);
3. REST enqueue capacity at 8 and 32 connections of `jobwire serve` over SQLite, against
   the service over Redis;
4. enqueue-to-start p50/p99 of an idle SDK worker over HTTP and over gRPC, against the
   transport's bare round trip (p50 of sequential calls to the bare apps);
5. enqueue-to-start p50/p99 of the SDK straight on a SQLite file.

Repeated ``--runs`` times (who goes first alternates); the report gives medians and, for
each ratio, the median of the per-run ratios. Progress goes to stderr, the report to stdout.
See bench/README.md.

Usage:
    python bench/bench_service.py [--runs 3] [--seconds 3] [--profile]
"""

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from harness import log, throwaway_redis
from latency import enqueue_to_start, grpc_round_trip, rest_round_trip
from load_rest import ENQUEUE_PATH, post_script, run_wrk, warm_up
from pyspy import FORMATS, recording
from servers import (
    BENCH_DIR,
    Server,
    bare_grpc_spec,
    bare_rest_spec,
    cpu_seconds,
    jobwire_spec,
    point_sdk_at,
    running,
)
from service_report import describe_environment, report
from systems import SYSTEMS, BenchError

REST_CONNECTIONS = (1, 8, 32, 128)
GRPC_IN_FLIGHT = (1, 8, 32)
SQLITE_CONNECTIONS = (8, 32)
PROFILE_CONCURRENCY = 32
GRPC_WARMUP_S = 0.5
PROFILE_DIR = BENCH_DIR / "profiles"

RunValues = dict[str, float]  # "measure.system.level" -> value, one run
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """What every measurement needs.

    Attributes:
        redis_url: The throwaway Redis.
        seconds: Measured seconds of each load.
        script: wrk's Lua script for the enqueue POST.
        folder: A scratch folder (SQLite files).
    """

    redis_url: str
    seconds: int
    script: Path
    folder: Path


# --- loads -----------------------------------------------------------------------


@dataclass
class Target:
    """A server of the run under the name its values carry ("jobwire", "bare", "sqlite").

    Attributes:
        name: The name in the value keys.
        server: The running server.
        loaded_cpu_s: CPU seconds it used during its own loads so far.
    """

    name: str
    server: Server
    loaded_cpu_s: float = 0.0


def measure_rest(ctx: Context, target: Target, connections: int) -> RunValues:
    """wrk at ``connections``: requests/s, and the server's CPU µs per request (warm-up
    included in both the CPU and the request count)."""
    server = target.server
    assert server.http_url is not None
    url = server.http_url + ENQUEUE_PATH
    cpu = cpu_seconds(server.pid)
    warm = warm_up(url, connections, ctx.script)
    result = run_wrk(url, connections, ctx.seconds, ctx.script)
    cpu = cpu_seconds(server.pid) - cpu
    target.loaded_cpu_s += cpu
    cpu_us = cpu * 1e6 / (warm.requests + result.requests)
    log(f"  REST {server.label} c{connections}: {result.requests_per_s:,.0f} req/s, "
         f"server {cpu_us:,.0f} µs CPU/req")  # fmt: skip
    return {
        f"rest.{target.name}.{connections}": result.requests_per_s,
        f"rest_cpu.{target.name}.{connections}": cpu_us,
    }


def load_grpc(target: str, in_flight: int, seconds: float) -> dict[str, float]:
    """Run load_grpc.py (its own process) against ``target``; its JSON result."""
    command = [sys.executable, str(BENCH_DIR / "load_grpc.py"), "--target", target,
               "--concurrency", str(in_flight), "--seconds", str(seconds),
               "--warmup", str(GRPC_WARMUP_S)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"load_grpc.py against {target} failed:\n{done.stderr.strip()}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def measure_grpc(ctx: Context, target: Target, in_flight: int) -> RunValues:
    """load_grpc.py at ``in_flight``: calls/s, its own CPU share, the server's CPU µs per
    call (over the whole load, warm-up included)."""
    server = target.server
    assert server.grpc_target is not None
    cpu = cpu_seconds(server.pid)
    result = load_grpc(server.grpc_target, in_flight, ctx.seconds)
    cpu = cpu_seconds(server.pid) - cpu
    target.loaded_cpu_s += cpu
    cpu_us = cpu * 1e6 / result["total_calls"]
    log(f"  gRPC {server.label} x{in_flight}: {result['calls_per_s']:,.0f} calls/s, "
         f"client CPU {result['cpu_share']:.2f} cores, "
         f"server {cpu_us:,.0f} µs CPU/call")  # fmt: skip
    return {
        f"grpc.{target.name}.{in_flight}": result["calls_per_s"],
        f"grpc_client.{target.name}.{in_flight}": result["cpu_share"],
        f"grpc_cpu.{target.name}.{in_flight}": cpu_us,
    }


def _prefixed(prefix: str, latencies: dict[str, float]) -> RunValues:
    log(f"  {prefix}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in latencies.items()))
    return {f"{prefix}.{key}": value for key, value in latencies.items()}


def _turns(items: Sequence[T], turn: int) -> Sequence[T]:
    """``items`` as given on even turns, reversed on odd ones."""
    return items if turn % 2 == 0 else items[::-1]


# --- one run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Servers:
    """The servers of one run: `jobwire serve` over Redis and over SQLite, the bare apps."""

    jobwire: Target
    sqlite: Target
    bare_rest: Target
    bare_grpc: Target

    def all(self) -> list[Target]:
        """Every server."""
        return [self.jobwire, self.sqlite, self.bare_rest, self.bare_grpc]


@contextlib.contextmanager
def started(ctx: Context, folder: str) -> Iterator[Servers]:
    """Start the run's four servers (each its own process, all idle until loaded)."""
    specs = [
        jobwire_spec(ctx.redis_url, "Jobwire/Redis"),
        jobwire_spec(f"sqlite:///{folder}/jobs.db", "Jobwire/SQLite"),
        bare_rest_spec(ctx.redis_url),
        bare_grpc_spec(),
    ]
    with running(*specs) as (jobwire, sqlite, rest, grpc_):
        yield Servers(
            jobwire=Target("jobwire", jobwire),
            sqlite=Target("sqlite", sqlite),
            bare_rest=Target("bare", rest),
            bare_grpc=Target("bare", grpc_),
        )


def measure_latencies(servers: Servers, run: int) -> RunValues:
    """Enqueue-to-start through the service over HTTP and gRPC, each next to its bare
    round trip (who goes first alternates)."""
    point_sdk_at(servers.jobwire.server)
    rest_url = servers.bare_rest.server.http_url or ""
    grpc_target = servers.bare_grpc.server.grpc_target or ""
    pairs: list[list[tuple[str, Callable[[], Coroutine[Any, Any, dict[str, float]]]]]] = [
        [("latency_http.jobwire", lambda: enqueue_to_start(SYSTEMS["jobwire-http"], "")),
         ("latency_http.bare", lambda: rest_round_trip(rest_url))],
        [("latency_grpc.jobwire", lambda: enqueue_to_start(SYSTEMS["jobwire-grpc"], "")),
         ("latency_grpc.bare", lambda: grpc_round_trip(grpc_target))],
    ]  # fmt: skip
    values: RunValues = {}
    for pair in pairs:
        for prefix, measure in _turns(pair, run):
            values |= _prefixed(prefix, asyncio.run(measure()))
    return values


def measure_capacity(ctx: Context, servers: Servers, run: int) -> RunValues:
    """REST and gRPC capacity, level by level; at each level the servers take their turn
    back to back (the order alternates), so each ratio pairs loads seconds apart."""
    values: RunValues = {}
    for turn, connections in enumerate(REST_CONNECTIONS, start=run):
        targets = [servers.jobwire, servers.bare_rest]
        if connections in SQLITE_CONNECTIONS:
            targets.append(servers.sqlite)
        for target in _turns(targets, turn):
            values |= measure_rest(ctx, target, connections)
    for turn, in_flight in enumerate(GRPC_IN_FLIGHT, start=run):
        for target in _turns([servers.jobwire, servers.bare_grpc], turn):
            values |= measure_grpc(ctx, target, in_flight)
    return values


def run_once(ctx: Context, run: int) -> RunValues:
    """One run: the servers up, latencies, capacities, then the SDK on a SQLite file."""
    redis.Redis.from_url(ctx.redis_url).flushdb()
    with tempfile.TemporaryDirectory(dir=ctx.folder) as folder:
        with started(ctx, folder) as servers:
            values = measure_latencies(servers, run)
            before = [cpu_seconds(t.server.pid) for t in servers.all()]
            values |= measure_capacity(ctx, servers, run)
            _log_idle(servers, before)
        sdk = asyncio.run(enqueue_to_start(SYSTEMS["jobwire"], f"sqlite:///{folder}/sdk.db"))
        values |= _prefixed("latency_sqlite.sdk", sdk)
    return values


def _log_idle(servers: Servers, before: list[float]) -> None:
    """Log the CPU each server used during the capacity loads outside its own loads,
    while it waited for its turn (a health check, a sweep): it should be near zero."""
    idle = [cpu_seconds(t.server.pid) - cpu - t.loaded_cpu_s
            for t, cpu in zip(servers.all(), before, strict=True)]  # fmt: skip
    pairs = zip(servers.all(), idle, strict=True)
    log("  CPU outside their own loads: "
         + ", ".join(f"{t.server.label} {cpu:.2f} s" for t, cpu in pairs))  # fmt: skip


def run_all(ctx: Context, runs: int) -> list[RunValues]:
    """``runs`` runs."""
    results = []
    for run in range(runs):
        log(f"run {run + 1}/{runs}")
        started_s = time.perf_counter()
        results.append(run_once(ctx, run))
        log(f"  ({time.perf_counter() - started_s:.0f} s)")
    return results


# --- profiling -----------------------------------------------------------------------


def profile(ctx: Context, seconds: int) -> None:
    """py-spy on `jobwire serve` (Redis) during REST c32 and gRPC x32 loads; one SVG
    flame graph and one raw collapsed-stack file each, under bench/profiles/."""
    redis.Redis.from_url(ctx.redis_url).flushdb()
    with running(jobwire_spec(ctx.redis_url, "Jobwire/Redis")) as [server]:
        assert server.http_url is not None and server.grpc_target is not None
        url = server.http_url + ENQUEUE_PATH
        warm_up(url, PROFILE_CONCURRENCY, ctx.script)
        for fmt, suffix in FORMATS.items():
            output = PROFILE_DIR / f"service-rest-c{PROFILE_CONCURRENCY}.{suffix}"
            with recording(server.pid, output, fmt, seconds):
                result = run_wrk(url, PROFILE_CONCURRENCY, seconds + 1, ctx.script)
            log(f"profiled REST c{PROFILE_CONCURRENCY}: {result.requests_per_s:,.0f} req/s "
                 f"(under py-spy) -> {output}")  # fmt: skip
        for fmt, suffix in FORMATS.items():
            output = PROFILE_DIR / f"service-grpc-x{PROFILE_CONCURRENCY}.{suffix}"
            with recording(server.pid, output, fmt, seconds):
                calls = load_grpc(server.grpc_target, PROFILE_CONCURRENCY, seconds + 1)
            log(f"profiled gRPC x{PROFILE_CONCURRENCY}: {calls['calls_per_s']:,.0f} calls/s "
                 f"(under py-spy) -> {output}")  # fmt: skip


# --- entry point -------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument(
        "--seconds", type=int, default=3, help="measured seconds of each load (default 3)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"afterwards, py-spy on jobwire serve during a REST c{PROFILE_CONCURRENCY} and "
        f"a gRPC x{PROFILE_CONCURRENCY} load; SVG and raw stacks go to {PROFILE_DIR}",
    )
    parser.add_argument(
        "--profile-seconds", type=int, default=5, help="py-spy's --duration (default 5)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report."""
    args = parse_args(argv)
    with throwaway_redis() as url, tempfile.TemporaryDirectory(prefix="bench-svc-") as tmp:
        ctx = Context(url, args.seconds, post_script(Path(tmp)), Path(tmp))
        environment = describe_environment(url)
        try:
            runs = run_all(ctx, args.runs)
            if args.profile:
                profile(ctx, args.profile_seconds)
        except BenchError as exc:
            log(f"benchmark failed: {exc}")
            return 1
        print(report(runs, environment))
    return 0


if __name__ == "__main__":
    sys.exit(main())
