"""The service's own cost (issue 12): `jobwire serve` against the bare limits, side by side.

Every run measures, on one machine, one server process at a time on loopback:

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

Repeated ``--runs`` times (phase order alternating); the report gives medians and, for each
ratio, the median of the per-run ratios. Progress goes to stderr, the report to stdout.
See bench/README.md.

Usage:
    python bench/bench_service.py [--runs 3] [--seconds 3] [--profile]
"""

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from harness import throwaway_redis
from latency import enqueue_to_start, grpc_round_trip, rest_round_trip
from load_rest import ENQUEUE_PATH, post_script, run_wrk, warm_up
from pyspy import FORMATS, recording
from servers import BENCH_DIR, Server, bare_grpc, bare_rest, cpu_seconds, jobwire_serve
from service_report import describe_environment, report
from systems import SYSTEMS, BenchError

REST_CONNECTIONS = (1, 8, 32, 128)
GRPC_IN_FLIGHT = (1, 8, 32)
SQLITE_CONNECTIONS = (8, 32)
PROFILE_CONCURRENCY = 32
GRPC_WARMUP_S = 0.5
PROFILE_DIR = BENCH_DIR / "profiles"

RunValues = dict[str, float]  # "measure.system.level" -> value, one run


@dataclass(frozen=True)
class Context:
    """What every phase needs.

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


def measure_rest(ctx: Context, server: Server, system: str, levels: Sequence[int]) -> RunValues:
    """wrk at each connection count: requests/s and the server's CPU µs per request."""
    assert server.http_url is not None
    url = server.http_url + ENQUEUE_PATH
    values = {}
    for connections in levels:
        warm_up(url, connections, ctx.script)
        cpu = cpu_seconds(server.pid)
        result = run_wrk(url, connections, ctx.seconds, ctx.script)
        cpu = cpu_seconds(server.pid) - cpu
        values[f"rest.{system}.{connections}"] = result.requests_per_s
        values[f"rest_cpu.{system}.{connections}"] = cpu * 1e6 / result.requests
        _log(f"  REST {server.label} c{connections}: {result.requests_per_s:,.0f} req/s, "
             f"server {cpu * 1e6 / result.requests:,.0f} µs CPU/req")  # fmt: skip
    return values


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


def measure_grpc(ctx: Context, server: Server, system: str) -> RunValues:
    """load_grpc.py at each in-flight count: calls/s, its own CPU share, the server's CPU
    µs per call (over the whole load, warm-up included)."""
    assert server.grpc_target is not None
    values = {}
    for in_flight in GRPC_IN_FLIGHT:
        cpu = cpu_seconds(server.pid)
        result = load_grpc(server.grpc_target, in_flight, ctx.seconds)
        server_us = (cpu_seconds(server.pid) - cpu) * 1e6 / result["total_calls"]
        values[f"grpc.{system}.{in_flight}"] = result["calls_per_s"]
        values[f"grpc_client.{system}.{in_flight}"] = result["cpu_share"]
        values[f"grpc_cpu.{system}.{in_flight}"] = server_us
        _log(f"  gRPC {server.label} x{in_flight}: {result['calls_per_s']:,.0f} calls/s, "
             f"client CPU {result['cpu_share']:.2f} cores, "
             f"server {server_us:,.0f} µs CPU/call")  # fmt: skip
    return values


def _prefixed(prefix: str, latencies: dict[str, float]) -> RunValues:
    _log(f"  {prefix}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in latencies.items()))
    return {f"{prefix}.{key}": value for key, value in latencies.items()}


# --- the phases of one run ---------------------------------------------------------


def jobwire_phase(ctx: Context) -> RunValues:
    """`jobwire serve` over Redis: latency over HTTP and gRPC, REST and gRPC capacity."""
    redis.Redis.from_url(ctx.redis_url).flushdb()
    values: RunValues = {}
    with jobwire_serve(ctx.redis_url, "Jobwire/Redis") as server:
        url = server.http_url or ""
        http = asyncio.run(enqueue_to_start(SYSTEMS["jobwire-http"], url))
        values |= _prefixed("latency_http.jobwire", http)
        grpc_ = asyncio.run(enqueue_to_start(SYSTEMS["jobwire-grpc"], url))
        values |= _prefixed("latency_grpc.jobwire", grpc_)
        values |= measure_rest(ctx, server, "jobwire", REST_CONNECTIONS)
        values |= measure_grpc(ctx, server, "jobwire")
    return values


def bare_phase(ctx: Context) -> RunValues:
    """The bare REST app (round trip, capacity), then the bare gRPC echo (likewise)."""
    redis.Redis.from_url(ctx.redis_url).flushdb()
    values: RunValues = {}
    with bare_rest(ctx.redis_url) as server:
        rtt = asyncio.run(rest_round_trip(server.http_url or ""))
        values |= _prefixed("latency_http.bare", rtt)
        values |= measure_rest(ctx, server, "bare", REST_CONNECTIONS)
    with bare_grpc() as server:
        rtt = asyncio.run(grpc_round_trip(server.grpc_target or ""))
        values |= _prefixed("latency_grpc.bare", rtt)
        values |= measure_grpc(ctx, server, "bare")
    return values


def sqlite_phase(ctx: Context) -> RunValues:
    """`jobwire serve` over a new SQLite file (REST capacity), then the SDK straight on
    another (latency, producer and worker in separate processes)."""
    with tempfile.TemporaryDirectory(dir=ctx.folder) as folder:
        with jobwire_serve(f"sqlite:///{folder}/jobs.db", "Jobwire/SQLite") as server:
            values = measure_rest(ctx, server, "sqlite", SQLITE_CONNECTIONS)
        sdk = asyncio.run(enqueue_to_start(SYSTEMS["jobwire"], f"sqlite:///{folder}/sdk.db"))
        values |= _prefixed("latency_sqlite.sdk", sdk)
    return values


PHASES: list[Callable[[Context], RunValues]] = [jobwire_phase, bare_phase, sqlite_phase]


def run_all(ctx: Context, runs: int) -> list[RunValues]:
    """Every phase, ``runs`` times; the order reverses every other run."""
    results = []
    for run in range(runs):
        values: RunValues = {}
        for phase in PHASES if run % 2 == 0 else PHASES[::-1]:
            _log(f"run {run + 1}/{runs}: {phase.__name__}")
            started = time.perf_counter()
            values |= phase(ctx)
            _log(f"  ({time.perf_counter() - started:.0f} s)")
        results.append(values)
    return results


# --- profiling -----------------------------------------------------------------------


def profile(ctx: Context, seconds: int) -> None:
    """py-spy on `jobwire serve` (Redis) during REST c32 and gRPC x32 loads; one SVG
    flame graph and one raw collapsed-stack file each, under bench/profiles/."""
    redis.Redis.from_url(ctx.redis_url).flushdb()
    with jobwire_serve(ctx.redis_url, "Jobwire/Redis") as server:
        assert server.http_url is not None and server.grpc_target is not None
        url = server.http_url + ENQUEUE_PATH
        warm_up(url, PROFILE_CONCURRENCY, ctx.script)
        for fmt, suffix in FORMATS.items():
            output = PROFILE_DIR / f"service-rest-c{PROFILE_CONCURRENCY}.{suffix}"
            with recording(server.pid, output, fmt, seconds):
                result = run_wrk(url, PROFILE_CONCURRENCY, seconds + 1, ctx.script)
            _log(f"profiled REST c{PROFILE_CONCURRENCY}: {result.requests_per_s:,.0f} req/s "
                 f"(under py-spy) -> {output}")  # fmt: skip
        for fmt, suffix in FORMATS.items():
            output = PROFILE_DIR / f"service-grpc-x{PROFILE_CONCURRENCY}.{suffix}"
            with recording(server.pid, output, fmt, seconds):
                calls = load_grpc(server.grpc_target, PROFILE_CONCURRENCY, seconds + 1)
            _log(f"profiled gRPC x{PROFILE_CONCURRENCY}: {calls['calls_per_s']:,.0f} calls/s "
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
            _log(f"benchmark failed: {exc}")
            return 1
        print(report(runs, environment))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
