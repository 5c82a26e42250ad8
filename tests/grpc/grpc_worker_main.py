"""A worker process for the gRPC tests: ``python grpc_worker_main.py URL QUEUE MODE``.

MODE ``hang``: each job writes ``started <job id>`` to stdout, then sleeps for good (the
test kills the process). MODE ``quick``: each job returns ``"done by <pid>"``.
"""

import asyncio
import os
import sys
from typing import Any

from jobwire import Queue, Worker

LEASE_S = 1.0


async def main(url: str, queue_name: str, mode: str) -> None:
    """Run one Worker (concurrency 1) on the queue until killed or SIGTERM."""

    async def task(ctx: dict[str, Any]) -> str:
        if mode == "hang":
            print(f"started {ctx['job'].id}", flush=True)
            await asyncio.sleep(3600)
        return f"done by {os.getpid()}"

    queue = Queue.from_url(url, name=queue_name, lease_s=LEASE_S)
    worker = Worker(queue, functions=[task], concurrency=1, shutdown_grace_s=5)
    await worker.start()
    await queue.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
