"""A worker process the kill tests SIGKILL: ``python kill_worker_main.py URL QUEUE RECORD_URL KEY``.

Each job pushes its id onto ``KEY:started`` of the Redis at RECORD_URL, works for
``WORK_S``, pushes its id onto ``KEY:done`` and returns it. The worker runs at
``CONCURRENCY`` with leases of ``LEASE_S``, until SIGTERM or SIGKILL.
"""

import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis

from jobwire import Queue, Worker

CONCURRENCY = 20
LEASE_S = 1.0
WORK_S = 0.05


async def main(url: str, queue_name: str, record_url: str, key: str) -> None:
    """Run one Worker on the queue until killed or SIGTERM."""
    record = aioredis.Redis.from_url(record_url)

    async def task(ctx: dict[str, Any]) -> str:
        job_id: str = ctx["job"].id
        await record.rpush(f"{key}:started", job_id)
        await asyncio.sleep(WORK_S)
        await record.rpush(f"{key}:done", job_id)
        return job_id

    queue = Queue.from_url(url, name=queue_name, lease_s=LEASE_S)
    worker = Worker(queue, functions=[task], concurrency=CONCURRENCY, shutdown_grace_s=5,
                    poll_interval_s=0.1, sweep_interval_s=0.2)  # fmt: skip
    try:
        await worker.start()
    finally:
        await queue.close()
        await record.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
