"""The bare gRPC limit: what a grpc.aio unary call costs, nothing else.

One process, run the way `jobwire serve` runs its gRPC half (a grpc.aio server inside a
uvloop event loop), serving Jobwire's own proto: a ``jobwire.v1.JobService`` servicer
whose ``Enqueue`` answers a fixed ``EnqueueReply`` (a queued job shaped like the one
Jobwire answers, built once) without touching a store: an echo. Every other method is
left unimplemented. No interceptor, no health service, no reflection.

Usage:
    python bench/bare_grpc.py --port 50052
"""

import argparse
import asyncio
import signal
import time
import uuid

import grpc
import uvloop

from jobwire.v1 import jobwire_pb2 as pb
from jobwire.v1 import jobwire_pb2_grpc as pb_grpc


def fixed_reply() -> pb.EnqueueReply:
    """A reply of the size Jobwire sends for the benchmark's job."""
    now = time.time()
    job = pb.Job(
        id=uuid.uuid4().hex, queue="bench", function="noop", kwargs_json='{"n":1}',
        status=pb.STATUS_QUEUED, ttl=600, meta_json="{}", result_json="null",
        created=now, queued=now, touched=now,
    )  # fmt: skip
    return pb.EnqueueReply(job=job, duplicate=False)


Context = grpc.aio.ServicerContext[pb.EnqueueRequest, pb.EnqueueReply]


class EchoJobService(pb_grpc.JobServiceServicer):
    """``Enqueue`` answers the same reply every time; nothing else is implemented."""

    def __init__(self) -> None:
        self._reply = fixed_reply()

    async def Enqueue(self, request: pb.EnqueueRequest, context: Context) -> pb.EnqueueReply:
        """The fixed reply."""
        return self._reply


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until SIGTERM/SIGINT."""
    server = grpc.aio.server()
    pb_grpc.add_JobServiceServicer_to_server(EchoJobService(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()
