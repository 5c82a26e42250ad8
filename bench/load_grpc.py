"""A gRPC load generator: N concurrent loops of ``JobService/Enqueue`` over one channel.

Runs as its own process (the benchmark starts it the same way against Jobwire and against
the bare echo), warms up, then counts the calls that complete in a fixed window and the
CPU this process used meanwhile. Prints one JSON object to stdout:
``{"calls", "seconds", "calls_per_s", "cpu_s", "cpu_share", "total_calls"}`` (``cpu_share``:
CPU seconds per wall second, 1.0 is one whole core; ``total_calls`` counts the warm-up too).

Usage:
    python bench/load_grpc.py --target 127.0.0.1:50051 --concurrency 8 --seconds 3
"""

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass

import grpc

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 10.0
REQUEST = pb.EnqueueRequest(queue="bench", job=pb.JobSpec(function="noop", kwargs_json='{"n":1}'))


@dataclass
class Counter:
    """Calls completed so far, and whether the loops should stop."""

    calls: int = 0
    stopping: bool = False


async def call_loop(stub: pb_grpc.JobServiceStub, counter: Counter) -> None:
    """Call ``Enqueue`` back to back until told to stop."""
    while not counter.stopping:
        await stub.Enqueue(REQUEST, timeout=CALL_TIMEOUT_S)
        counter.calls += 1


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(target: str, concurrency: int, seconds: float, warmup_s: float) -> dict[str, float]:
    """Load ``target`` with ``concurrency`` calls in flight; measure the window after the
    warm-up."""
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), CALL_TIMEOUT_S)
        stub = pb_grpc.JobServiceStub(channel)
        counter = Counter()
        loops = [asyncio.create_task(call_loop(stub, counter)) for _ in range(concurrency)]
        await asyncio.sleep(warmup_s)
        calls, cpu, started = counter.calls, _cpu_s(), time.perf_counter()
        await asyncio.sleep(seconds)
        calls, cpu = counter.calls - calls, _cpu_s() - cpu
        elapsed = time.perf_counter() - started
        counter.stopping = True
        await asyncio.gather(*loops)  # a failed call raises here
    return {
        "calls": calls,
        "seconds": elapsed,
        "calls_per_s": calls / elapsed,
        "cpu_s": cpu,
        "cpu_share": cpu / elapsed,
        "total_calls": counter.calls,
    }


def main() -> None:
    """Parse the options, run the load, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--concurrency", type=int, required=True, help="calls in flight")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before it")
    args = parser.parse_args()
    result = asyncio.run(run(args.target, args.concurrency, args.seconds, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
